//! Kernels: which are installed (`/lib/modules/<kver>`), which one runs, and
//! how kernel release strings are validated and ordered.

use std::cmp::Ordering;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};

use crate::host::{DirLock, Host, Kind};

/// Where every kernel keeps its modules.
pub const MODULES_ROOT: &str = "/lib/modules";

/// `/lib/modules/<kver>`.
pub fn modules_dir(kver: &str) -> PathBuf {
    Path::new(MODULES_ROOT).join(kver)
}

/// One entry of a task's `kernels` option: a kernel release, `running`, or
/// `all`. Deserialising checks the release, so every module refuses a bad
/// one with the same words before it looks at the host.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum KernelSpec {
    /// The running kernel.
    Running,
    /// Every installed kernel (each module says which count, see [`select`]).
    All,
    /// This release.
    Release(String),
}

impl KernelSpec {
    /// Reads one entry: `running`, `all`, or a valid release.
    pub fn parse(text: &str) -> Result<KernelSpec> {
        Ok(match text {
            "running" => KernelSpec::Running,
            "all" => KernelSpec::All,
            release => {
                validate_release(release)?;
                KernelSpec::Release(release.to_string())
            }
        })
    }

    /// The entry as a task writes it.
    pub fn as_str(&self) -> &str {
        match self {
            KernelSpec::Running => "running",
            KernelSpec::All => "all",
            KernelSpec::Release(release) => release,
        }
    }
}

impl Serialize for KernelSpec {
    fn serialize<S: serde::Serializer>(
        &self,
        serializer: S,
    ) -> std::result::Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for KernelSpec {
    fn deserialize<D: serde::Deserializer<'de>>(
        deserializer: D,
    ) -> std::result::Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        KernelSpec::parse(&text).map_err(|e| serde::de::Error::custom(format!("{e:#}")))
    }
}

/// Turns the kernels a task names into releases, in order and without
/// repeats: `running` is the running kernel, `all` every installed kernel
/// that `counts` accepts (for example, those with headers).
pub fn select(
    host: &Host,
    wanted: &[KernelSpec],
    installed: &[String],
    counts: impl Fn(&str) -> bool,
) -> Result<Vec<String>> {
    let mut out: Vec<String> = Vec::new();
    let mut add = |k: String| {
        if !out.contains(&k) {
            out.push(k);
        }
    };
    for w in wanted {
        match w {
            KernelSpec::Running => add(running(host)?),
            KernelSpec::All => installed
                .iter()
                .filter(|k| counts(k))
                .for_each(|k| add(k.clone())),
            KernelSpec::Release(k) => add(k.clone()),
        }
    }
    Ok(out)
}

/// Fails naming the first of `kernels` that is not installed.
pub fn require_installed(kernels: &[String], installed: &[String]) -> Result<()> {
    match kernels.iter().find(|k| !installed.contains(k)) {
        Some(k) => bail!(
            "kernel {k} is not installed (no module tree /lib/modules/{k} with modules.order)"
        ),
        None => Ok(()),
    }
}

/// Locks the module folders of `kernels` (see [`Host::lock_dir`]), each
/// once by its real path (two releases may name one folder through a link,
/// and a second lock of it from this process would wait for the first),
/// always in path order so that runs of different modules cannot deadlock;
/// a module that also locks `/boot` takes it after these.
pub fn lock_trees(host: &Host, kernels: &[String]) -> Result<Vec<DirLock>> {
    let mut dirs: Vec<PathBuf> = kernels
        .iter()
        .map(|k| {
            host.canonicalize(&modules_dir(k))
                .unwrap_or_else(|_| modules_dir(k))
        })
        .collect();
    dirs.sort();
    dirs.dedup();
    dirs.iter().map(|d| host.lock_dir(d)).collect()
}

/// Refuses a kernel release that could not be a directory name under
/// `/lib/modules` (empty, a path, or shell-significant characters).
pub fn validate_release(kver: &str) -> Result<()> {
    let ok = !kver.is_empty()
        && kver != "."
        && kver != ".."
        && kver
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "._+-~".contains(c));
    if !ok {
        bail!("invalid kernel release {kver:?}: only letters, digits and . _ + - ~ are allowed");
    }
    Ok(())
}

/// The release of the running kernel (`uname -r`), read from procfs.
pub fn running(host: &Host) -> Result<String> {
    let text = host
        .read_text(Path::new("/proc/sys/kernel/osrelease"))
        .context("cannot read the running kernel's release from /proc/sys/kernel/osrelease")?;
    Ok(text.trim().to_string())
}

/// Kernels with a module tree that a package installed: a directory under
/// `/lib/modules` holding `modules.order` or `modules.builtin` (a directory
/// left with only `updates/` after its kernel was removed does not count).
/// Newest first.
pub fn installed(host: &Host) -> Result<Vec<String>> {
    let entries = match host.read_dir(Path::new(MODULES_ROOT)) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e).context("cannot list /lib/modules"),
    };
    let mut kernels: Vec<String> = entries
        .into_iter()
        .filter(|e| e.kind == Kind::Dir || (e.kind == Kind::Symlink && host.is_dir(&e.path)))
        .filter(|e| validate_release(&e.name).is_ok())
        .filter(|e| {
            host.exists(&e.path.join("modules.order"))
                || host.exists(&e.path.join("modules.builtin"))
        })
        .map(|e| e.name)
        .collect();
    kernels.sort_by(|a, b| compare_releases(b, a));
    Ok(kernels)
}

