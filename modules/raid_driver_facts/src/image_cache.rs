//! The image cache: what a gather learnt from an initramfs image (its
//! compression, whether an early cpio leads it, the module copy it holds),
//! kept so that an unchanged image is decoded once, not at every gather.
//!
//! An entry is keyed by the image file's identity (device, inode, size,
//! mtime and ctime, read from the open file) and by the SHA-256 of the
//! binary that read it, so a rewritten or replaced image, or a new build of
//! this module, misses. It lives in a private folder of root's
//! ([`Host::private_folder`]): the module runs as root and trusts what it
//! finds there, so no other user may be able to plant or swap an entry. A
//! gather only reads entries; the entries it learnt are written by a real
//! run, never in check mode. The same folder keeps the lists of a module's
//! copies in each kernel's module tree ([`crate::copies_cache`]), the
//! answers of `modinfo -n` and `dkms status` ([`crate::answers_cache`]) and
//! what each copy says of itself ([`crate::files_cache`]).

use std::fs::Metadata;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result};
use formats::compress::Compression;
use formats::modinfo::{sha256_hex, ModInfo};
use linux_host::host::{process_uid, temp_writer};
use linux_host::Host;
use serde::{Deserialize, Serialize};

/// Where entries are kept unless the task says otherwise: beside the
/// module binaries the action plugin caches.
pub const DEFAULT: &str = "/var/cache/aacraid-modules/facts";

/// The file listing the binaries seen (identity and SHA-256), newest
/// first; not an entry (no `.json`), so never taken for an orphan.
const BINARIES: &str = "binaries";
/// How many binaries the list remembers.
const BINARIES_KEPT: usize = 8;

/// An image entry is a few hundred bytes; anything larger is not one of ours.
const ENTRY_MAX: u64 = 64 * 1024;
/// A module tree's entry holds a line per folder (about 130 bytes; Debian's
/// kernels have about 900 folders).
pub(crate) const TREE_ENTRY_MAX: u64 = 16 << 20;

/// Which file an entry describes, and which build read it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Key {
    binary: String,
    image: String,
    release: String,
    name: String,
    identity: Identity,
}

/// What changes when a file is rewritten or replaced. The ctime cannot be
/// set back by anyone, so a file changed in place never matches again.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Identity {
    dev: u64,
    ino: u64,
    size: u64,
    mtime: (i64, i64),
    ctime: (i64, i64),
}

impl Identity {
    pub fn of(meta: &Metadata) -> Identity {
        Identity {
            dev: meta.dev(),
            ino: meta.ino(),
            size: meta.size(),
            mtime: (meta.mtime(), meta.mtime_nsec()),
            ctime: (meta.ctime(), meta.ctime_nsec()),
        }
    }

    /// Whether neither time of the file is within
    /// [`RECENT`](crate::stamp::RECENT) seconds of `started`.
    pub fn settled(&self, started: SystemTime) -> bool {
        let Ok(started) = started.duration_since(UNIX_EPOCH) else {
            return false;
        };
        let limit = i64::try_from(started.as_secs()).unwrap_or(i64::MAX) - crate::stamp::RECENT;
        self.mtime.0 < limit && self.ctime.0 < limit
    }
}

/// What a gather learns from one image for one module name.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Learnt {
    pub compression: Compression,
    pub early_cpio: bool,
    /// The offset of the segment initramfs_regen appended, if any.
    pub appended_segment: Option<u64>,
    pub module: Option<Member>,
}

/// The image's copy of the module.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Member {
    pub path: String,
    pub size: u64,
    pub sha256: String,
    pub info: ModInfo,
}

#[derive(Serialize, Deserialize)]
struct Entry {
    key: Key,
    learnt: Learnt,
}

