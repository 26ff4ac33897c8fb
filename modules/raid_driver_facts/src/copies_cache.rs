//! The module-tree half of the facts cache: where a module's copies are in
//! a kernel's module tree, kept so that an unchanged tree is not walked at
//! every gather (about 900 folders for a Debian kernel, the largest share
//! of a gather served from the image cache).
//!
//! Adding, removing or renaming an entry of a folder changes that folder's
//! modification and change times, so the list is still true while every
//! folder the walk listed has the identity it had just before it was
//! listed; checking that takes one `lstat` per folder instead of reading
//! them all. A folder changed within [`RECENT`] of the walk is not trusted
//! to show it (file systems keep coarse times), so such a walk is not kept.
//! The copies' contents are not cached: every gather reads them.

use std::fs::Metadata;
use std::os::unix::fs::MetadataExt;
use std::path::PathBuf;
use std::time::{SystemTime, UNIX_EPOCH};

use formats::modinfo::sha256_hex;
use linux_host::kernel::modules_dir;
use linux_host::Host;
use serde::{Deserialize, Serialize};

use crate::image_cache::{Cache, Identity, TREE_ENTRY_MAX};

/// A walk is kept only when no folder of it changed in the last seconds.
const RECENT: i64 = 2;

#[derive(Serialize, Deserialize)]
struct TreeEntry {
    binary: String,
    release: String,
    name: String,
    /// Every folder listed, relative to `/lib/modules/<release>` (`""` for
    /// that folder), with its identity just before it was listed.
    folders: Vec<(String, Identity)>,
    /// The copies found, absolute paths.
    copies: Vec<String>,
}

/// The folders a walk listed, with what `lstat` said of each just before.
pub type Visited = Vec<(PathBuf, Option<Metadata>)>;

impl Cache {
    fn tree_path(&self, release: &str, name: &str) -> PathBuf {
        let id = sha256_hex(format!("{release}\0{name}").as_bytes());
        self.dir.join(format!("tree-{id}.json"))
    }

    /// The copies of `name` under kernel `release`'s module tree, when an
    /// entry of this build says where they are and no folder of the tree
    /// changed since; else `None` (a miss).
    pub fn copies(&self, host: &Host, release: &str, name: &str) -> Option<Vec<PathBuf>> {
        let path = self.tree_path(release, name);
        self.note_live(&path);
        let (bytes, _) = host.read_capped(&path, TREE_ENTRY_MAX).ok()?;
        let entry: TreeEntry = serde_json::from_slice(&bytes).ok()?;
        if entry.binary != self.binary || entry.release != release || entry.name != name {
            return None;
        }
        let root = modules_dir(release);
        let unchanged = entry.folders.iter().all(|(folder, identity)| {
            host.symlink_metadata(&root.join(folder))
                .is_ok_and(|m| m.is_dir() && Identity::of(&m) == *identity)
        });
        let copies: Vec<PathBuf> = entry.copies.iter().map(PathBuf::from).collect();
        (unchanged && copies.iter().all(|c| c.starts_with(&root))).then_some(copies)
    }

    /// Queues the result of a walk of `release`'s tree that started at
    /// `started`, unless a folder could not be read or changed too recently.
    pub fn queue_copies(
        &self,
        release: &str,
        name: &str,
        started: SystemTime,
        visited: &Visited,
        copies: &[PathBuf],
    ) {
        let Ok(started) = started.duration_since(UNIX_EPOCH) else {
            return;
        };
        let settled = i64::try_from(started.as_secs()).unwrap_or(i64::MAX) - RECENT;
        let root = modules_dir(release);
        let mut folders = Vec::with_capacity(visited.len());
        for (path, meta) in visited {
            let (Some(meta), Ok(relative)) = (meta, path.strip_prefix(&root)) else {
                return;
            };
            if !meta.is_dir() || meta.ctime() >= settled || meta.mtime() >= settled {
                return;
            }
            folders.push((relative.display().to_string(), Identity::of(meta)));
        }
        let entry = TreeEntry {
            binary: self.binary.clone(),
            release: release.to_string(),
            name: name.to_string(),
            folders,
            copies: copies.iter().map(|c| c.display().to_string()).collect(),
        };
        if let Ok(bytes) = serde_json::to_vec(&entry) {
            self.queue_bytes(self.tree_path(release, name), bytes);
        }
    }
}

/// The module tree a tree entry describes: when it is gone, so is the
/// entry's use.
pub fn subject(bytes: &[u8]) -> Option<PathBuf> {
    let entry: TreeEntry = serde_json::from_slice(bytes).ok()?;
    Some(modules_dir(&entry.release))
}
