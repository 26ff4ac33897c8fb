//! Initramfs images: where each kernel's image lives, and reading one in
//! place (see [`formats::cpio`] for the format walk). An image is judged
//! by what the kernel ends up with when it unpacks it: every segment is
//! read, and when a path appears more than once the last copy wins.

use std::io::Read;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

use crate::host::Host;
use formats::cpio::{scan, Member, Scan};
use formats::modinfo;

/// The first entry of the segment `initramfs_regen` appends to an image
/// (`method: append`), at the image's root: how that segment is recognised.
pub const APPENDED_MARKER: &str = ".initramfs_regen-append";

/// The offset of the segment `initramfs_regen` appended to the image `scan`
/// walked: its last segment, when that starts with [`APPENDED_MARKER`].
pub fn appended_segment(scan: &Scan) -> Option<u64> {
    scan.segments
        .last()
        .filter(|s| s.first_entry.as_deref() == Some(APPENDED_MARKER))
        .map(|s| s.offset)
}

/// The conventional image paths for `kver`, in the order they are tried:
/// dracut on the RHEL family, then Debian/Ubuntu (both tools), then SUSE.
pub fn image_candidates(kver: &str) -> [String; 3] {
    [
        format!("/boot/initramfs-{kver}.img"),
        format!("/boot/initrd.img-{kver}"),
        format!("/boot/initrd-{kver}"),
    ]
}

/// The image of `kver`: the first candidate that exists (`true`), or the
/// name this distribution's tools would write (`false`): Debian and Ubuntu
/// name it `initrd.img-<kver>` whichever tool makes it.
pub fn image_path(host: &Host, kver: &str) -> (PathBuf, bool) {
    let candidates = image_candidates(kver);
    if let Some(found) = candidates
        .iter()
        .find(|p| host.exists(Path::new(p.as_str())))
    {
        return (PathBuf::from(found), true);
    }
    let usual = if host.exists(Path::new("/etc/debian_version")) {
        &candidates[1]
    } else {
        &candidates[0]
    };
    (PathBuf::from(usual), false)
}

/// The copies of the modules `names` that the image at `image` holds for
/// kernel `kver` (under `lib/modules/<kver>/` or `usr/lib/modules/<kver>/`),
/// and the image's own `modules.dep`, with the scan's facts. The whole image
/// is read: dracut images may hold a module twice (the in-tree file, pulled
/// in with its driver folder, and the resolved one), and only the image's
/// `modules.dep` says which its modprobe loads (see [`member_for`]).
pub fn module_files(host: &Host, image: &Path, kver: &str, names: &[String]) -> Result<Scan> {
    let file = host
        .open(image)
        .with_context(|| format!("cannot open {}", image.display()))?;
    module_files_in(file, kver, names)
        .with_context(|| format!("cannot read initramfs image {}", image.display()))
}

/// [`module_files`] of an image read from `input` (one held in memory).
pub fn module_files_in<R: Read + Send + 'static>(
    input: R,
    kver: &str,
    names: &[String],
) -> Result<Scan> {
    let wanted: Vec<String> = names.iter().map(|n| modinfo::normalize(n)).collect();
    let prefixes = [
        format!("lib/modules/{kver}/"),
        format!("usr/lib/modules/{kver}/"),
    ];
    let select = |p: &str| {
        prefixes.iter().any(|pre| {
            p.strip_prefix(pre.as_str()).is_some_and(|rest| {
                rest == "modules.dep"
                    || Path::new(rest)
                        .file_name()
                        .and_then(|f| modinfo::module_name_of_file(&f.to_string_lossy()))
                        .is_some_and(|m| wanted.contains(&m))
            })
        })
    };
    scan(input, select)
}

/// Every entry of the image read from `input` under kernel `kver`'s module
/// folder (`lib/modules/<kver>/` or `usr/lib/modules/<kver>/`), folders
/// included: the module tree the image's modprobe sees.
pub fn module_tree_in<R: Read + Send + 'static>(input: R, kver: &str) -> Result<Scan> {
    let prefixes = [
        format!("lib/modules/{kver}"),
        format!("usr/lib/modules/{kver}"),
    ];
    scan(input, |p| {
        prefixes.iter().any(|pre| {
            p.strip_prefix(pre.as_str())
                .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
        })
    })
}

/// A module file's path relative to its kernel's module folder
/// (`updates/aacraid.ko`), whether given as an in-image path
/// (`usr/lib/modules/<kver>/updates/aacraid.ko`) or an absolute one.
pub fn relative_module_path(path: &str, kver: &str) -> String {
    let trimmed = path.trim_start_matches('/');
    for prefix in [
        format!("lib/modules/{kver}/"),
        format!("usr/lib/modules/{kver}/"),
    ] {
        if let Some(rest) = trimmed.strip_prefix(prefix.as_str()) {
            return rest.to_string();
        }
    }
    trimmed.to_string()
}