/// An open cache: entries are read from it while gathering, and what was
/// learnt is queued for [`Cache::write`].
pub struct Cache {
    pub(crate) dir: PathBuf,
    /// SHA-256 of the running binary.
    pub(crate) binary: String,
    /// Entries to write: file, bytes.
    queued: Mutex<Vec<(PathBuf, Vec<u8>)>>,
    /// The entries this gather looked up: their image was open or their
    /// kernel installed, so they are no orphans and are not read again.
    live: Mutex<Vec<PathBuf>>,
    /// The copies of each (kernel, module name) looked for in this gather.
    pub(crate) looked: Mutex<Vec<((String, String), crate::copies_cache::Slot)>>,
}

impl Cache {
    /// The cache at `dir` (`""`: none). `Ok(None)` when it is off or this
    /// process is not root's (whose gathers cannot keep a root-only
    /// cache); an error, which the caller reports as a warning, when the
    /// folder is not private to root or the running binary cannot be read.
    pub fn open(host: &Host, dir: &str) -> Result<Option<Cache>> {
        if dir.is_empty() || process_uid() != 0 {
            return Ok(None);
        }
        let dir = PathBuf::from(dir);
        match host.symlink_metadata(&dir) {
            // Made, and checked, by the first real run that has an entry to keep.
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            _ => host.private_folder(&dir, false)?,
        }
        let mut cache = Cache {
            dir,
            binary: String::new(),
            queued: Mutex::new(Vec::new()),
            live: Mutex::new(Vec::new()),
            looked: Mutex::default(),
        };
        cache.binary = cache
            .binary_sha256(host)
            .context("cannot read the running binary to key the image cache")?;
        Ok(Some(cache))
    }

    /// SHA-256 of the running binary: from the list of binaries this cache
    /// has seen while the file has the identity it had when hashed (a new
    /// build is a new file, or a changed one), else hashed and the list
    /// queued with it first.
    fn binary_sha256(&self, host: &Host) -> Result<String> {
        let mut exe = host.open(Path::new("/proc/self/exe"))?;
        let identity = Identity::of(&exe.metadata()?);
        let list = self.dir.join(BINARIES);
        let mut known: Vec<(Identity, String)> = host
            .read_capped(&list, ENTRY_MAX)
            .ok()
            .and_then(|(bytes, _)| serde_json::from_slice(&bytes).ok())
            .unwrap_or_default();
        if let Some((_, sha256)) = known.iter().find(|(seen, _)| *seen == identity) {
            return Ok(sha256.clone());
        }
        let mut bytes = Vec::new();
        std::io::Read::read_to_end(&mut exe, &mut bytes)?;
        let sha256 = sha256_hex(&bytes);
        known.insert(0, (identity, sha256.clone()));
        known.truncate(BINARIES_KEPT);
        if let Ok(bytes) = serde_json::to_vec(&known) {
            self.queue_bytes(list, bytes);
        }
        Ok(sha256)
    }

    /// The key of `image`, whose open file has `meta`, for module `name`.
    pub fn key(&self, image: &Path, release: &str, name: &str, meta: &Metadata) -> Key {
        Key {
            binary: self.binary.clone(),
            image: image.display().to_string(),
            release: release.to_string(),
            name: name.to_string(),
            identity: Identity::of(meta),
        }
    }

    /// The file of the entry for `key`'s image, release and name: one per
    /// image and module, replaced when the image changes.
    fn entry_path(&self, key: &Key) -> PathBuf {
        let id = sha256_hex(format!("{}\0{}\0{}", key.image, key.release, key.name).as_bytes());
        self.dir.join(format!("{id}.json"))
    }

    /// What was learnt earlier from exactly this file, if anything. A
    /// missing, unreadable or foreign entry is a miss.
    pub fn get(&self, host: &Host, key: &Key) -> Option<Learnt> {
        let (entry, _): (Entry, _) = self.read_entry(host, &self.entry_path(key), ENTRY_MAX)?;
        (entry.key == *key).then_some(entry.learnt)
    }

