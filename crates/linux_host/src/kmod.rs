//! Kernel modules on disk: which file a kernel resolves for a module name
//! (what `modinfo -k <kver> -n <name>` answers, or `modules.dep` when kmod's
//! tools are missing), every copy of the module under `/lib/modules/<kver>`,
//! and the metadata of a module file as found on the host.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use formats::modinfo::{
    module_name_of_file, normalize, parse_modinfo_n, sha256_hex, tree_of, ModInfo, Resolution,
};
use serde::Serialize;

use crate::command::{Cmd, Output};
use crate::host::{Host, Kind};
use crate::kernel::modules_dir;

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
        let link_target = host.read_link(path).ok();
        match host.read(path) {
            Ok(bytes) => ModuleFile::from_bytes(kver, path, link_target, bytes),
            Err(e) => ModuleFile {
                path: path.to_path_buf(),
                tree: tree_of(&relative_to(kver, path)),
                link_target,
                sha256: None,
                info: ModInfo::default(),
                error: Some(format!("cannot read: {e}")),
            },
        }
    }

    /// The file `path` of kernel `kver` holding `bytes`.
    pub fn from_bytes(
        kver: &str,
        path: &Path,
        link_target: Option<PathBuf>,
        bytes: Vec<u8>,
    ) -> ModuleFile {
        let sha256 = Some(sha256_hex(&bytes));
        let (info, error) = match ModInfo::from_bytes(bytes) {
            Ok(info) => (info, None),
            Err(e) => (ModInfo::default(), Some(format!("{e:#}"))),
        };
        ModuleFile {
            path: path.to_path_buf(),
            tree: tree_of(&relative_to(kver, path)),
            link_target,
            sha256,
            info,
            error,
        }
    }
}

/// One of kernel `kver`'s own modules, to compare a new build with (its
/// vermagic, its signature): the in-tree copy that `before` resolves to,
/// else the first readable in-tree module of the first five `modules.dep`
/// lists.
pub fn own_module(host: &Host, kver: &str, before: &Resolved) -> Option<(PathBuf, ModInfo)> {
    let root = modules_dir(kver);
    let read = |path: &Path| {
        host.read(path)
            .ok()
            .and_then(|b| ModInfo::from_bytes(b).ok())
            .map(|i| (path.to_path_buf(), i))
    };
    if let Some(found) = before
        .path()
        .filter(|f| f.strip_prefix(&root).is_ok_and(|r| r.starts_with("kernel")))
        .and_then(read)
    {
        return Some(found);
    }
    let dep = host.read_text(&root.join("modules.dep")).ok()?;
    dep.lines()
        .filter_map(|l| l.split(':').next())
        .filter(|p| p.starts_with("kernel/"))
        .take(5)
        .find_map(|p| read(&root.join(p)))
}

/// `path` relative to `/lib/modules/<kver>` (unchanged when outside it).
pub fn relative_to(kver: &str, path: &Path) -> PathBuf {
    path.strip_prefix(modules_dir(kver))
        .unwrap_or(path)
        .to_path_buf()
}

/// Every file or link named like module `name` under `/lib/modules/<kver>`,
/// sorted by path. Does not descend into `build` and `source` (links to the
/// kernel headers).
pub fn find_copies(host: &Host, kver: &str, name: &str) -> Result<Vec<PathBuf>> {
    find_copies_visiting(host, kver, name, |_| {})
}

/// [`find_copies`], calling `visit` with each folder just before it is
/// listed (so what `visit` reads of a folder is no newer than its listing).
pub fn find_copies_visiting(
    host: &Host,
    kver: &str,
    name: &str,
    mut visit: impl FnMut(&Path),
) -> Result<Vec<PathBuf>> {
    let wanted = normalize(name);
    let root = modules_dir(kver);
    let mut found = Vec::new();
    let mut stack = vec![root.clone()];
    while let Some(dir) = stack.pop() {
        visit(&dir);
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

/// How to ask which file a kernel resolves.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Lookup {
    /// `modinfo -k <kver> -n <name>`, or `modules.dep` when kmod's modinfo
    /// is not installed.
    Auto,
    /// `modinfo` only (its absence is an error).
    Modinfo,
}

/// Which file a kernel loads for a module name, and what that file says
/// about itself: the one answer every module of ours works with.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Resolved {
    /// The kernel's answer.
    pub resolution: Resolution,
    /// The resolved file, read (only for [`Resolution::File`]).
    pub file: Option<ModuleFile>,
}

impl Resolved {
    /// Asks the host which file `kver` resolves for `name`, and reads it.
    pub fn read(host: &Host, kver: &str, name: &str, lookup: Lookup) -> Result<Resolved> {
        let resolution = match lookup {
            Lookup::Auto => resolve(host, kver, name)?,
            Lookup::Modinfo => resolve_with_modinfo(host, kver, name)?,
        };
        Ok(Resolved::of(host, kver, resolution))
    }

