//! The contract of a module binary with Ansible, checked by running it: an
//! args file in, exactly one JSON object out, exit code 1 on failure, and
//! for bad input no command run at all. Commands are traced by recording
//! stand-ins for every tool the module may call, alone on `PATH`.
//! [`contract_tests!`](crate::contract_tests) writes the tests every
//! module shares; a module adds its own with [`Sandbox`].

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

/// A folder with recording stand-ins for `tools` and room for args files.
pub struct Sandbox {
    dir: tempfile::TempDir,
    binary: PathBuf,
}

impl Sandbox {
    /// A sandbox to run `binary` in, with stand-ins (that log and fail) for
    /// each of `tools`.
    pub fn new(binary: &str, tools: &[&str]) -> Sandbox {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("tempdir: {e}"));
        let bin = dir.path().join("bin");
        std::fs::create_dir(&bin).unwrap_or_else(|e| panic!("mkdir bin: {e}"));
        for tool in tools {
            let path = bin.join(tool);
            let script = format!(
                "#!/bin/sh\necho \"{tool} $*\" >> '{}'\nexit 1\n",
                dir.path().join("calls.log").display()
            );
            std::fs::write(&path, script).unwrap_or_else(|e| panic!("write stand-in: {e}"));
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755))
                .unwrap_or_else(|e| panic!("chmod stand-in: {e}"));
        }
        Sandbox {
            dir,
            binary: PathBuf::from(binary),
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

    /// Runs the binary with `argv`; returns (result, exit code, stdout).
    pub fn run(&self, argv: &[&Path]) -> (Value, i32, String) {
        let out = Command::new(&self.binary)
            .args(argv)
            .env("PATH", self.dir.path().join("bin"))
            .output()
            .unwrap_or_else(|e| panic!("run {}: {e}", self.binary.display()));
        let stdout =
            String::from_utf8(out.stdout).unwrap_or_else(|e| panic!("stdout is not UTF-8: {e}"));
        let value: Value = serde_json::from_str(stdout.trim_end())
            .unwrap_or_else(|e| panic!("stdout is not one JSON object ({e}): {stdout:?}"));
        (value, out.status.code().unwrap_or(-1), stdout)
    }

    /// The commands the stand-ins were asked to run, one line each.
    pub fn calls(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("calls.log")).unwrap_or_default()
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
