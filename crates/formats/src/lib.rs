//! Pure decoders and encoders of the bytes our modules meet: vendor
//! archives and rpm packages, initramfs cpio archives and their
//! compressions, the `.modinfo` section of kernel modules, the text that
//! `dkms`, `arcconf` and `modinfo -n` print, module signatures and the
//! texts that say whether a kernel enforces them, and artifact manifests.
//!
//! Nothing here touches a host: every function takes bytes or text and
//! returns values, so each decoder can be tested (and fuzzed) alone. All
//! input is treated as hostile: sizes are checked against the data and the
//! caps of [`limits`], never trusted to size an allocation, and every
//! archive's names, modes and duplicates follow the rule of [`path`].

pub mod arcconf;
pub mod archive;
pub mod calendar;
pub mod compress;
pub mod cpio;
pub mod dkms;
pub mod elf;
pub mod limits;
mod lz4;
pub mod manifest;
pub mod modinfo;
pub mod modsig;
pub mod path;
pub mod rpm;
pub mod signing;
#[cfg(any(test, feature = "testing"))]
pub mod testing;
