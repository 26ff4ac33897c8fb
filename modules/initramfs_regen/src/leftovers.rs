//! What a killed run leaves behind, found and removed before anything else:
//! in `/boot`, the temporary images of [`Host::write_atomic`]
//! (`.<image>.tmp<pid>.<n>`) and the fixed temporary name earlier versions
//! used (`.<image>.initramfs_regen`); in `/var/tmp`, the private folders a
//! tool ran in (`.initramfs_regen-<pid>-<n>`, see [`STAGE_PREFIX`]). Only
//! these names, with `<image>` an image name of a valid kernel release, are
//! touched, and in `/var/tmp` only those owned by root. The `/boot` lock held since planning keeps a live run's files
//! out of the list.

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use anyhow::Result;
use linux_host::host::{temp_target, Kind};
use linux_host::kernel::validate_release;
use linux_host::Host;

/// The folder a tool's private work folder is made in.
pub const STAGE_PARENT: &str = "/var/tmp";

/// The name prefix of those folders (`.initramfs_regen-<pid>-<n>`).
pub const STAGE_PREFIX: &str = "initramfs_regen";

/// A file or folder to remove.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Leftover {
    pub path: PathBuf,
    /// Bytes its removal frees in `/boot`: the blocks of a file without
    /// other names (a link, or anything outside `/boot`, frees none there).
    pub frees: u64,
}

/// Every leftover of a killed run, `/boot` first.
pub fn find(host: &Host) -> Result<Vec<Leftover>> {
    let mut found = Vec::new();
    let boot = Path::new("/boot");
    for entry in host.read_dir(boot).unwrap_or_default() {
        if !matches!(entry.kind, Kind::File | Kind::Symlink) || !is_temp_image(&entry.name) {
            continue;
        }
        let frees = match host.symlink_metadata(&entry.path) {
            Ok(meta) if meta.is_file() && meta.nlink() == 1 => meta.blocks() * 512,
            _ => 0,
        };
        found.push(Leftover {
            path: entry.path,
            frees,
        });
    }
    // Anyone may create such a name in the sticky /var/tmp: only entries of
    // root (or of the user the module runs as) can be ours.
    let me = linux_host::host::process_uid();
    for entry in host.read_dir(Path::new(STAGE_PARENT)).unwrap_or_default() {
        let by_root = host
            .symlink_metadata(&entry.path)
            .is_ok_and(|m| m.uid() == 0 || m.uid() == me);
        if matches!(entry.kind, Kind::Dir | Kind::Symlink) && is_stage_dir(&entry.name) && by_root {
            found.push(Leftover {
                path: entry.path,
                frees: 0,
            });
        }
    }
    Ok(found)
}

/// Removes them (links as links, folders with what they hold).
pub fn remove(host: &Host, leftovers: &[Leftover]) -> Result<()> {
    for l in leftovers {
        host.remove_tree(&l.path)?;
    }
    Ok(())
}

/// `.<image>.tmp<pid>.<n>` or `.<image>.initramfs_regen`.
fn is_temp_image(name: &str) -> bool {
    let Some(rest) = name.strip_prefix('.') else {
        return false;
    };
    if let Some(image) = rest.strip_suffix(".initramfs_regen") {
        return is_image_name(image);
    }
    temp_target(name).is_some_and(is_image_name)
}

/// One of the names `linux_host::initramfs::image_candidates` gives.
fn is_image_name(name: &str) -> bool {
    let kver = name
        .strip_prefix("initramfs-")
        .and_then(|k| k.strip_suffix(".img"))
        .or_else(|| name.strip_prefix("initrd.img-"))
        .or_else(|| name.strip_prefix("initrd-"));
    kver.is_some_and(|k| validate_release(k).is_ok())
}

/// `.initramfs_regen-<pid>-<n>`, as `Host::private_dir` names it.
fn is_stage_dir(name: &str) -> bool {
    linux_host::host::is_private_dir_name(name, STAGE_PREFIX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_our_own_temporary_names_count() {
        for ours in [
            ".initrd.img-6.1.0-56-amd64.tmp123.0",
            ".initramfs-5.14.0-427.el9.x86_64.img.tmp9.63",
            ".initrd-6.4.0-150600.23-default.tmp1.2",
            ".initrd.img-6.1.0-56-amd64.initramfs_regen",
        ] {
            assert!(is_temp_image(ours), "{ours}");
        }
        for theirs in [
            "initrd.img-6.1.0-56-amd64",
            ".initrd.img-6.1.0-56-amd64.tmp",
            ".initrd.img-6.1.0-56-amd64.tmp12",
            ".initrd.img-6.1.0-56-amd64.tmp12.x",
            ".initrd.img-6.1.0-56-amd64.tmpa.1",
            ".vmlinuz-6.1.0-56-amd64.tmp1.0",
            ".initrd.img-../x.tmp1.0",
            ".config-6.1.0-56-amd64.initramfs_regen",
            ".initrd.img-6.1.0-56-amd64.bak.tmp1.0x",
        ] {
            assert!(!is_temp_image(theirs), "{theirs}");
        }
        assert!(is_stage_dir(".initramfs_regen-4242-0"));
        for theirs in [
            ".initramfs_regen-4242",
            ".initramfs_regen-4242-0-x",
            "initramfs_regen-4242-0",
            ".aacraid_build-4242-0",
            ".initramfs_regen--0",
        ] {
            assert!(!is_stage_dir(theirs), "{theirs}");
        }
    }
}