/// The copy of module `name` that the image's modprobe would load: the one
/// the image's `modules.dep` lists, or, for an image without one (or without
/// an entry), the last copy found. Of copies at the same path, and of
/// `modules.dep` files, the last one is what the kernel unpacks last and
/// keeps. `None` when the image holds no copy, or when the copy kept is not
/// a regular file.
pub fn member_for<'a>(files: &'a [Member], kver: &str, name: &str) -> Option<&'a Member> {
    let wanted = modinfo::normalize(name);
    let is_module = |path: &str| {
        Path::new(path)
            .file_name()
            .and_then(|f| modinfo::module_name_of_file(&f.to_string_lossy()))
            .as_deref()
            == Some(wanted.as_str())
    };
    let copies: Vec<&Member> = files
        .iter()
        .filter(|m| !m.path.ends_with("/modules.dep") && is_module(&m.path))
        .collect();
    let listed = files
        .iter()
        .rfind(|m| m.path.ends_with("/modules.dep"))
        .and_then(|dep| {
            String::from_utf8_lossy(&dep.data)
                .lines()
                .filter_map(|l| l.split(':').next())
                .map(|p| relative_module_path(p.trim(), kver))
                .find(|p| is_module(p))
        });
    listed
        .and_then(|rel| {
            copies
                .iter()
                .copied()
                .rfind(|m| relative_module_path(&m.path, kver) == rel)
        })
        .or_else(|| copies.last().copied())
        .filter(|m| m.regular)
}

#[cfg(test)]
mod tests {
    use super::*;
    use formats::testing::member;

    #[test]
    fn the_image_modules_dep_picks_the_copy() {
        let k = "6.1.0-56-amd64";
        let intree = member(
            "usr/lib/modules/6.1.0-56-amd64/kernel/drivers/scsi/aacraid/aacraid.ko",
            b"old",
        );
        let updates = member("usr/lib/modules/6.1.0-56-amd64/updates/aacraid.ko", b"new");
        let dep = member(
            "usr/lib/modules/6.1.0-56-amd64/modules.dep",
            b"kernel/drivers/scsi/sd_mod.ko:\nupdates/aacraid.ko:\n",
        );
        let files = vec![intree.clone(), updates.clone(), dep];
        assert_eq!(member_for(&files, k, "aacraid"), Some(&updates));
        assert_eq!(
            member_for(&files[..2], k, "aacraid"),
            Some(&updates),
            "no modules.dep: the last copy"
        );
        assert_eq!(member_for(&files, k, "megaraid_sas"), None);
        assert_eq!(
            relative_module_path("/lib/modules/6.1.0-56-amd64/updates/x.ko", k),
            "updates/x.ko"
        );
    }

    /// A copy appended after the one the check looked at: the kernel
    /// unpacks both and keeps the last, so the last is what the image
    /// holds; the same for a second modules.dep, and for a symlink that
    /// replaces the file.
    #[test]
    fn the_last_copy_of_a_path_wins() {
        let k = "6.1.0-56-amd64";
        let first = member("usr/lib/modules/6.1.0-56-amd64/updates/aacraid.ko", b"good");
        let appended = member("usr/lib/modules/6.1.0-56-amd64/updates/aacraid.ko", b"evil");
        let dep = |text: &[u8]| member("usr/lib/modules/6.1.0-56-amd64/modules.dep", text);
        let intree = member(
            "usr/lib/modules/6.1.0-56-amd64/kernel/drivers/scsi/aacraid/aacraid.ko",
            b"old",
        );
        let files = vec![
            dep(b"updates/aacraid.ko:\n"),
            first.clone(),
            appended.clone(),
        ];
        assert_eq!(member_for(&files, k, "aacraid"), Some(&appended));
        let files = vec![
            dep(b"updates/aacraid.ko:\n"),
            first,
            intree.clone(),
            dep(b"kernel/drivers/scsi/aacraid/aacraid.ko:\n"),
        ];
        assert_eq!(member_for(&files, k, "aacraid"), Some(&intree));
        let mut link = member(
            "usr/lib/modules/6.1.0-56-amd64/updates/aacraid.ko",
            b"/tmp/x",
        );
        link.regular = false;
        let files = vec![dep(b"updates/aacraid.ko:\n"), appended, link];
        assert_eq!(member_for(&files, k, "aacraid"), None);
    }
}
