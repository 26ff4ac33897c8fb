//! Mounted file systems: whether a path lies on a read-only mount (from
//! `/proc/self/mounts`) and how much room is left on one (`df`), so a
//! module can refuse before its first write instead of failing half way.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

use crate::command::Cmd;
use crate::host::Host;

/// One line of `/proc/self/mounts`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Mount {
    /// Where it is mounted.
    pub point: PathBuf,
    /// Whether `ro` is among its options.
    pub read_only: bool,
}

/// Parses `/proc/self/mounts` (fstab format; spaces and other special
/// characters in mount points are written as `\ooo` octal escapes).
pub fn parse(text: &str) -> Vec<Mount> {
    text.lines()
        .filter_map(|line| {
            let mut fields = line.split_whitespace();
            let point = unescape(fields.nth(1)?);
            let options = fields.nth(1)?;
            Some(Mount {
                point: PathBuf::from(point),
                read_only: options.split(',').any(|o| o == "ro"),
            })
        })
        .collect()
}

fn unescape(field: &str) -> String {
    let bytes = field.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let octal = bytes
            .get(i + 1..i + 4)
            .filter(|d| bytes[i] == b'\\' && d.iter().all(|c| (b'0'..=b'7').contains(c)));
        match octal {
            Some(d) => {
                out.push(d.iter().fold(0u8, |n, c| n.wrapping_mul(8) + (c - b'0')));
                i += 4;
            }
            None => {
                out.push(bytes[i]);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The mount point of the read-only file system that `path` (or, when it
/// does not exist yet, its nearest existing ancestor) lies on; `None` when
/// it is writable or the mount table cannot be read.
pub fn read_only_mount(host: &Host, path: &Path) -> Option<PathBuf> {
    let mounts = parse(&host.read_text(Path::new("/proc/self/mounts")).ok()?);
    let existing = path.ancestors().find(|p| host.exists(p))?;
    let real = host.canonicalize(existing).ok()?;
    // The last mount of the longest matching point is the one on top.
    let mount = mounts
        .iter()
        .filter(|m| real.starts_with(&m.point))
        .max_by_key(|m| m.point.components().count())?;
    let on_top = mounts
        .iter()
        .rev()
        .find(|m| m.point == mount.point)
        .unwrap_or(mount);
    on_top.read_only.then(|| on_top.point.clone())
}

/// Bytes available to unprivileged writers on the file system holding
/// `path`, from `df -Pk` (POSIX output: the fourth field of the second line
/// is in 1024-byte blocks).
pub fn available_bytes(host: &Host, path: &Path) -> Result<u64> {
    let cmd = Cmd::new("df").arg("-Pk").arg(path);
    let out = host.run_ok(&cmd)?;
    parse_df_available(&out.stdout).with_context(|| format!("unexpected output of `{cmd}`"))
}

/// The available-space field of `df -Pk` output, in bytes; `None` when the
/// output has no such number, or one too large to be bytes in a `u64`.
pub fn parse_df_available(stdout: &str) -> Option<u64> {
    let line = stdout.lines().nth(1)?;
    let kib: u64 = line.split_whitespace().nth(3)?.parse().ok()?;
    kib.checked_mul(1024)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Script;

    #[test]
    fn df_available() {
        let out = "Filesystem     1024-blocks  Used Available Capacity Mounted on\n\
                   tmpfs                51200 40000     11200      79% /boot\n";
        assert_eq!(parse_df_available(out), Some(11200 * 1024));
        assert_eq!(parse_df_available("Filesystem\n"), None);
    }

    /// Found by `tests/fuzz.rs` (`df_available_any_number`): a field above
    /// `u64::MAX / 1024` overflowed the conversion to bytes.
    #[test]
    fn df_available_too_large_is_not_a_number_of_bytes() {
        let out = "Filesystem 1024-blocks Used Available Capacity Mounted on\n\
                   /dev/x 1 2 18014398509481984 3% /boot\n";
        assert_eq!(parse_df_available(out), None);
        let out = out.replace("18014398509481984", "18014398509481983");
        assert_eq!(parse_df_available(&out), Some(18014398509481983 * 1024));
    }

    const MOUNTS: &str = "\
overlay / overlay rw,relatime,lowerdir=/a,upperdir=/b,workdir=/c 0 0
proc /proc proc rw,nosuid,nodev,noexec,relatime 0 0
/dev/sda1 /lib/modules/6.1.0-56-amd64/updates ext4 ro,relatime 0 0
/dev/sda2 /srv/with\\040space xfs ro 0 0
/dev/sda3 /boot ext4 ro 0 0
tmpfs /boot tmpfs rw 0 0
";

    #[test]
    fn parses_points_options_and_escapes() {
        let mounts = parse(MOUNTS);
        assert_eq!(mounts.len(), 6);
        assert_eq!(mounts[3].point, PathBuf::from("/srv/with space"));
        assert!(mounts[2].read_only && !mounts[0].read_only);
    }

    #[test]
    fn finds_the_read_only_mount_of_a_path_or_its_ancestor() -> anyhow::Result<()> {
        let dir = tempfile::tempdir()?;
        for d in [
            "proc/self",
            "lib/modules/6.1.0-56-amd64/updates",
            "lib/modules/6.1.0-55-amd64",
            "boot",
        ] {
            std::fs::create_dir_all(dir.path().join(d))?;
        }
        std::fs::write(dir.path().join("proc/self/mounts"), MOUNTS)?;
        let host = Host::scripted(dir.path(), Script::new());
        let ro = |p: &str| read_only_mount(&host, Path::new(p));
        assert_eq!(
            ro("/lib/modules/6.1.0-56-amd64/updates/aacraid.ko"),
            Some(PathBuf::from("/lib/modules/6.1.0-56-amd64/updates"))
        );
        assert_eq!(ro("/lib/modules/6.1.0-55-amd64/updates/aacraid.ko"), None);
        assert_eq!(ro("/boot/initrd.img"), None, "the later mount is on top");
        Ok(())
    }
}
