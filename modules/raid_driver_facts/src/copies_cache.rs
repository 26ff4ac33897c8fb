//! The module-tree half of the facts cache: where a module's copies are in
//! a kernel's module tree, kept so that an unchanged tree is not walked at
//! every gather (about 900 folders for a Debian kernel, the largest share
//! of a gather served from the image cache).
//!
//! Adding, removing or renaming an entry of a folder changes that folder's
//! modification and change times, so the list is still true while every
//! folder the walk listed has the identity it had just before it was
//! listed; checking that takes one `lstat` per folder instead of reading
//! them all. A folder changed within [`RECENT`](crate::stamp::RECENT) of the walk is not trusted
//! to show it (file systems keep coarse times), so such a walk is not kept.
//! The copies' contents are not cached: every gather reads them.

use std::fs::Metadata;
use std::path::PathBuf;
use std::sync::{Arc, OnceLock};
use std::time::SystemTime;

use formats::modinfo::sha256_hex;
use linux_host::kernel::modules_dir;
use linux_host::Host;
use serde::{Deserialize, Serialize};

use crate::image_cache::{Cache, Identity, TREE_ENTRY_MAX};

/// Files of tree entries start with this.
pub const PREFIX: &str = "tree-";

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

/// A module's copies in a kernel's module tree.
#[derive(Clone, Debug)]
pub struct Found {
    pub paths: Vec<PathBuf>,
    /// Whether the cache said where they are (else the tree was walked).
    pub from_cache: bool,
    /// The SHA-256 of the tree entry that holds them (every folder with its
    /// identity): changes whenever a folder of the tree does. `None` when
    /// the walk could not be kept.
    pub tree: Option<String>,
}

/// What looking for a module's copies in a tree gave, or why they are unknown.
pub type Looked = Result<Found, String>;

/// Where the first look's answer is left for the others.
pub type Slot = Arc<OnceLock<Looked>>;

impl Cache {
    /// `look` for `release` and `name` the first time a thread of this
    /// gather asks; the same answer (waiting for it) every other time.
    pub fn once(&self, release: &str, name: &str, look: impl FnOnce() -> Looked) -> Looked {
        let slot = match self.looked.lock() {
            Ok(mut looked) => {
                let key = (release.to_string(), name.to_string());
                match looked.iter().find(|(k, _)| *k == key) {
                    Some((_, slot)) => Arc::clone(slot),
                    None => {
                        let slot = Slot::default();
                        looked.push((key, Arc::clone(&slot)));
                        slot
                    }
                }
            }
            Err(_) => return look(),
        };
        slot.get_or_init(look).clone()
    }

    fn tree_path(&self, release: &str, name: &str) -> PathBuf {
        let id = sha256_hex(format!("{release}\0{name}").as_bytes());
        self.dir.join(format!("{PREFIX}{id}.json"))
    }

    /// The copies of `name` under kernel `release`'s module tree, when an
    /// entry of this build says where they are and no folder of the tree
    /// changed since; else `None` (a miss).
    pub fn copies(&self, host: &Host, release: &str, name: &str) -> Option<Found> {
        let (entry, bytes): (TreeEntry, _) =
            self.read_entry(host, &self.tree_path(release, name), TREE_ENTRY_MAX)?;
        if entry.binary != self.binary || entry.release != release || entry.name != name {
            return None;
        }
        let root = modules_dir(release);
        // Resolved once: on merged-/usr systems `/lib` is a link, which every
        // lookup below it would read again (a readlink request per folder
        // where the root is a FUSE file system, as in containers).
        let resolved = host.canonicalize(&root).unwrap_or_else(|_| root.clone());
        let unchanged = entry.folders.iter().all(|(folder, identity)| {
            host.symlink_metadata(&resolved.join(folder))
                .is_ok_and(|m| m.is_dir() && Identity::of(&m) == *identity)
        });
        let copies: Vec<PathBuf> = entry.copies.iter().map(PathBuf::from).collect();
        (unchanged && copies.iter().all(|c| c.starts_with(&root))).then(|| Found {
            paths: copies,
            from_cache: true,
            tree: Some(sha256_hex(&bytes)),
        })
    }

    /// Queues the result of a walk of `release`'s tree that started at
    /// `started`, unless a folder could not be read or changed too recently;
    /// the SHA-256 of the entry queued.
    pub fn queue_copies(
        &self,
        release: &str,
        name: &str,
        started: SystemTime,
        visited: &Visited,
        copies: &[PathBuf],
    ) -> Option<String> {
        let root = modules_dir(release);
        let mut folders = Vec::with_capacity(visited.len());
        for (path, meta) in visited {
            let (Some(meta), Ok(relative)) = (meta, path.strip_prefix(&root)) else {
                return None;
            };
            let identity = Identity::of(meta);
            if !meta.is_dir() || !identity.settled(started) {
                return None;
            }
            folders.push((relative.display().to_string(), identity));
        }
        let entry = TreeEntry {
            binary: self.binary.clone(),
            release: release.to_string(),
            name: name.to_string(),
            folders,
            copies: copies.iter().map(|c| c.display().to_string()).collect(),
        };
        let bytes = serde_json::to_vec(&entry).ok()?;
        let tree = sha256_hex(&bytes);
        self.queue_bytes(self.tree_path(release, name), bytes);
        Some(tree)
    }
}

/// The module tree a tree entry describes: when it is gone, so is the
/// entry's use.
pub fn subject(bytes: &[u8]) -> Option<PathBuf> {
    let entry: TreeEntry = serde_json::from_slice(bytes).ok()?;
    Some(modules_dir(&entry.release))
}
