//! The package's source tree in `/usr/src/<name>-<version>`: how it is
//! compared with the package on every run, and how a new one is put in
//! place whole.
//!
//! The tree holds a checksum list, [`LIST`]: one line per file of the
//! package, `<sha256> <mode> <path>` (octal mode, the path escaped as Rust's
//! `escape_default` does), sorted by path. It is written inside the tree,
//! last, so it exists only for a tree that was written completely, and a
//! new tree arrives with its list in one rename. DKMS copies it into its
//! build folder with the rest and ignores it.
//!
//! A new tree is written into a private folder beside its destination
//! (`/usr/src/.aacraid_build-<pid>-<n>`, see `Host::private_dir`), every
//! file fsynced, and renamed into place; the old tree, if any, is first
//! renamed into another such folder and removed afterwards. A run killed
//! on the way leaves only such folders, which the next run removes
//! ([`leftovers`]).

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use formats::cpio::Member;
use formats::modinfo::sha256_hex;
use formats::path;
use linux_host::host::Kind;
use linux_host::Host;
use serde::Serialize;

/// The checksum list's name, at the top of the tree.
pub const LIST: &str = ".aacraid_build.sha256";

/// Where DKMS source trees live.
pub const SRC_ROOT: &str = "/usr/src";

/// The prefix of staging folders in [`SRC_ROOT`] (`Host::private_dir`
/// makes `.<prefix>-<pid>-<n>`).
pub const STAGING: &str = "aacraid_build";

/// How many differences a result lists.
const SHOWN: usize = 10;

/// Each file of a tree by relative path: its mode and SHA-256.
pub type Listing = BTreeMap<String, (u32, String)>;

/// What the run does with the tree.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Action {
    /// It matches the package and its checksum list: nothing.
    Current,
    /// It is missing: it is written.
    Installed,
    /// It differs from the package: it is replaced whole.
    Replaced,
    /// It matches the package but has no (or another) checksum list: the
    /// list is written.
    Adopted,
    /// `src` is the tree itself and it changed since its list was written:
    /// the list is written again and the module rebuilt.
    Changed,
}

/// The tree's part of a result.
#[derive(Clone, Debug, Serialize)]
pub struct Shown {
    /// `/usr/src/<name>-<version>`.
    pub path: PathBuf,
    /// What the run does (did) with it.
    pub action: Action,
    /// How it differs from the package (the first few differences).
    pub differences: Vec<String>,
}

/// The listing of a package's files (regular files only: packages hold
/// nothing else, see `source`).
pub fn listing(files: &[Member]) -> Listing {
    files
        .iter()
        .map(|f| (f.path.clone(), (f.mode, sha256_hex(&f.data))))
        .collect()
}

/// The checksum list's bytes for `listing`.
pub fn render(listing: &Listing) -> Vec<u8> {
    let mut out = String::new();
    for (name, (mode, sha256)) in listing {
        out.push_str(&format!("{sha256} {mode:04o} {}\n", name.escape_default()));
    }
    out.into_bytes()
}

/// The listing of the tree at `dir` (its checksum list left out), with
/// what in it is neither a regular file nor a folder, which no package
/// holds. Modes are masked as a package's are.
pub fn read(host: &Host, dir: &Path) -> Result<(Listing, Vec<String>)> {
    let mut listing = Listing::new();
    let mut odd = Vec::new();
    let mut stack = vec![(dir.to_path_buf(), String::new())];
    while let Some((at, prefix)) = stack.pop() {
        let entries = host
            .read_dir(&at)
            .with_context(|| format!("cannot list {}", at.display()))?;
        for entry in entries {
            let rel = format!("{prefix}{}", entry.name);
            match entry.kind {
                Kind::Dir => stack.push((entry.path, format!("{rel}/"))),
                Kind::File if rel == LIST => {}
                Kind::File => {
                    let data = host
                        .read(&entry.path)
                        .with_context(|| format!("cannot read {}", entry.path.display()))?;
                    let mode = host.mode(&entry.path)? & path::MODE_MASK;
                    listing.insert(rel, (mode, sha256_hex(&data)));
                }
                Kind::Symlink => odd.push(format!("{rel}: a symbolic link")),
                Kind::Other => odd.push(format!("{rel}: a special file")),
            }
        }
    }
    Ok((listing, odd))
}

