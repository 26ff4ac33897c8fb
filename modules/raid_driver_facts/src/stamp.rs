//! What a set of files and folders looked like just before a tool read
//! them, or before the module read them itself: the key of the answers the
//! facts cache keeps for `modinfo -n` and `dkms status`
//! ([`crate::answers_cache`]) and for what a module file says of itself
//! ([`crate::files_cache`]).
//!
//! An answer is served again only while every path of its stamp has the
//! identity it had (or is still absent). Writing a file changes its change
//! time, and adding, removing or renaming an entry changes its folder's, so
//! a stamp that covers everything an answer depends on cannot match after a
//! change. File systems keep coarse times, so a stamp with a path changed
//! within [`RECENT`] seconds of the read is not kept: a second change in the
//! same tick would go unseen.

use std::path::Path;
use std::time::SystemTime;

use linux_host::Host;
use serde::{Deserialize, Serialize};

use crate::image_cache::Identity;

/// Seconds within which a change is too recent to be told from the next.
pub const RECENT: i64 = 2;

/// Paths and their identities (`None`: absent), in the order added.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Stamp {
    paths: Vec<(String, Option<Identity>)>,
    /// A path could be neither examined nor found absent (permissions, an
    /// I/O error), or the caller could not name every path: such a stamp
    /// is never kept and never matches.
    #[serde(skip)]
    unreadable: bool,
}

impl Stamp {
    /// Adds `path` as it is, not following a link there.
    pub fn entry(&mut self, host: &Host, path: &Path) {
        let meta = host.symlink_metadata(path);
        self.add(path, meta);
    }

    /// Adds what `path` leads to, following links.
    pub fn followed(&mut self, host: &Host, path: &Path) {
        let meta = std::fs::metadata(host.real_path(path));
        self.add(path, meta);
    }

    /// Adds `path` as it is and, when it is a link, what it leads to: what
    /// reading the file through `path` depends on.
    pub fn file(&mut self, host: &Host, path: &Path) {
        let meta = host.symlink_metadata(path);
        let link = meta.as_ref().is_ok_and(|m| m.file_type().is_symlink());
        self.add(path, meta);
        if link {
            self.followed(host, path);
        }
    }

    /// Adds the folder `dir` and every entry in it, following links (so a
    /// link's target counts, not the link). The folder's path is resolved
    /// first, so that a link above it (`/lib` on merged-/usr systems) is
    /// read once, not once per entry.
    pub fn listing(&mut self, host: &Host, dir: &Path) {
        let resolved = host.canonicalize(dir);
        let dir = resolved.as_deref().unwrap_or(dir);
        self.followed(host, dir);
        match host.read_dir(dir) {
            Ok(entries) => {
                for entry in entries {
                    self.followed(host, &entry.path);
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(_) => self.unreadable = true,
        }
    }

    /// Adds a value that is not a file (a program's path as found on the
    /// search path, the running kernel's release).
    pub fn value(&mut self, what: &str, value: &str) {
        self.paths.push((format!("{what}={value}"), None));
    }

    /// Marks the stamp as not covering what the answer depends on.
    pub fn give_up(&mut self) {
        self.unreadable = true;
    }

    fn add(&mut self, path: &Path, meta: std::io::Result<std::fs::Metadata>) {
        let identity = match meta {
            Ok(meta) => Some(Identity::of(&meta)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
            Err(_) => {
                self.unreadable = true;
                None
            }
        };
        self.paths.push((path.display().to_string(), identity));
    }

    /// Whether an answer read after this stamp was taken may be served
    /// again while the stamp matches: every path was examined, and none
    /// changed within [`RECENT`] seconds of `started`.
    pub fn keepable(&self, started: SystemTime) -> bool {
        !self.unreadable
            && self
                .paths
                .iter()
                .filter_map(|(_, identity)| identity.as_ref())
                .all(|identity| identity.settled(started))
    }

    /// Whether `self`, taken now, matches `kept`, taken when an answer
    /// was kept.
    pub fn matches(&self, kept: &Stamp) -> bool {
        !self.unreadable && self.paths == kept.paths
    }
}
