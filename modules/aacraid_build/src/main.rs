//! The aacraid_build binary: all logic is in the library.
ansible_protocol::main!(aacraid_build::AacraidBuild, linux_host::Host::system());
