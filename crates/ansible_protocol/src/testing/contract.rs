//! The contract of a module binary with Ansible, checked by running it: an
//! args file in, exactly one JSON object out, exit code 1 on failure, and
//! for bad input no command run at all. The binary runs under `strace`,
//! which records every program it starts: stand-ins on `PATH` no longer
//! show this, because the modules look in the system folders first.
//! [`contract_tests!`](crate::contract_tests) writes the tests every
//! module shares; a module adds its own with [`Sandbox`].

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

/// A folder for args files and the trace of the last run, and the tools
/// the module may call.
pub struct Sandbox {
    dir: tempfile::TempDir,
    binary: PathBuf,
    tools: Vec<String>,
}

impl Sandbox {
    /// A sandbox to run `binary` in, which may call only `tools`.
    pub fn new(binary: &str, tools: &[&str]) -> Sandbox {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("tempdir: {e}"));
        Sandbox {
            dir,
            binary: PathBuf::from(binary),
            tools: tools.iter().map(|t| t.to_string()).collect(),
        }
    }

    /// The sandbox folder.
    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Writes an args file holding `content`; returns its path.
    pub fn args_file(&self, content: &str) -> PathBuf {
        let path = self.dir.path().join("args");
        std::fs::write(&path, content).unwrap_or_else(|e| panic!("write args: {e}"));
        path
    }

    /// Runs the binary with `argv` under `strace`; returns (result, exit
    /// code, stdout). Every command it ran must be one of the sandbox's
    /// tools.
    pub fn run(&self, argv: &[&Path]) -> (Value, i32, String) {
        for old in self.traces() {
            std::fs::remove_file(self.dir.path().join(format!("trace.{old}")))
                .unwrap_or_else(|e| panic!("remove an old trace: {e}"));
        }
        let out = Command::new("strace")
            .args(["-ff", "-qq", "-s", "4096", "-e", "signal=none"])
            .args(["-e", "trace=execve,clone,clone3,fork,vfork", "-o"])
            .arg(self.trace())
            .arg(&self.binary)
            .args(argv)
            .output()
            .unwrap_or_else(|e| panic!("run strace {}: {e}", self.binary.display()));
        let stdout =
            String::from_utf8(out.stdout).unwrap_or_else(|e| panic!("stdout is not UTF-8: {e}"));
        let value: Value = serde_json::from_str(stdout.trim_end())
            .unwrap_or_else(|e| panic!("stdout is not one JSON object ({e}): {stdout:?}"));
        for call in self.calls().lines() {
            let program = call.split(' ').next().unwrap_or_default();
            assert!(
                self.tools.iter().any(|t| t == program),
                "{} ran {call:?}, which is not among its tools {:?}",
                self.binary.display(),
                self.tools
            );
        }
        (value, out.status.code().unwrap_or(-1), stdout)
    }

    /// The pids `strace -ff` wrote a trace for.
    fn traces(&self) -> Vec<String> {
        std::fs::read_dir(self.dir.path())
            .map(|d| {
                d.filter_map(|e| e.ok()?.file_name().into_string().ok())
                    .filter_map(|n| n.strip_prefix("trace.").map(str::to_string))
                    .collect()
            })
            .unwrap_or_default()
    }

    fn trace(&self) -> PathBuf {
        self.dir.path().join("trace")
    }

    /// The commands the last run started itself (not what those commands
    /// ran in turn), one line each: the program's file name, then its
    /// arguments. `strace -ff` wrote one trace per process, `trace.<pid>`.
    /// A command runs in a grandchild of the module: the child is the guard
    /// that forks it (linux_host's `run::guarded`).
    pub fn calls(&self) -> String {
        let trace = |pid: &str| {
            std::fs::read_to_string(self.dir.path().join(format!("trace.{pid}")))
                .unwrap_or_default()
        };
        let spawned = |text: &str| -> Vec<String> {
            text.lines()
                .filter(|l| l.starts_with("clone") || l.contains("fork("))
                .filter_map(|l| l.rsplit_once(" = ").map(|(_, r)| r.trim().to_string()))
                .collect()
        };
        let pids = self.traces();
        let Some(module) = pids
            .iter()
            .find(|p| trace(p).contains(&*self.binary.to_string_lossy()))
        else {
            return String::new();
        };
        let mut calls = String::new();
        for guard in spawned(&trace(module)) {
            for child in spawned(&trace(&guard)) {
                let exec = trace(&child)
                    .lines()
                    .find(|l| l.starts_with("execve(") && l.ends_with(" = 0"))
                    .map(exec_line);
                if let Some(exec) = exec {
                    calls.push_str(&exec);
                    calls.push('\n');
                }
            }
        }
        calls
    }

    /// Runs the binary with `argv` and checks that it refused: exit 1,
    /// `failed` and not `changed`, a `msg` containing `msg_part`, one line
    /// of output, and no command run.
    pub fn assert_refused(&self, argv: &[&Path], msg_part: &str) {
        let (result, code, stdout) = self.run(argv);
        assert_eq!(code, 1, "{stdout}");
        assert_eq!(result["failed"], Value::Bool(true), "{stdout}");
        assert_eq!(result["changed"], Value::Bool(false), "{stdout}");
        let msg = result["msg"].as_str().unwrap_or_default();
        assert!(
            msg.contains(msg_part),
            "{msg:?} should contain {msg_part:?}"
        );
        assert_eq!(
            stdout.lines().count(),
            1,
            "exactly one line of output: {stdout:?}"
        );
        assert_eq!(self.calls(), "", "no command may run for bad input");
    }
}

