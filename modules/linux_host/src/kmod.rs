//! Kernel modules on disk: which file a kernel resolves for a module name
//! (what `modinfo -k <kver> -n <name>` answers, or `modules.dep` when kmod's
//! tools are missing), every copy of the module under `/lib/modules/<kver>`,
//! and the metadata of a module file (its `.modinfo` section and checksum).

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::command::Cmd;
use crate::compress;
use crate::elf;
use crate::host::{Host, Kind};
use crate::kernel::modules_dir;

/// Refuses a module name that is not plain `[A-Za-z0-9_-]`.
pub fn validate_name(name: &str) -> Result<()> {
    if name.is_empty()
        || name.len() > 56
        || !name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
    {
        bail!("invalid module name {name:?}: use 1 to 56 of the characters A-Z a-z 0-9 _ -");
    }
    Ok(())
}

/// The kernel treats `-` and `_` in module names as the same character.
pub fn normalize(name: &str) -> String {
    name.replace('-', "_")
}

/// The module name a file name stands for (`aacraid.ko.xz` → `aacraid`),
/// or `None` when the file is not a module.
pub fn module_name_of_file(file_name: &str) -> Option<String> {
    [".ko", ".ko.xz", ".ko.zst", ".ko.gz"]
        .iter()
        .find_map(|ext| file_name.strip_suffix(ext))
        .filter(|stem| !stem.is_empty())
        .map(normalize)
}

/// The first directory of a module's path relative to `/lib/modules/<kver>`:
/// `kernel` (in-tree), `updates` (including `updates/dkms`), `extra`,
/// `weak-updates`, or whatever else the file lives under.
pub fn tree_of(relative: &Path) -> String {
    relative
        .components()
        .next()
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// Metadata of one module file, read from its `.modinfo` section.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct ModInfo {
    /// `name=` (the kernel's name for the module), when recorded.
    pub name: Option<String>,
    /// `version=` (`MODULE_VERSION`).
    pub version: Option<String>,
    /// `srcversion=`: a checksum of the sources, what `/sys/module/*/srcversion` shows.
    pub srcversion: Option<String>,
    /// `vermagic=`: the kernel release and options it was built for.
    pub vermagic: Option<String>,
}

impl ModInfo {
    /// Extracts the fields from a module's bytes (compressed or not).
    pub fn from_bytes(bytes: Vec<u8>) -> Result<ModInfo> {
        let elf = compress::decode_all(bytes).context("cannot decompress the module")?;
        let pairs = elf::modinfo_section(&elf)?;
        let get = |key: &str| {
            pairs
                .iter()
                .find(|(k, _)| k == key)
                .map(|(_, v)| v.trim().to_string())
        };
        Ok(ModInfo {
            name: get("name"),
            version: get("version"),
            srcversion: get("srcversion"),
            vermagic: get("vermagic"),
        })
    }

    /// The kernel release `vermagic` names (its first word).
    pub fn vermagic_release(&self) -> Option<&str> {
        self.vermagic
            .as_deref()
            .and_then(|v| v.split_whitespace().next())
    }
}

/// Hex SHA-256 of a byte string.
pub fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// A module file on disk with what it says about itself.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ModuleFile {
    /// Absolute path.
    pub path: PathBuf,
    /// Tree under `/lib/modules/<kver>` (see [`tree_of`]).
    pub tree: String,
    /// Symlink target when the path is a link (weak-updates are links).
    pub link_target: Option<PathBuf>,
    /// SHA-256 of the file as stored (compressed bytes for `.ko.xz`).
    pub sha256: Option<String>,
    /// `.modinfo` fields; `None` when the file could not be read as a module.
    #[serde(flatten)]
    pub info: ModInfo,
    /// Why the file could not be read, if it could not.
    pub error: Option<String>,
}

impl ModuleFile {
    /// Reads `path` (an absolute path under `/lib/modules/<kver>`).
    pub fn read(host: &Host, kver: &str, path: &Path) -> ModuleFile {
        let relative = path
            .strip_prefix(modules_dir(kver))
            .unwrap_or(path)
            .to_path_buf();
        let link_target = host.read_link(path).ok();
        let (sha256, info, error) = match host.read(path) {
            Ok(bytes) => {
                let sha = sha256_hex(&bytes);
                match ModInfo::from_bytes(bytes) {
                    Ok(info) => (Some(sha), info, None),
                    Err(e) => (Some(sha), ModInfo::default(), Some(format!("{e:#}"))),
                }
            }
            Err(e) => (None, ModInfo::default(), Some(format!("cannot read: {e}"))),
        };
        ModuleFile {
            path: path.to_path_buf(),
            tree: tree_of(&relative),
            link_target,
            sha256,
            info,
            error,
        }
    }
}

