//! The Ansible side of our binary modules: the args file in, one JSON
//! result out. No other crate prints or exits; modules implement [`Module`]
//! and their `main.rs` is the one line
//! `ansible_protocol::main!(Type, host_expression);`. This crate knows
//! nothing of the host or of any particular module: a module brings its own
//! host type, options, plan and typed return values.
//!
//! # Wire format
//!
//! **Invocation.** ansible-core copies the binary to the host and runs
//! `<binary> <argsfile>`: `argv[1]` is the only input; stdin is empty and the
//! working directory is not defined.
//!
//! **Args file.** One flat JSON object: the task's options, plus internal
//! keys that start with `_ansible_`. Of those we read
//!
//! | key | meaning |
//! |---|---|
//! | `_ansible_check_mode` | plan, report, change nothing |
//! | `_ansible_diff` | include `diff` in the result |
//! | `_ansible_verbosity` | `-v` count |
//! | `_ansible_no_log` | the task hides its result (the controller censors it) |
//! | `_ansible_module_name` | the name the task used |
//! | `_ansible_tmpdir` | the task's remote temporary directory, or null |
//! | `_ansible_debug` | debug logging requested |
//!
//! and ignore every other `_ansible_*` key, whatever the ansible-core
//! release (the set changes between releases). Other keys are options:
//! unknown ones fail the task with the list of valid names; values are
//! converted the way AnsibleModule converts them (see [`options`]), because
//! ad-hoc `-a 'k=v'` sends every value as a string.
//!
//! **Result.** Exactly one JSON object on stdout, valid UTF-8, followed by a
//! newline; logs, if any, go to stderr. Keys:
//!
//! | key | when |
//! |---|---|
//! | `changed` | always, a JSON bool |
//! | `failed` | always, a JSON bool (a string `"false"` would fail the task) |
//! | `msg` | on failure, and when the module has something to say |
//! | `ansible_facts` | fact-gathering modules (a field of their return values): merged into the host's facts |
//! | `diff` | in diff mode: `{before, after}` or a list of them |
//! | `warnings` | a list of strings, when there are any |
//! | `invocation` | `{module_args}`: the options as the module understood them |
//! | `cmd`, `rc`, `stdout`, `stderr` | on failure caused by a command |
//! | `exception` | on failure: the full error chain (shown at `-vvv`) |
//!
//! plus each module's documented return values. The exit code is 1 when
//! `failed` is true and 0 otherwise (ansible-core reads only the JSON, but
//! people running the binary by hand read the exit code). A panic still
//! produces a failed result. Values of options a module declares `no_log`
//! are replaced by `********` wherever they would appear in the result.

mod entry;
mod failure;
pub mod options;
#[cfg(feature = "testing")]
pub mod testing;

pub use entry::{execute, run};
pub use failure::{last_lines, needs_action_plugin, CommandFailed};

use serde::de::DeserializeOwned;
use serde::Serialize;

/// What the controller told us about the task, beside the options.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Context {
    /// `--check`: plan, report, change nothing.
    pub check_mode: bool,
    /// `--diff`: include a `diff` in the result.
    pub diff: bool,
    /// Number of `-v`.
    pub verbosity: u8,
    /// The task has `no_log`.
    pub no_log: bool,
    /// The module name the task used (`None` when run by hand).
    pub module_name: Option<String>,
    /// The task's remote temporary directory.
    pub tmpdir: Option<String>,
    /// `ANSIBLE_DEBUG` is on.
    pub debug: bool,
}

/// A module's successful answer; `R` is its typed return values, written
/// at the top level of the result.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Response<R> {
    /// Whether the host was (or in check mode, would be) changed.
    pub changed: bool,
    /// A one-line summary for people.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub msg: Option<String>,
    /// Before/after, shown in diff mode.
    #[serde(skip)]
    pub diff: Option<Diff>,
    /// Things worth a person's attention that did not stop the module.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
    /// The module's own return values.
    #[serde(flatten)]
    pub values: R,
}

/// One `{before, after}` pair as Ansible's diff callback shows it: two
/// texts with a header each.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Diff {
    /// Names the left side.
    pub before_header: String,
    /// Names the right side.
    pub after_header: String,
    /// The text before.
    pub before: String,
    /// The text after.
    pub after: String,
}

impl Diff {
    /// Both sides as pretty JSON under one header: the way our modules show
    /// a per-kernel state before and after the run.
    pub fn json(header: &str, before: &impl Serialize, after: &impl Serialize) -> Diff {
        Diff {
            before_header: header.to_string(),
            after_header: header.to_string(),
            before: pretty(before),
            after: pretty(after),
        }
    }
}

/// Serialising our plain data cannot fail; an empty side would only hide a
/// diff, never a change.
fn pretty(value: &impl Serialize) -> String {
    serde_json::to_string_pretty(value).unwrap_or_default() + "\n"
}

/// One Ansible module: parse options, plan against the host, then either
/// report the plan (check mode) or carry it out.
pub trait Module {
    /// The module's name, as tasks call it.
    const NAME: &'static str;
    /// Options whose values must never appear in the result.
    const NO_LOG: &'static [&'static str] = &[];
    /// What the module reads and changes (the host crate's `Host`, or a
    /// scripted one in tests).
    type Host;
    /// The option struct: serde field names are the option names.
    type Options: DeserializeOwned + Serialize;
    /// Everything decided before the first change.
    type Plan;
    /// The typed return values, beside `changed`, `msg` and `warnings`.
    type Return: Serialize;

    /// Looks at the host and decides what to do. Must not change anything.
    fn plan(options: Self::Options, ctx: &Context, host: &Self::Host)
        -> anyhow::Result<Self::Plan>;

    /// What check mode reports: exactly what [`Module::apply`] would do.
    fn preview(plan: Self::Plan, ctx: &Context) -> Response<Self::Return>;

    /// Carries the plan out.
    fn apply(
        plan: Self::Plan,
        ctx: &Context,
        host: &Self::Host,
    ) -> anyhow::Result<Response<Self::Return>>;
}

/// The `main` of a module binary:
/// `ansible_protocol::main!(MyModule, linux_host::Host::system());`.
#[macro_export]
macro_rules! main {
    ($module:ty, $host:expr) => {
        fn main() {
            $crate::run::<$module>(&$host)
        }
    };
}
