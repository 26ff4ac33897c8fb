//! The Linux side of our Ansible modules: everything that touches the host.
//!
//! Modules never call `std::process` or `std::fs` themselves: they go through
//! [`Host`], which tests can root in a temporary directory and script, and
//! they use the readers and parsers here for the facts of the kernel-module
//! world (kernels, module files, initramfs images, DKMS, PCI, arcconf).

pub mod arcconf;
pub mod archive;
pub mod command;
pub mod compress;
pub mod cpio;
pub mod depmod;
pub mod dkms;
pub mod elf;
pub mod host;
pub mod initramfs;
pub mod kernel;
pub mod kmod;
pub mod loaded;
pub mod mounts;
pub mod pci;
pub mod rpm;
#[cfg(any(test, feature = "testing"))]
pub mod testing;

pub use command::{Cmd, CommandFailed, Output, ProgramNotFound};
pub use host::{DirLock, Host, Script};