/// How the tree `have` differs from the package `want`, in path order.
pub fn differences(want: &Listing, have: &Listing) -> Vec<String> {
    let names: BTreeSet<&String> = want.keys().chain(have.keys()).collect();
    names
        .into_iter()
        .filter_map(|name| match (want.get(name), have.get(name)) {
            (Some(_), None) => Some(format!("{name}: missing")),
            (None, Some(_)) => Some(format!("{name}: not in the package")),
            (Some((_, w)), Some((_, h))) if w != h => Some(format!("{name}: content differs")),
            (Some((w, _)), Some((h, _))) if w != h => {
                Some(format!("{name}: mode {h:04o}, the package's is {w:04o}"))
            }
            _ => None,
        })
        .collect()
}

/// Keeps the first [`SHOWN`] differences, saying how many were left out.
pub fn shorten(mut all: Vec<String>) -> Vec<String> {
    if all.len() > SHOWN {
        let more = all.len() - SHOWN;
        all.truncate(SHOWN);
        all.push(format!("and {more} more"));
    }
    all
}

/// Whether `name` is one of our staging folders: `.aacraid_build-<pid>-<n>`.
pub fn is_staging_name(name: &str) -> bool {
    linux_host::host::is_private_dir_name(name, STAGING)
}

/// Staging folders that killed runs left in [`SRC_ROOT`]. (Runs are
/// serialised by the lock on it, so none is in use.)
pub fn leftovers(host: &Host) -> Result<Vec<PathBuf>> {
    let root = Path::new(SRC_ROOT);
    if !host.exists(root) {
        return Ok(Vec::new());
    }
    Ok(host
        .read_dir(root)
        .with_context(|| format!("cannot list {SRC_ROOT}"))?
        .into_iter()
        .filter(|e| e.kind == Kind::Dir && is_staging_name(&e.name))
        .map(|e| e.path)
        .collect())
}

/// Writes `files` and the checksum list `list` as a new tree at `dir`,
/// replacing whatever is there, so that `dir` is at every moment either
/// the old tree, absent, or the whole new one.
pub fn put(host: &Host, dir: &Path, files: &[Member], list: &[u8]) -> Result<()> {
    let parent = dir.parent().unwrap_or(Path::new(SRC_ROOT));
    let stage = host.private_dir(parent, STAGING)?;
    let mut folders = BTreeSet::new();
    for f in files {
        let target = path::join(&stage.path, &f.path)?;
        let mut at = target.parent();
        while let Some(folder) = at.filter(|a| *a != stage.path) {
            folders.insert(folder.to_path_buf());
            at = folder.parent();
        }
        if let Some(folder) = target.parent() {
            host.create_dir_all(folder)?;
        }
        host.write_atomic_as_root(&target, &f.data, f.mode)?;
    }
    host.write_atomic_as_root(&stage.path.join(LIST), list, 0o644)?;
    // Deepest first, so each folder's entry is flushed in its parent.
    for folder in folders.iter().rev() {
        host.sync_dir(folder)?;
    }
    host.set_mode(&stage.path, 0o755)?;
    let old = if host.exists(dir) {
        let aside = host.private_dir(parent, STAGING)?;
        host.rename_durably(dir, &aside.path.join("old"))?;
        Some(aside)
    } else {
        None
    };
    stage.persist(dir)?;
    drop(old);
    Ok(())
}

/// Removes a staging folder a killed run left.
pub fn remove_leftover(host: &Host, dir: &Path) -> Result<()> {
    let name = dir
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    if dir.parent() != Some(Path::new(SRC_ROOT)) || !is_staging_name(&name) {
        bail!("{} is not a staging folder of aacraid_build", dir.display());
    }
    host.remove_tree(dir)
}

#[cfg(test)]
mod tests {
    use super::*;
    use linux_host::Script;

    fn member(path: &str, mode: u32, data: &[u8]) -> Member {
        Member {
            path: path.into(),
            mode,
            regular: true,
            data: data.to_vec(),
        }
    }

