//! The one rule for the names, modes and entry sets of every archive we
//! read (vendor tarballs, rpm payloads, artifacts, initramfs images), so
//! that whatever a caller writes from them stays inside the folder it
//! writes to.
//!
//! - A name is normalised: empty and `.` components are dropped (`./a//b`
//!   is `a/b`, `./` is the archive's root, the empty name); `..` is
//!   refused, and so is a NUL byte. The result never starts with `/`, so
//!   joining it to a folder stays in that folder. Whether a leading `/` is
//!   accepted is the format's business: tar refuses it, cpio reads it as
//!   the archive's root (as the kernel and rpm do).
//! - Permission bits are masked with [`MODE_MASK`].
//! - An entry set may not name a path twice (unpackers keep the last copy,
//!   a reader might take the first), nor put an entry under a path that is
//!   not a folder (a symlink or file), see [`check_tree`].

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{bail, Result};

/// Permission bits kept from an archive entry: read, write and execute for
/// owner and group, read and execute for others. Setuid, setgid, sticky
/// and world-writable bits are dropped.
pub const MODE_MASK: u32 = 0o775;

/// `raw` as a normalised relative name (`""` for the root itself); a
/// leading `/` is refused.
pub fn relative(raw: &str) -> Result<String> {
    if raw.starts_with('/') {
        bail!("absolute paths are not accepted");
    }
    if raw.contains('\0') {
        bail!("a NUL byte in a path is not accepted");
    }
    let mut parts = Vec::new();
    for part in raw.split('/') {
        match part {
            "" | "." => {}
            ".." => bail!("`..` in a path is not accepted"),
            part => parts.push(part),
        }
    }
    Ok(parts.join("/"))
}

/// `root` joined with `name`, which must already be a normalised,
/// non-empty relative name (as [`relative`] returns): the result is
/// inside `root`.
pub fn join(root: &Path, name: &str) -> Result<PathBuf> {
    if name.is_empty() || relative(name)? != name {
        bail!("{name:?} is not a plain relative path");
    }
    Ok(root.join(name))
}

/// Refuses a set of `(name, is_folder)` entries that names a path twice
/// (but for a folder listed again) or puts an entry under a name that is
/// not a folder.
pub fn check_tree<'a>(entries: impl IntoIterator<Item = (&'a str, bool)>) -> Result<()> {
    let mut seen: BTreeMap<&str, bool> = BTreeMap::new();
    for (name, folder) in entries {
        if let Some(was_folder) = seen.insert(name, folder) {
            if !(was_folder && folder) {
                bail!("{name:?} appears twice in the archive");
            }
        }
    }
    for name in seen.keys() {
        for (at, _) in name.match_indices('/') {
            if seen.get(&name[..at]) == Some(&false) {
                bail!(
                    "{name:?} lies under {:?}, which is not a folder",
                    &name[..at]
                );
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Names that would write outside the target folder once joined, and
    /// the spellings of the root that real tar and cpio writers produce.
    #[test]
    fn names_are_normalised_or_refused() -> Result<()> {
        assert_eq!(relative("./")?, "");
        assert_eq!(relative(".")?, "");
        assert_eq!(relative("./a//b/./c/")?, "a/b/c");
        assert_eq!(
            relative("usr/src/aacraid-1.2//etc/cron.d/x")?,
            "usr/src/aacraid-1.2/etc/cron.d/x"
        );
        for (bad, why) in [
            ("/etc/passwd", "absolute"),
            ("a/../../x", "`..`"),
            ("..", "`..`"),
            ("a/b\0c", "NUL"),
        ] {
            let err = relative(bad).expect_err(bad);
            assert!(err.to_string().contains(why), "{bad:?}: {err}");
        }
        let root = Path::new("/usr/src/aacraid-1.2");
        assert_eq!(join(root, "etc/x")?, root.join("etc/x"));
        for bad in ["", "/etc/x", "a//b", "./a", "a/../../b"] {
            assert!(join(root, bad).is_err(), "{bad:?}");
        }
        Ok(())
    }

    /// Duplicate names (tar -x keeps the last copy, a reader the first)
    /// and entries under a file or symlink (written through it).
    #[test]
    fn duplicates_and_entries_under_non_folders_are_refused() {
        assert!(check_tree([("a", true), ("a", true), ("a/b", false)]).is_ok());
        assert!(check_tree([("a-b", false), ("a", true), ("a/b", false)]).is_ok());
        for (set, why) in [
            (
                vec![("aacraid.ko", false), ("aacraid.ko", false)],
                "appears twice",
            ),
            (vec![("a", true), ("a", false)], "appears twice"),
            (vec![("link", false), ("link/x", false)], "not a folder"),
            (vec![("d/l/x", false), ("d/l", false)], "not a folder"),
        ] {
            let err = check_tree(set.clone()).expect_err("refused");
            assert!(err.to_string().contains(why), "{set:?}: {err}");
        }
    }
}
