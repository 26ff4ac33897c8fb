//! The initramfs_regen binary: all logic is in the library.
ansible_protocol::main!(initramfs_regen::InitramfsRegen, linux_host::Host::system());
