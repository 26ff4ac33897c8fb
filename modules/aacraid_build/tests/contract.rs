//! The binary's contract with Ansible: the tests every module shares (an
//! args file in, one JSON object out, exit 1 on failure, no command for bad
//! input), and bad options of this module refused before any command.

ansible_protocol::contract_tests!(
    aacraid_build::AacraidBuild,
    env!("CARGO_BIN_EXE_aacraid_build"),
    ["dkms", "rpm", "modinfo", "make"],
    refused: [
        (r#"{"src": "/root/p.tgz", "remote_src": false}"#, "carried out by this module's action plugin"),
        (r#"{"kernels": ["../x"]}"#, "option 'kernels': invalid kernel release \"../x\""),
        (r#"{"kernels": "6.1.0-56-amd64; reboot"}"#, "invalid kernel release"),
    ]
);
