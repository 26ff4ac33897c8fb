//! What is at a destination now: the file an install would replace, the
//! folders it would create, and whether two paths are the same file.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context as _, Result};
use formats::modinfo::sha256_hex;
use linux_host::Host;

use crate::journal::View;

/// A file that is at the destination now.
#[derive(Debug)]
pub struct Existing {
    pub data: Vec<u8>,
    pub sha256: String,
    pub mode: u32,
}

/// Whether two paths name the same file (links followed).
pub fn same_file(host: &Host, a: &Path, b: &Path) -> bool {
    a == b || matches!((host.canonicalize(a), host.canonicalize(b)), (Ok(x), Ok(y)) if x == y)
}

/// The file at `path`, if any; a symbolic link there is refused.
pub fn read_existing(view: &View, path: &Path) -> Result<Option<Existing>> {
    if !view.exists(path) {
        return Ok(None);
    }
    if view.is_link(path) {
        bail!(
            "{} is a symbolic link: refusing to replace it",
            path.display()
        );
    }
    let data = view
        .read(path)
        .with_context(|| format!("cannot read {}", path.display()))?;
    let mode = view.mode(path)?;
    Ok(Some(Existing {
        sha256: sha256_hex(&data),
        data,
        mode,
    }))
}

/// Folders from the top down that must be created for `dir` to exist.
pub fn missing_dirs(view: &View, dir: &Path) -> Vec<PathBuf> {
    let mut missing: Vec<PathBuf> = dir
        .ancestors()
        .take_while(|d| !view.exists(d))
        .map(Path::to_path_buf)
        .collect();
    missing.reverse();
    missing
}
