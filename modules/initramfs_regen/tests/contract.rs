//! The binary's contract with Ansible: the tests every module shares (an
//! args file in, one JSON object out, exit 1 on failure, no command for bad
//! input), and bad options of this module refused before any command.

ansible_protocol::contract_tests!(
    initramfs_regen::InitramfsRegen,
    env!("CARGO_BIN_EXE_initramfs_regen"),
    ["modinfo", "depmod", "dracut", "mkinitramfs", "df"],
    refused: [
        (r#"{"modules": ["aacraid; reboot"]}"#, "invalid module name"),
        (r#"{"name": "aacraid/../x"}"#, "invalid module name"),
        (r#"{"modules": []}"#, "modules must name at least one module"),
        (r#"{"kernels": ["../x"]}"#, "option 'kernels': invalid kernel release \"../x\""),
        (r#"{"kernels": "6.1.0-56-amd64; reboot"}"#, "invalid kernel release"),
    ]
);