/// The contract tests every module binary shares, for module type `$module`
/// built as binary `$binary` (`env!("CARGO_BIN_EXE_<name>")`), which may
/// call `$tools`; with `refused`, also that each of those args files is
/// refused with a message containing its text, before any command:
/// `ansible_protocol::contract_tests!(KmodUpdate, env!("CARGO_BIN_EXE_kmod_update"), ["depmod", "modinfo"],
/// refused: [(r#"{"dest": "../x"}"#, "dest must be")]);`
#[macro_export]
macro_rules! contract_tests {
    ($module:ty, $binary:expr, [$($tool:literal),* $(,)?], refused: [$(($args:expr, $msg:expr)),* $(,)?]) => {
        $crate::contract_tests!($module, $binary, [$($tool),*]);

        #[test]
        fn bad_options_run_no_command() {
            for (args, msg) in [$(($args, $msg)),*] {
                let s = sandbox();
                let f = s.args_file(args);
                s.assert_refused(&[&f], msg);
            }
        }
    };
    ($module:ty, $binary:expr, [$($tool:literal),* $(,)?]) => {
        fn sandbox() -> $crate::testing::contract::Sandbox {
            $crate::testing::contract::Sandbox::new($binary, &[$($tool),*])
        }

        #[test]
        fn no_argument() {
            sandbox().assert_refused(&[], "expected exactly one argument");
        }

        #[test]
        fn args_file_missing() {
            let s = sandbox();
            let missing = s.path().join("nope.json");
            s.assert_refused(&[&missing], "cannot read the arguments file");
        }

        #[test]
        fn args_not_json() {
            let s = sandbox();
            let f = s.args_file("name=aacraid");
            s.assert_refused(&[&f], "is not valid JSON");
        }

        #[test]
        fn args_json_array() {
            let s = sandbox();
            let f = s.args_file(r#"["name", "aacraid"]"#);
            s.assert_refused(&[&f], "must hold a JSON object of options, not an array");
        }

        #[test]
        fn unknown_option_lists_valid_ones() {
            use $crate::Module as _;
            let s = sandbox();
            let f = s.args_file(r#"{"nmae": "aacraid", "_ansible_check_mode": false}"#);
            let mut valid = $crate::options::option_names::<<$module as $crate::Module>::Options>();
            valid.sort_unstable();
            s.assert_refused(
                &[&f],
                &format!(
                    "Unsupported parameters for ({}) module: nmae. Supported parameters include: {}.",
                    <$module>::NAME,
                    valid.join(", ")
                ),
            );
        }
    };
}

/// `execve("/usr/bin/dkms", ["dkms", "status"], …) = 0` as `dkms status`.
fn exec_line(call: &str) -> String {
    let path = call
        .split('"')
        .nth(1)
        .and_then(|p| p.rsplit('/').next())
        .unwrap_or_default();
    let args = call
        .split_once(", [")
        .and_then(|(_, rest)| rest.split_once("], "))
        .map(|(list, _)| list)
        .unwrap_or_default();
    let mut words = vec![path.to_string()];
    words.extend(
        args.split("\", \"")
            .skip(1)
            .map(|a| a.trim_matches('"').to_string()),
    );
    words.join(" ")
}