/// Every file or link named like module `name` under `/lib/modules/<kver>`,
/// sorted by path. Does not descend into `build` and `source` (links to the
/// kernel headers).
pub fn find_copies(host: &Host, kver: &str, name: &str) -> Result<Vec<PathBuf>> {
    let wanted = normalize(name);
    let root = modules_dir(kver);
    let mut found = Vec::new();
    let mut stack = vec![root.clone()];
    while let Some(dir) = stack.pop() {
        let entries = host
            .read_dir(&dir)
            .with_context(|| format!("cannot list {}", dir.display()))?;
        for entry in entries {
            match entry.kind {
                Kind::Dir
                    if !(dir == root && (entry.name == "build" || entry.name == "source")) =>
                {
                    stack.push(entry.path)
                }
                Kind::File | Kind::Symlink
                    if module_name_of_file(&entry.name).as_deref() == Some(wanted.as_str()) =>
                {
                    found.push(entry.path)
                }
                _ => {}
            }
        }
    }
    found.sort();
    Ok(found)
}

/// What a kernel resolves a module name to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Resolution {
    /// A module file (absolute path).
    File(PathBuf),
    /// Compiled into the kernel image.
    Builtin,
    /// The kernel knows no such module.
    NotFound,
}

/// Resolves `name` for `kver` the way `modprobe` would, by asking
/// `modinfo -k <kver> -n <name>`.
pub fn resolve_with_modinfo(host: &Host, kver: &str, name: &str) -> Result<Resolution> {
    let cmd = Cmd::new("modinfo").arg("-k").arg(kver).arg("-n").arg(name);
    let out = host.run(&cmd)?;
    parse_modinfo_n(out.rc, &out.stdout, &out.stderr)
        .with_context(|| format!("unexpected answer from `{cmd}`"))
}

/// Resolves `name` for `kver` with modinfo, or from `modules.dep` when
/// kmod's modinfo is not installed.
pub fn resolve(host: &Host, kver: &str, name: &str) -> Result<Resolution> {
    match resolve_with_modinfo(host, kver, name) {
        Err(e) if e.downcast_ref::<crate::ProgramNotFound>().is_some() => {
            resolve_with_modules_dep(host, kver, name)
        }
        other => other,
    }
}

/// Interprets `modinfo -n` output (kmod prints `(builtin)` or a path, and
/// fails with "Module … not found." when nothing matches).
pub fn parse_modinfo_n(rc: i32, stdout: &str, stderr: &str) -> Result<Resolution> {
    let first = stdout.lines().next().unwrap_or("").trim();
    if rc == 0 && first == "(builtin)" {
        return Ok(Resolution::Builtin);
    }
    if rc == 0 && first.starts_with('/') {
        return Ok(Resolution::File(PathBuf::from(first)));
    }
    if rc != 0 && stderr.contains("not found") {
        return Ok(Resolution::NotFound);
    }
    bail!("rc {rc}, stdout {stdout:?}, stderr {stderr:?}")
}

