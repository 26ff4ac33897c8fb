//! The kmod_update binary: all logic is in the library.
ansible_protocol::main!(kmod_update::KmodUpdate, linux_host::Host::system());
