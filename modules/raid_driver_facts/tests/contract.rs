//! The binary's contract with Ansible, checked by running it: an args file
//! in, exactly one JSON object out, exit code 1 on failure, and for bad
//! input no command run at all. Commands are traced by placing recording
//! stand-ins for every tool the module may call first on `PATH`.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

const TOOLS: &[&str] = &["modinfo", "dkms", "dmesg", "arcconf", "depmod"];

struct Sandbox {
    dir: tempfile::TempDir,
}

impl Sandbox {
    fn new() -> Sandbox {
        let dir = tempfile::tempdir().expect("tempdir");
        let bin = dir.path().join("bin");
        std::fs::create_dir(&bin).expect("mkdir bin");
        for tool in TOOLS {
            let path = bin.join(tool);
            let script = format!(
                "#!/bin/sh\necho \"{tool} $*\" >> '{}'\nexit 1\n",
                dir.path().join("calls.log").display()
            );
            std::fs::write(&path, script).expect("write stand-in");
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).expect("chmod");
        }
        Sandbox { dir }
    }

    fn args_file(&self, content: &str) -> PathBuf {
        let path = self.dir.path().join("args");
        std::fs::write(&path, content).expect("write args");
        path
    }

    /// Runs the module with `argv` and returns (result, exit code, stdout).
    fn run(&self, argv: &[&Path]) -> (Value, i32, String) {
        let out = Command::new(env!("CARGO_BIN_EXE_raid_driver_facts"))
            .args(argv)
            .env("PATH", self.dir.path().join("bin"))
            .output()
            .expect("run the module binary");
        let stdout = String::from_utf8(out.stdout).expect("stdout is UTF-8");
        let value: Value = serde_json::from_str(stdout.trim_end()).unwrap_or_else(|e| {
            panic!("stdout is not one JSON object ({e}): {stdout:?}");
        });
        (value, out.status.code().unwrap_or(-1), stdout)
    }

    fn calls(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("calls.log")).unwrap_or_default()
    }
}

fn assert_refused(sandbox: &Sandbox, argv: &[&Path], msg_part: &str) {
    let (result, code, stdout) = sandbox.run(argv);
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
    assert_eq!(sandbox.calls(), "", "no command may run for bad input");
}

#[test]
fn no_argument() {
    let s = Sandbox::new();
    assert_refused(&s, &[], "expected exactly one argument");
}

#[test]
fn args_file_missing() {
    let s = Sandbox::new();
    let missing = s.dir.path().join("nope.json");
    assert_refused(&s, &[&missing], "cannot read the arguments file");
}

#[test]
fn args_not_json() {
    let s = Sandbox::new();
    let f = s.args_file("name=aacraid");
    assert_refused(&s, &[&f], "is not valid JSON");
}

#[test]
fn args_json_array() {
    let s = Sandbox::new();
    let f = s.args_file(r#"["name", "aacraid"]"#);
    assert_refused(
        &s,
        &[&f],
        "must hold a JSON object of options, not an array",
    );
}

#[test]
fn unknown_option_lists_valid_ones() {
    let s = Sandbox::new();
    let f = s.args_file(r#"{"nmae": "aacraid", "_ansible_check_mode": false}"#);
    assert_refused(
        &s,
        &[&f],
        "Unsupported parameters for (raid_driver_facts) module: nmae. \
         Supported parameters include: arcconf_path, banner, gather_subset, kernels, name.",
    );
}

#[test]
fn wrong_type() {
    let s = Sandbox::new();
    let f = s.args_file(r#"{"kernels": {"a": 1}}"#);
    assert_refused(
        &s,
        &[&f],
        "option 'kernels': expected a list, got a dictionary",
    );
}

#[test]
fn path_like_name() {
    let s = Sandbox::new();
    let f = s.args_file(r#"{"name": "../x"}"#);
    assert_refused(&s, &[&f], "invalid module name \"../x\"");
}

#[test]
fn shell_injection_name() {
    let s = Sandbox::new();
    let f = s.args_file(r#"{"name": "aacraid; rm -rf /"}"#);
    assert_refused(&s, &[&f], "invalid module name \"aacraid; rm -rf /\"");
}

/// The stand-ins do record calls: a valid run goes through them, ignores
/// internal keys of any ansible-core release, and still succeeds.
#[test]
fn valid_run_reaches_the_tools_and_succeeds() {
    let s = Sandbox::new();
    let f = s.args_file(
        r#"{"name": "aacraid", "gather_subset": "dkms,kernel_log", "_ansible_check_mode": true,
            "_ansible_diff": true, "_ansible_verbosity": 3, "_ansible_version": "2.16.14",
            "_ansible_string_conversion_action": "warn", "_ansible_tracebacks_for": [],
            "_ansible_target_log_info": null, "_some_future_key": 1}"#,
    );
    let (result, code, stdout) = s.run(&[&f]);
    // `_some_future_key` is not internal (no `_ansible_` prefix): refused.
    assert_eq!(code, 1, "{stdout}");
    assert!(result["msg"]
        .as_str()
        .unwrap_or("")
        .contains("_some_future_key"));

    let f = s.args_file(
        r#"{"name": "aacraid", "gather_subset": "dkms,kernel_log", "_ansible_check_mode": true,
            "_ansible_diff": true, "_ansible_verbosity": 3, "_ansible_version": "2.16.14",
            "_ansible_string_conversion_action": "warn", "_ansible_tracebacks_for": []}"#,
    );
    let (result, code, stdout) = s.run(&[&f]);
    assert_eq!(code, 0, "{stdout}");
    assert_eq!(result["failed"], Value::Bool(false));
    assert_eq!(result["changed"], Value::Bool(false));
    assert!(result["ansible_facts"]["raid_driver"].is_object());
    assert_eq!(s.calls(), "dkms status -m aacraid\ndmesg \n");
    let warnings = result["warnings"].to_string();
    assert!(
        warnings.contains("cannot read the kernel log"),
        "{warnings}"
    );
}
