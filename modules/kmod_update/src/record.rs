//! What kmod_update installed, one record per kernel and module, so that
//! `state: absent` removes exactly that and puts back what it replaced:
//!
//! - `/var/lib/kmod_update/<kver>/<name>.json`:
//!   `{"path": "/lib/modules/<kver>/updates/aacraid.ko", "sha256": "…",
//!     "version": "…", "created_dirs": ["/lib/modules/<kver>/updates"],
//!     "replaced": {"sha256": "…", "mode": 420} | null}`
//! - `/var/lib/kmod_update/<kver>/<name>.replaced`: the bytes of the file
//!   that was at `path` before the first install, when there was one.
//!
//! A later install over our own file keeps the first `replaced`, so
//! `absent` always returns to the state before kmod_update came.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use linux_host::{kernel, Host};
use serde::{Deserialize, Serialize};

use crate::journal::View;

/// Where records live.
pub const STATE_DIR: &str = "/var/lib/kmod_update";

/// One installed module.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize, Serialize)]
pub struct Record {
    /// The installed file.
    pub path: PathBuf,
    /// Its SHA-256 as installed.
    pub sha256: String,
    /// Its `MODULE_VERSION`.
    pub version: Option<String>,
    /// Folders the install created (removed again by `absent` when empty).
    #[serde(default)]
    pub created_dirs: Vec<PathBuf>,
    /// The file the first install replaced, saved beside the record.
    pub replaced: Option<Replaced>,
}

/// A replaced file.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize, Serialize)]
pub struct Replaced {
    /// Its SHA-256.
    pub sha256: String,
    /// Its permission bits.
    pub mode: u32,
}

/// `/var/lib/kmod_update/<kver>`.
pub fn kernel_dir(kver: &str) -> PathBuf {
    Path::new(STATE_DIR).join(kver)
}

/// The record's path.
pub fn path(kver: &str, name: &str) -> PathBuf {
    kernel_dir(kver).join(format!("{name}.json"))
}

/// Where the replaced file's bytes are kept.
pub fn saved_path(kver: &str, name: &str) -> PathBuf {
    kernel_dir(kver).join(format!("{name}.replaced"))
}

/// The record of `name` for `kver`, if kmod_update installed it. The
/// record folder must hold no symbolic link, and the paths a record names
/// must lie inside the kernel's own tree, with no link on the way: a
/// removal trusts them.
pub fn read(view: &View, kver: &str, name: &str) -> Result<Option<Record>> {
    let host = view.host();
    let file = path(kver, name);
    let var_lib = Path::new(STATE_DIR).parent().unwrap_or(Path::new("/"));
    for own in [&file, &saved_path(kver, name)] {
        host.refuse_links_below(var_lib, own)?;
    }
    let record: Record = match view.read(&file) {
        Ok(bytes) => serde_json::from_slice(&bytes)
            .with_context(|| format!("{} is not a record kmod_update wrote", file.display()))?,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e).with_context(|| format!("cannot read {}", file.display())),
    };
    let tree = kernel::modules_dir(kver);
    for named in std::iter::once(&record.path).chain(&record.created_dirs) {
        host.refuse_links_below(&tree, named).with_context(|| {
            format!("{} names a path kmod_update does not touch", file.display())
        })?;
    }
    Ok(Some(record))
}

/// Kernels holding a record of `name`.
pub fn kernels_with_record(host: &Host, name: &str) -> Vec<String> {
    host.read_dir(Path::new(STATE_DIR))
        .unwrap_or_default()
        .into_iter()
        .filter(|e| host.exists(&path(&e.name, name)))
        .map(|e| e.name)
        .collect()
}
