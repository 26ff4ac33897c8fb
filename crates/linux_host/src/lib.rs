//! The Linux side of our Ansible modules: everything that touches the host.
//!
//! Modules never call `std::process` or `std::fs` themselves: they go through
//! [`Host`], which tests can root in a temporary directory and script. On
//! top of it sit the facts of the kernel-module world that need the host
//! (kernels, which file a kernel resolves, initramfs images, depmod's
//! configuration, loaded modules, PCI devices, mounts, signature
//! enforcement). Decoding bytes and text is the pure `formats` crate's
//! business.

pub mod command;
pub mod depmod;
pub mod host;
pub mod initramfs;
pub mod kernel;
pub mod kmod;
pub mod loaded;
pub mod mounts;
pub mod pci;
mod run;
pub mod signing;
#[cfg(any(test, feature = "testing"))]
pub mod testing;

pub use ansible_protocol::CommandFailed;
pub use command::{Cmd, Output, ProgramNotFound};
pub use host::{DirLock, Host, PrivateDir};
pub use run::Script;