    /// Reads the file of an answer already had.
    pub fn of(host: &Host, kver: &str, resolution: Resolution) -> Resolved {
        let file = match &resolution {
            Resolution::File(path) => Some(ModuleFile::read(host, kver, path)),
            _ => None,
        };
        Resolved { resolution, file }
    }

    /// What resolving to `path` would give once `data` is installed there:
    /// the prediction of check mode, from bytes not yet on disk.
    pub fn predicted(kver: &str, path: &Path, data: &[u8]) -> Resolved {
        Resolved {
            resolution: Resolution::File(path.to_path_buf()),
            file: Some(ModuleFile::from_bytes(kver, path, None, data.to_vec())),
        }
    }

    /// The resolved file's path.
    pub fn path(&self) -> Option<&Path> {
        match &self.resolution {
            Resolution::File(path) => Some(path),
            _ => None,
        }
    }

    /// SHA-256 of the resolved file.
    pub fn sha256(&self) -> Option<&str> {
        self.file.as_ref().and_then(|f| f.sha256.as_deref())
    }

    /// What the resolved file says about itself (empty when none).
    pub fn info(&self) -> ModInfo {
        self.file
            .as_ref()
            .map(|f| f.info.clone())
            .unwrap_or_default()
    }

    /// The path, or `(builtin)` / `(none)`, for messages.
    pub fn describe(&self) -> String {
        match &self.resolution {
            Resolution::File(path) => path.display().to_string(),
            Resolution::Builtin => "(builtin)".into(),
            Resolution::NotFound => "(none)".into(),
        }
    }
}

/// `{builtin, path, tree, version, srcversion, vermagic, sha256}`: how
/// results and facts show a resolution (`path` is null when the module is
/// built in or not found).
impl Serialize for Resolved {
    fn serialize<S: serde::Serializer>(
        &self,
        serializer: S,
    ) -> std::result::Result<S::Ok, S::Error> {
        #[derive(Serialize)]
        struct Shown<'a> {
            builtin: bool,
            path: Option<&'a Path>,
            tree: Option<&'a str>,
            version: Option<&'a str>,
            srcversion: Option<&'a str>,
            vermagic: Option<&'a str>,
            sha256: Option<&'a str>,
            signature: Option<&'a formats::modsig::Signature>,
        }
        let info = self.file.as_ref().map(|f| &f.info);
        Shown {
            builtin: self.resolution == Resolution::Builtin,
            path: self.path(),
            tree: self.file.as_ref().map(|f| f.tree.as_str()),
            version: info.and_then(|i| i.version.as_deref()),
            srcversion: info.and_then(|i| i.srcversion.as_deref()),
            vermagic: info.and_then(|i| i.vermagic.as_deref()),
            sha256: self.sha256(),
            signature: info.and_then(|i| i.signature.as_ref()),
        }
        .serialize(serializer)
    }
}

/// Where kmod reads its configuration (aliases among it), besides
/// `/etc/modprobe.conf`; each folder's `*.conf` files.
pub const MODPROBE_CONFIG_DIRS: &[&str] = &[
    "/etc/modprobe.d",
    "/run/modprobe.d",
    "/usr/local/lib/modprobe.d",
    "/lib/modprobe.d",
    "/usr/lib/modprobe.d",
];

/// The command that asks which file `kver` resolves for `name`:
/// `modinfo -k <kver> -n <name>`. What it reads: kmod's configuration
/// ([`MODPROBE_CONFIG_DIRS`], `/etc/modprobe.conf`) and the indices at the
/// top of `/lib/modules/<kver>`.
pub fn modinfo_n(kver: &str, name: &str) -> Cmd {
    Cmd::new("modinfo").arg("-k").arg(kver).arg("-n").arg(name)
}

/// The resolution an answer of [`modinfo_n`]'s `cmd` gives.
pub fn resolution_from(cmd: &Cmd, out: &Output) -> Result<Resolution> {
    parse_modinfo_n(out.rc, &out.stdout, &out.stderr)
        .with_context(|| format!("unexpected answer from `{cmd}`"))
}

/// Resolves `name` for `kver` the way `modprobe` would, by asking
/// `modinfo -k <kver> -n <name>`.
pub fn resolve_with_modinfo(host: &Host, kver: &str, name: &str) -> Result<Resolution> {
    let cmd = modinfo_n(kver, name);
    let out = host.run(&cmd)?;
    resolution_from(&cmd, &out)
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
    use crate::Script;
    use formats::testing::fake_module;

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