    /// The entry at `path` (at most `cap` bytes, not through a link) and its
    /// bytes, noted as looked up by this gather; `None` when it is missing,
    /// unreadable or not of type `T`.
    pub(crate) fn read_entry<T: serde::de::DeserializeOwned>(
        &self,
        host: &Host,
        path: &Path,
        cap: u64,
    ) -> Option<(T, Vec<u8>)> {
        self.note_live(path);
        let (bytes, _) = host.read_capped(path, cap).ok()?;
        let entry = serde_json::from_slice(&bytes).ok()?;
        Some((entry, bytes))
    }

    /// Queues `learnt` to be kept under `key`.
    pub fn queue(&self, key: Key, learnt: Learnt) {
        let path = self.entry_path(&key);
        if let Ok(bytes) = serde_json::to_vec(&Entry { key, learnt }) {
            self.queue_bytes(path, bytes);
        }
    }

    /// Records that the entry at `path` describes what this gather found.
    pub(crate) fn note_live(&self, path: &Path) {
        if let Ok(mut live) = self.live.lock() {
            live.push(path.to_path_buf());
        }
    }

    pub(crate) fn queue_bytes(&self, path: PathBuf, bytes: Vec<u8>) {
        if let Ok(mut queued) = self.queued.lock() {
            queued.push((path, bytes));
        }
    }

    /// Writes the queued entries, making the folder (mode 0700) when it is
    /// missing, and removes the entries of images and module trees that are
    /// gone; fails at the first entry it cannot keep.
    pub fn write(&self, host: &Host) -> Result<()> {
        let queued = match self.queued.lock() {
            Ok(mut queued) => std::mem::take(&mut *queued),
            Err(_) => return Ok(()),
        };
        if queued.is_empty() && !host.exists(&self.dir) {
            return Ok(());
        }
        host.private_folder(&self.dir, true)?;
        self.remove_leftovers(host);
        self.remove_orphans(host);
        for (path, bytes) in queued {
            host.write_atomic(&path, &bytes, 0o600)?;
        }
        Ok(())
    }

    /// Removes the entries whose image or module tree no longer exists (a
    /// removed kernel's), so the folder holds at most one entry per image,
    /// or kernel, and module name present. An entry that cannot be read is
    /// left: the next miss on its image or tree replaces it. The entries
    /// this gather looked up are not read again.
    fn remove_orphans(&self, host: &Host) {
        let live = self.live.lock().map(|l| l.clone()).unwrap_or_default();
        for dirent in host.read_dir(&self.dir).unwrap_or_default() {
            let path = self.dir.join(&dirent.name);
            if !dirent.name.ends_with(".json") || live.contains(&path) {
                continue;
            }
            let Ok((bytes, _)) = host.read_capped(&path, TREE_ENTRY_MAX) else {
                continue;
            };
            let subject = if dirent.name.starts_with(crate::copies_cache::PREFIX) {
                crate::copies_cache::subject(&bytes)
            } else if dirent.name.starts_with(crate::answers_cache::PREFIX) {
                crate::answers_cache::subject(&bytes)
            } else if dirent.name.starts_with(crate::files_cache::PREFIX) {
                crate::files_cache::subject(&bytes)
            } else {
                serde_json::from_slice::<Entry>(&bytes)
                    .map(|e| PathBuf::from(e.key.image))
                    .ok()
            };
            let gone = subject.is_some_and(|subject| {
                matches!(host.symlink_metadata(&subject),
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound)
            });
            if gone {
                let _ = host.remove_file(&path);
            }
        }
    }

    /// Removes the temporary files of writers that were killed before
    /// their rename (their process is gone); a live writer's are left.
    fn remove_leftovers(&self, host: &Host) {
        for entry in host.read_dir(&self.dir).unwrap_or_default() {
            if let Some(pid) = temp_writer(&entry.name) {
                if !Path::new("/proc").join(pid).exists() {
                    let _ = host.remove_file(&self.dir.join(&entry.name));
                }
            }
        }
    }
}
