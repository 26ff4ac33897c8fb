//! The module files' half of the facts cache: what a copy of the module
//! says of itself (SHA-256, `.modinfo`, signature), kept with the identity
//! of the path and of the file it leads to, so that an unchanged copy is
//! not read and hashed again at every gather.

use std::path::{Path, PathBuf};
use std::time::SystemTime;

use formats::modinfo::{sha256_hex, ModInfo};
use linux_host::kmod::ModuleFile;
use linux_host::Host;
use serde::{Deserialize, Serialize};

use crate::image_cache::Cache;
use crate::stamp::Stamp;

/// A kept file entry is a few hundred bytes (a signature's names among them).
const FILE_ENTRY_MAX: u64 = 64 * 1024;

#[derive(Serialize, Deserialize)]
struct FileEntry {
    binary: String,
    release: String,
    stamp: Stamp,
    file: Kept,
}

/// A [`ModuleFile`] as kept (its `.modinfo` fields not flattened, which
/// would cost the binary a buffering deserialiser).
#[derive(Serialize, Deserialize)]
struct Kept {
    path: PathBuf,
    tree: String,
    link_target: Option<PathBuf>,
    sha256: Option<String>,
    info: ModInfo,
    error: Option<String>,
}

impl From<Kept> for ModuleFile {
    fn from(kept: Kept) -> ModuleFile {
        ModuleFile {
            path: kept.path,
            tree: kept.tree,
            link_target: kept.link_target,
            sha256: kept.sha256,
            info: kept.info,
            error: kept.error,
        }
    }
}

impl From<&ModuleFile> for Kept {
    fn from(file: &ModuleFile) -> Kept {
        Kept {
            path: file.path.clone(),
            tree: file.tree.clone(),
            link_target: file.link_target.clone(),
            sha256: file.sha256.clone(),
            info: file.info.clone(),
            error: file.error.clone(),
        }
    }
}

/// Files of file entries start with this.
pub const PREFIX: &str = "file-";

impl Cache {
    fn file_path(&self, path: &Path) -> PathBuf {
        let id = sha256_hex(path.as_os_str().as_encoded_bytes());
        self.dir.join(format!("{PREFIX}{id}.json"))
    }

    fn kept_file(
        &self,
        host: &Host,
        release: &str,
        path: &Path,
        stamp: &Stamp,
    ) -> Option<ModuleFile> {
        let (entry, _): (FileEntry, _) =
            self.read_entry(host, &self.file_path(path), FILE_ENTRY_MAX)?;
        (entry.binary == self.binary
            && entry.release == release
            && entry.file.path == path
            && stamp.matches(&entry.stamp))
        .then(|| entry.file.into())
    }
}

/// Module file `path` of kernel `release`, as [`ModuleFile::read`] reads
/// it: from the cache while neither the path nor the file it leads to
/// changed, else read (and kept for the next gather when it may be).
pub fn module_file(cache: Option<&Cache>, host: &Host, release: &str, path: &Path) -> ModuleFile {
    let Some(cache) = cache else {
        return ModuleFile::read(host, release, path);
    };
    let started = SystemTime::now();
    let mut stamp = Stamp::default();
    stamp.file(host, path);
    if let Some(kept) = cache.kept_file(host, release, path, &stamp) {
        return kept;
    }
    let file = ModuleFile::read(host, release, path);
    if file.error.is_none() && stamp.keepable(started) {
        let entry = FileEntry {
            binary: cache.binary.clone(),
            release: release.to_string(),
            stamp,
            file: Kept::from(&file),
        };
        if let Ok(bytes) = serde_json::to_vec(&entry) {
            cache.queue_bytes(cache.file_path(path), bytes);
        }
    }
    file
}

/// The module file a file entry describes.
pub fn subject(bytes: &[u8]) -> Option<PathBuf> {
    let entry: FileEntry = serde_json::from_slice(bytes).ok()?;
    Some(entry.file.path)
}
