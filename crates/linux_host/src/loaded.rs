//! The running kernel's view of a module: `/sys/module/<name>` and the
//! driver's banner in the kernel log.

use std::path::Path;

use anyhow::Result;
use serde::Serialize;

use crate::command::Cmd;
use crate::host::Host;
use formats::modinfo::normalize;

/// A module the running kernel has (loaded, or built in).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Loaded {
    /// `/sys/module/<name>/version`, present when the module declares one.
    pub version: Option<String>,
    /// `/sys/module/<name>/srcversion`.
    pub srcversion: Option<String>,
    /// `/sys/module/<name>/initstate` (`live`, `coming`, `going`); absent
    /// for a module compiled into the kernel.
    pub initstate: Option<String>,
    /// True when the module is part of the kernel image, not a loaded file.
    pub builtin: bool,
    /// `/sys/module/<name>/taint`: the taint flags the module brought, `E`
    /// when the kernel could not verify its signature (unsigned, or a key
    /// it does not hold) and loaded it anyway, `O` out of tree; empty when
    /// none, null for a built-in module.
    pub taint: Option<String>,
}

/// Reads `/sys/module/<name>`; `None` when the kernel has no such module.
pub fn loaded(host: &Host, name: &str) -> Option<Loaded> {
    let dir = Path::new("/sys/module").join(normalize(name));
    if !host.is_dir(&dir) {
        return None;
    }
    let attr = |f: &str| {
        host.read_text(&dir.join(f))
            .ok()
            .map(|s| s.trim().to_string())
            .filter(|s| !s.is_empty())
    };
    let initstate = attr("initstate");
    let taint = initstate
        .as_ref()
        .and_then(|_| host.read_text(&dir.join("taint")).ok())
        .map(|t| t.trim().to_string());
    Some(Loaded {
        taint,
        version: attr("version"),
        srcversion: attr("srcversion"),
        builtin: initstate.is_none(),
        initstate,
    })
}

/// The last kernel-log line containing `banner`, and the text after it
/// (the version the driver announced). Reads the log with `dmesg`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Banner {
    /// The whole log line, timestamp included.
    pub line: String,
    /// The first word after `banner`.
    pub version: Option<String>,
}

/// Runs `dmesg` and looks for `banner`; `Ok(None)` when the log holds no
/// such line. Fails when the log cannot be read (missing `dmesg`, or no
/// permission, as in most containers).
pub fn kernel_log_banner(host: &Host, banner: &str) -> Result<Option<Banner>> {
    let out = host.run_ok(&Cmd::new("dmesg"))?;
    Ok(find_banner(&out.stdout, banner))
}

/// Finds the last line of `log` containing `banner`.
pub fn find_banner(log: &str, banner: &str) -> Option<Banner> {
    log.lines().rev().find_map(|line| {
        let at = line.find(banner)?;
        let version = line[at + banner.len()..]
            .split_whitespace()
            .next()
            .map(str::to_string);
        Some(Banner {
            line: line.trim_end().to_string(),
            version,
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Script;

    #[test]
    fn banner_is_the_last_one() {
        let log = "[    1.0] Adaptec aacraid driver 1.2.1[50983]-custom\n\
                   [    2.0] scsi host0: aacraid\n\
                   [  300.0] Adaptec aacraid driver 1.2-1.41024dkms\n";
        let b = find_banner(log, "Adaptec aacraid driver").expect("present");
        assert_eq!(b.version.as_deref(), Some("1.2-1.41024dkms"));
        assert!(b.line.starts_with("[  300.0]"));
        assert_eq!(
            find_banner("nothing here\n", "Adaptec aacraid driver"),
            None
        );
    }

    #[test]
    fn sysfs_module_states() -> Result<()> {
        let dir = tempfile::tempdir()?;
        let m = dir.path().join("sys/module");
        std::fs::create_dir_all(m.join("aacraid"))?;
        std::fs::write(m.join("aacraid/version"), "1.2.1[50983]-custom\n")?;
        std::fs::write(m.join("aacraid/srcversion"), "ABCDEF\n")?;
        std::fs::write(m.join("aacraid/initstate"), "live\n")?;
        std::fs::create_dir_all(m.join("scsi_mod"))?;
        let host = Host::scripted(dir.path(), Script::new());
        let l = loaded(&host, "aacraid").expect("loaded");
        assert_eq!(l.version.as_deref(), Some("1.2.1[50983]-custom"));
        assert!(!l.builtin);
        assert!(loaded(&host, "scsi-mod").expect("builtin").builtin);
        assert!(loaded(&host, "mpt3sas").is_none());
        Ok(())
    }
}