/// Resolves `name` for `kver` from `modules.dep` and `modules.builtin`
/// directly: the fallback when kmod's `modinfo` is not installed. depmod
/// already applied its search order and overrides when it wrote the file.
pub fn resolve_with_modules_dep(host: &Host, kver: &str, name: &str) -> Result<Resolution> {
    let dir = modules_dir(kver);
    let dep = host
        .read_text(&dir.join("modules.dep"))
        .with_context(|| format!("cannot read {}/modules.dep", dir.display()))?;
    let wanted = normalize(name);
    let matches = |path: &str| {
        Path::new(path)
            .file_name()
            .and_then(|f| module_name_of_file(&f.to_string_lossy()))
            .as_deref()
            == Some(wanted.as_str())
    };
    if let Some(path) = dep
        .lines()
        .filter_map(|l| l.split_once(':').map(|(p, _)| p.trim()))
        .find(|p| matches(p))
    {
        let path = Path::new(path);
        return Ok(Resolution::File(if path.is_absolute() {
            path.to_path_buf()
        } else {
            dir.join(path)
        }));
    }
    let builtin = host
        .read_text(&dir.join("modules.builtin"))
        .unwrap_or_default();
    if builtin.lines().any(|l| matches(l.trim())) {
        return Ok(Resolution::Builtin);
    }
    Ok(Resolution::NotFound)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::host::Script;
    use crate::testing::fake_module;

    #[test]
    fn names_and_trees() {
        assert!(validate_name("aacraid").is_ok());
        assert!(validate_name("mpt3sas").is_ok());
        assert!(validate_name("dm-mod").is_ok());
        for bad in ["", "../x", "aacraid; rm -rf /", "a b", "a/b", "ä"] {
            assert!(validate_name(bad).is_err(), "{bad}");
        }
        assert_eq!(
            module_name_of_file("aacraid.ko.xz").as_deref(),
            Some("aacraid")
        );
        assert_eq!(module_name_of_file("dm-mod.ko").as_deref(), Some("dm_mod"));
        assert_eq!(module_name_of_file("aacraid.c"), None);
        assert_eq!(module_name_of_file(".ko"), None);
        assert_eq!(tree_of(Path::new("updates/dkms/aacraid.ko")), "updates");
        assert_eq!(
            tree_of(Path::new("kernel/drivers/scsi/aacraid/aacraid.ko")),
            "kernel"
        );
    }

    #[test]
    fn modinfo_n_answers() -> Result<()> {
        assert_eq!(
            parse_modinfo_n(0, "/lib/modules/k/updates/aacraid.ko\n", "")?,
            Resolution::File("/lib/modules/k/updates/aacraid.ko".into())
        );
        assert_eq!(parse_modinfo_n(0, "(builtin)\n", "")?, Resolution::Builtin);
        assert_eq!(
            parse_modinfo_n(1, "", "modinfo: ERROR: Module aacraid not found.\n")?,
            Resolution::NotFound
        );
        assert!(parse_modinfo_n(1, "", "modinfo: ERROR: could not get modinfo\n").is_err());
        Ok(())
    }

    fn tree() -> Result<(tempfile::TempDir, Host)> {
        let dir = tempfile::tempdir()?;
        let k = dir.path().join("lib/modules/6.1.0-56-amd64");
        let module = fake_module(&[
            ("version", "1.2.1[50983]-custom"),
            ("srcversion", "0123456789ABCDEF0123456"),
            ("name", "aacraid"),
            (
                "vermagic",
                "6.1.0-56-amd64 SMP preempt mod_unload modversions ",
            ),
        ]);
        std::fs::create_dir_all(k.join("kernel/drivers/scsi/aacraid"))?;
        std::fs::create_dir_all(k.join("updates"))?;
        std::fs::create_dir_all(k.join("weak-updates"))?;
        std::fs::write(k.join("kernel/drivers/scsi/aacraid/aacraid.ko"), &module)?;
        std::fs::write(k.join("updates/aacraid.ko"), b"not elf")?;
        std::os::unix::fs::symlink(
            "../kernel/drivers/scsi/aacraid/aacraid.ko",
            k.join("weak-updates/aacraid.ko"),
        )?;
        std::fs::write(
            k.join("modules.dep"),
            "kernel/drivers/scsi/sd_mod.ko: kernel/drivers/scsi/scsi_common.ko\n\
             kernel/drivers/scsi/aacraid/aacraid.ko:\n",
        )?;
        std::fs::write(
            k.join("modules.builtin"),
            "kernel/drivers/scsi/scsi_mod.ko\n",
        )?;
        let host = Host::scripted(dir.path(), Script::new());
        Ok((dir, host))
    }

    #[test]
    fn copies_resolution_and_metadata() -> Result<()> {
        let (_dir, host) = tree()?;
        let k = "6.1.0-56-amd64";
        let copies = find_copies(&host, k, "aacraid")?;
        let shown: Vec<_> = copies.iter().map(|p| p.display().to_string()).collect();
        assert_eq!(
            shown,
            [
                "/lib/modules/6.1.0-56-amd64/kernel/drivers/scsi/aacraid/aacraid.ko",
                "/lib/modules/6.1.0-56-amd64/updates/aacraid.ko",
                "/lib/modules/6.1.0-56-amd64/weak-updates/aacraid.ko",
            ]
        );
        assert_eq!(
            resolve_with_modules_dep(&host, k, "aacraid")?,
            Resolution::File(copies[0].clone())
        );
        assert_eq!(
            resolve_with_modules_dep(&host, k, "scsi-mod")?,
            Resolution::Builtin
        );
        assert_eq!(
            resolve_with_modules_dep(&host, k, "mpt3sas")?,
            Resolution::NotFound
        );

        let intree = ModuleFile::read(&host, k, &copies[0]);
        assert_eq!(intree.tree, "kernel");
        assert_eq!(intree.info.version.as_deref(), Some("1.2.1[50983]-custom"));
        assert_eq!(intree.info.vermagic_release(), Some(k));
        assert!(intree.error.is_none());
        let broken = ModuleFile::read(&host, k, &copies[1]);
        assert_eq!(broken.tree, "updates");
        assert!(broken
            .error
            .as_deref()
            .unwrap_or("")
            .contains("not an ELF file"));
        let weak = ModuleFile::read(&host, k, &copies[2]);
        assert_eq!(weak.tree, "weak-updates");
        assert_eq!(
            weak.link_target.as_deref(),
            Some(Path::new("../kernel/drivers/scsi/aacraid/aacraid.ko"))
        );
        assert_eq!(weak.sha256, intree.sha256);
        Ok(())
    }
}