    #[test]
    fn the_list_is_sorted_escaped_and_names_mode_and_checksum() {
        let files = [
            member("sub/b.c", 0o644, b"b"),
            member("a\nb", 0o755, b""),
            member("dkms.conf", 0o644, b"x"),
        ];
        let text = String::from_utf8(render(&listing(&files))).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(
            lines,
            [
                "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855 0755 a\\nb",
                "2d711642b726b04401627ca9fbac32f5c8530fb1903cc4db02258717921a4881 0644 dkms.conf",
                "3e23e8160039594a33894f6564e1b1348bbd7a0088d42c4acb73eeaed59c009d 0644 sub/b.c",
            ]
        );
    }

    #[test]
    fn differences_name_each_file_once() {
        let want = listing(&[
            member("same", 0o644, b"1"),
            member("edited", 0o644, b"new"),
            member("gone", 0o644, b"x"),
            member("chmod", 0o755, b"x"),
        ]);
        let have = listing(&[
            member("same", 0o644, b"1"),
            member("edited", 0o644, b"old"),
            member("extra", 0o644, b"x"),
            member("chmod", 0o644, b"x"),
        ]);
        assert_eq!(
            differences(&want, &have),
            [
                "chmod: mode 0644, the package's is 0755",
                "edited: content differs",
                "extra: not in the package",
                "gone: missing",
            ]
        );
        assert!(differences(&want, &want).is_empty());
        let many = (0..12).map(|n| n.to_string()).collect::<Vec<_>>();
        let short = shorten(many);
        assert_eq!(short.len(), 11);
        assert_eq!(short[10], "and 2 more");
    }

    #[test]
    fn staging_names_are_recognised_exactly() {
        assert!(is_staging_name(".aacraid_build-1234-0"));
        assert!(is_staging_name(".aacraid_build-1-63"));
        for other in [
            "aacraid_build-1-0",
            ".aacraid_build-1",
            ".aacraid_build-1-0-old",
            ".aacraid_build--0",
            ".aacraid_build-x-0",
            "aacraid-1.2.1",
            ".aacraid_build.sha256",
        ] {
            assert!(!is_staging_name(other), "{other}");
        }
    }

    #[test]
    fn a_new_tree_replaces_the_old_whole_and_reads_back_as_written() -> Result<()> {
        let dir = tempfile::tempdir()?;
        let src = dir.path().join("usr/src");
        std::fs::create_dir_all(src.join("aacraid-1.0/stale"))?;
        std::fs::write(src.join("aacraid-1.0/stale/old.c"), "old")?;
        std::fs::write(src.join("aacraid-1.0/dkms.conf"), "trunc")?;
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&src, std::fs::Permissions::from_mode(0o755))?;
        let host = Host::scripted(dir.path(), Script::new());
        let tree = Path::new("/usr/src/aacraid-1.0");
        let files = [
            member("dkms.conf", 0o644, b"PACKAGE_NAME=aacraid\n"),
            member("src/deep/aacraid.c", 0o644, b"/* c */"),
            member("tool", 0o755, b"#!/bin/sh\n"),
        ];
        let want = listing(&files);
        let (before, _) = read(&host, tree)?;
        assert_eq!(
            differences(&want, &before),
            [
                "dkms.conf: content differs",
                "src/deep/aacraid.c: missing",
                "stale/old.c: not in the package",
                "tool: missing",
            ]
        );
        put(&host, tree, &files, &render(&want))?;
        let (after, odd) = read(&host, tree)?;
        assert!(odd.is_empty());
        assert_eq!(after, want);
        assert_eq!(host.read(&tree.join(LIST))?, render(&want));
        assert_eq!(host.mode(tree)?, 0o755);
        assert_eq!(leftovers(&host)?, Vec::<PathBuf>::new(), "no staging left");

        std::fs::create_dir(src.join(".aacraid_build-99-0"))?;
        std::fs::write(src.join(".aacraid_build-99-0/dkms.conf"), "half")?;
        let left = leftovers(&host)?;
        assert_eq!(left, [PathBuf::from("/usr/src/.aacraid_build-99-0")]);
        remove_leftover(&host, &left[0])?;
        assert!(leftovers(&host)?.is_empty());
        assert!(
            remove_leftover(&host, tree).is_err(),
            "only staging folders"
        );
        Ok(())
    }
}