/// Orders kernel releases the way people read them: runs of digits compare
/// as numbers (`6.1.0-9` < `6.1.0-56`), everything else as text.
pub fn compare_releases(a: &str, b: &str) -> Ordering {
    let (mut a, mut b) = (a.as_bytes(), b.as_bytes());
    loop {
        match (a.first(), b.first()) {
            (None, None) => return Ordering::Equal,
            (None, Some(_)) => return Ordering::Less,
            (Some(_), None) => return Ordering::Greater,
            (Some(x), Some(y)) if x.is_ascii_digit() && y.is_ascii_digit() => {
                let da = a.iter().take_while(|c| c.is_ascii_digit()).count();
                let db = b.iter().take_while(|c| c.is_ascii_digit()).count();
                let na = trim_zeros(&a[..da]);
                let nb = trim_zeros(&b[..db]);
                let ord = na.len().cmp(&nb.len()).then_with(|| na.cmp(nb));
                if ord != Ordering::Equal {
                    return ord;
                }
                a = &a[da..];
                b = &b[db..];
            }
            (Some(x), Some(y)) => {
                if x != y {
                    return x.cmp(y);
                }
                a = &a[1..];
                b = &b[1..];
            }
        }
    }
}

fn trim_zeros(digits: &[u8]) -> &[u8] {
    let zeros = digits.iter().take_while(|&&c| c == b'0').count();
    &digits[zeros..]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Script;

    #[test]
    fn releases_sort_numerically() {
        let mut v = vec![
            "6.1.0-9-amd64",
            "6.1.0-56-amd64",
            "3.10.0-229.11.1.el7.x86_64",
            "6.1.0-55-amd64",
            "3.10.0-1160.el7.x86_64",
        ];
        v.sort_by(|a, b| compare_releases(a, b));
        assert_eq!(
            v,
            [
                "3.10.0-229.11.1.el7.x86_64",
                "3.10.0-1160.el7.x86_64",
                "6.1.0-9-amd64",
                "6.1.0-55-amd64",
                "6.1.0-56-amd64",
            ]
        );
    }

    #[test]
    fn specs_parse_and_select() -> Result<()> {
        assert_eq!(KernelSpec::parse("running")?, KernelSpec::Running);
        assert_eq!(KernelSpec::parse("all")?, KernelSpec::All);
        assert_eq!(
            KernelSpec::parse("6.1.0-56-amd64")?.as_str(),
            "6.1.0-56-amd64"
        );
        assert!(KernelSpec::parse("../x").is_err());
        let dir = tempfile::tempdir()?;
        std::fs::create_dir_all(dir.path().join("proc/sys/kernel"))?;
        std::fs::write(dir.path().join("proc/sys/kernel/osrelease"), "b\n")?;
        let host = Host::scripted(dir.path(), Script::new());
        let installed = ["a".to_string(), "b".to_string(), "c".to_string()];
        let wanted = [
            KernelSpec::Running,
            KernelSpec::All,
            KernelSpec::Release("x".into()),
        ];
        assert_eq!(
            select(&host, &wanted, &installed, |k| k != "c")?,
            ["b", "a", "x"]
        );
        let err = require_installed(&["a".into(), "x".into()], &installed).err();
        assert_eq!(
            err.map(|e| e.to_string()).as_deref(),
            Some("kernel x is not installed (no module tree /lib/modules/x with modules.order)")
        );
        Ok(())
    }

    /// Two releases naming one folder (`/lib/modules/<alias>` a link to
    /// another kernel's tree) used to be locked twice and wait forever.
    #[test]
    fn a_tree_reached_through_a_link_is_locked_once() -> Result<()> {
        let dir = tempfile::tempdir()?;
        std::fs::create_dir_all(dir.path().join("lib/modules/6.1.0-1"))?;
        std::os::unix::fs::symlink("6.1.0-1", dir.path().join("lib/modules/alias"))?;
        let root = dir.path().to_path_buf();
        let (done, wait) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let host = Host::scripted(root, Script::new());
            let locks = lock_trees(&host, &["alias".to_string(), "6.1.0-1".to_string()]);
            let _ = done.send(locks.map(|l| l.len()).map_err(|e| e.to_string()));
        });
        let locked = wait
            .recv_timeout(std::time::Duration::from_secs(10))
            .map_err(|_| anyhow::anyhow!("lock_trees hung"))?;
        assert_eq!(locked, Ok(1));
        Ok(())
    }

    #[test]
    fn release_validation() {
        for good in [
            "6.1.0-56-amd64",
            "3.10.0-229.11.1.el7.x86_64",
            "5.15.0-1+b1~bpo",
        ] {
            assert!(validate_release(good).is_ok(), "{good}");
        }
        for bad in ["", "..", "../x", "a/b", "6.1 ", "x;rm"] {
            assert!(validate_release(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn installed_needs_a_packaged_tree() -> Result<()> {
        let dir = tempfile::tempdir()?;
        let m = dir.path().join("lib/modules");
        for (k, marker) in [
            ("6.1.0-55-amd64", Some("modules.order")),
            ("6.1.0-56-amd64", Some("modules.builtin")),
            ("6.1.0-9-amd64", None),
        ] {
            std::fs::create_dir_all(m.join(k).join("updates"))?;
            if let Some(f) = marker {
                std::fs::write(m.join(k).join(f), "")?;
            }
        }
        std::fs::create_dir_all(dir.path().join("proc/sys/kernel"))?;
        std::fs::write(
            dir.path().join("proc/sys/kernel/osrelease"),
            "6.1.0-55-amd64\n",
        )?;
        let host = Host::scripted(dir.path(), Script::new());
        assert_eq!(installed(&host)?, ["6.1.0-56-amd64", "6.1.0-55-amd64"]);
        assert_eq!(running(&host)?, "6.1.0-55-amd64");
        Ok(())
    }
}
