//! The Ansible side of our binary modules: the args file in, one JSON
//! result out. No other crate prints or exits; modules implement [`Module`]
//! and their `main.rs` is the one line `ansible_protocol::main!(Type);`.
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
//! | `ansible_facts` | fact-gathering modules: merged into the host's facts |
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
pub mod options;
#[cfg(feature = "testing")]
pub mod testing;

pub use entry::{execute, run};
pub use linux_host::Host;

use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::{Map, Value};

/// The failure of a module binary run without its controller-side action
/// plugin (`plugins/action/`) for an option only that plugin can carry out
/// (moving files between the controller and the host).
pub const NEEDS_ACTION_PLUGIN: &str = "remote_src: false and fetch_dir move files between the controller and the \
     host: they are carried out by this module's action plugin (plugins/action/ in this repository, found through \
     ansible.cfg's action_plugins), which was not used for this run";

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

/// A module's successful answer.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Response {
    /// Whether the host was (or in check mode, would be) changed.
    pub changed: bool,
    /// A one-line summary for people.
    pub msg: Option<String>,
    /// Facts to merge into the host's facts (`ansible_facts`).
    pub facts: Map<String, Value>,
    /// Before/after, shown in diff mode when `changed`.
    pub diff: Option<Value>,
    /// Things worth a person's attention that did not stop the module.
    pub warnings: Vec<String>,
    /// The module's own return values, at the top level of the result.
    pub values: Map<String, Value>,
}

/// One Ansible module: parse options, plan against the host, then either
/// report the plan (check mode) or carry it out.
pub trait Module {
    /// The module's name, as tasks call it.
    const NAME: &'static str;
    /// Options whose values must never appear in the result.
    const NO_LOG: &'static [&'static str] = &[];
    /// The option struct: serde field names are the option names.
    type Options: DeserializeOwned + Serialize;
    /// Everything decided before the first change.
    type Plan;

    /// Looks at the host and decides what to do. Must not change anything.
    fn plan(options: Self::Options, ctx: &Context, host: &Host) -> anyhow::Result<Self::Plan>;

    /// What check mode reports: exactly what [`Module::apply`] would do.
    fn preview(plan: &Self::Plan, ctx: &Context) -> Response;

    /// Carries the plan out.
    fn apply(plan: Self::Plan, ctx: &Context, host: &Host) -> anyhow::Result<Response>;
}

/// The `main` of a module binary: `ansible_protocol::main!(MyModule);`.
#[macro_export]
macro_rules! main {
    ($module:ty) => {
        fn main() {
            $crate::run::<$module>()
        }
    };
}
