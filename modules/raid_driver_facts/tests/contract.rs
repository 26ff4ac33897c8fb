//! The binary's contract with Ansible: the tests every module shares (an
//! args file in, one JSON object out, exit 1 on failure, no command for bad
//! input), and this module's own.

use serde_json::Value;

ansible_protocol::contract_tests!(
    raid_driver_facts::RaidDriverFacts,
    env!("CARGO_BIN_EXE_raid_driver_facts"),
    ["modinfo", "dkms", "dmesg", "arcconf", "depmod"]
);

#[test]
fn wrong_type() {
    let s = sandbox();
    let f = s.args_file(r#"{"kernels": {"a": 1}}"#);
    s.assert_refused(&[&f], "option 'kernels': expected a list, got a dictionary");
}

#[test]
fn path_like_name() {
    let s = sandbox();
    let f = s.args_file(r#"{"name": "../x"}"#);
    s.assert_refused(&[&f], "invalid module name \"../x\"");
}

#[test]
fn shell_injection_name() {
    let s = sandbox();
    let f = s.args_file(r#"{"name": "aacraid; rm -rf /"}"#);
    s.assert_refused(&[&f], "invalid module name \"aacraid; rm -rf /\"");
}

/// The stand-ins do record calls: a valid run goes through them, ignores
/// internal keys of any ansible-core release, and still succeeds.
#[test]
fn valid_run_reaches_the_tools_and_succeeds() {
    let s = sandbox();
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
    // dmesg (util-linux) is on every machine; dkms only where installed.
    let calls = s.calls();
    assert!(calls.lines().any(|c| c == "dmesg"), "{calls:?}");
}
