//! Where the driver's DKMS source comes from, read without writing
//! anything: the vendor tarball (a `.tgz` holding the driver's
//! `<name>-<version>-dkms.noarch.rpm` among other files), that rpm alone,
//! or a DKMS source tree (a folder with `dkms.conf`, possibly
//! `/usr/src/<name>-<version>` itself). Archives are read and checked in
//! memory. Whether the tree in `/usr/src` matches is `tree`'s business.

use std::path::Path;

use anyhow::{bail, Context, Result};
use formats::archive::{self, Links};
use formats::cpio::Member;
use formats::dkms::{self, Conf};
use formats::limits::ARCHIVE_MAX;
use formats::modinfo::validate_name;
use formats::path;
use formats::rpm;
use linux_host::Host;

use crate::tree::LIST;

/// The source, read and checked.
pub struct Source {
    /// `PACKAGE_NAME` of `dkms.conf`.
    pub name: String,
    /// `PACKAGE_VERSION` of `dkms.conf`.
    pub version: String,
    /// Modules the tree builds (`BUILT_MODULE_NAME`, or the package name).
    pub modules: Vec<String>,
    /// The tree's files (paths relative to `/usr/src/<name>-<version>`,
    /// modes masked), without our checksum list.
    pub files: Vec<Member>,
    /// The driver rpm, when the host installs rpms with `rpm` (it keeps an
    /// rpm database): the tree is then put in place by `rpm -i`.
    pub rpm: Option<Rpm>,
    /// Whether `src` is `/usr/src/<name>-<version>` itself.
    pub in_place: bool,
    /// What the source was, for messages.
    pub described: String,
}

/// A driver rpm to install with `rpm -i`.
pub struct Rpm {
    /// The package bytes.
    pub bytes: Vec<u8>,
    /// File name of the package.
    pub file_name: String,
}

/// Reads the source at `path`. `rpm_db` says whether rpms are installed
/// with `rpm` (the host keeps an rpm database) or unpacked.
pub fn read(host: &Host, path: &Path, rpm_db: bool) -> Result<Source> {
    if host.is_dir(path) {
        return from_tree(host, path);
    }
    let bytes = host
        .read_input(path, ARCHIVE_MAX)
        .with_context(|| format!("cannot read the source {}", path.display()))?;
    let file_name = path
        .file_name()
        .map(|f| f.to_string_lossy().into_owned())
        .unwrap_or_default();
    if rpm::identify(&bytes).is_some() {
        return from_rpm(bytes, file_name, rpm_db);
    }
    if bytes.starts_with(&[0x1f, 0x8b]) {
        return from_tarball(&bytes, path, rpm_db);
    }
    bail!(
        "{} is not a vendor tarball (.tgz), an rpm package or a folder with dkms.conf",
        path.display()
    )
}

fn from_tarball(bytes: &[u8], path: &Path, rpm_db: bool) -> Result<Source> {
    let entries = archive::read_tar_gz(bytes, Links::Inside)
        .with_context(|| format!("cannot use the tarball {}", path.display()))?;
    let mut candidates = Vec::new();
    let mut unreadable = Vec::new();
    for entry in entries.into_iter().filter(|e| e.path.ends_with(".rpm")) {
        let file_name = entry
            .path
            .rsplit('/')
            .next()
            .unwrap_or(&entry.path)
            .to_string();
        match rpm::read(&entry.data, |p| p.ends_with("/dkms.conf")) {
            Ok(package) if !package.files.is_empty() => candidates.push((file_name, entry.data)),
            Ok(_) => {}
            Err(e) => unreadable.push(format!("{}: {e:#}", entry.path)),
        }
    }
    match candidates.len() {
        0 if !unreadable.is_empty() => bail!(
            "the tarball {} holds no DKMS driver rpm that can be used; refused: {}",
            path.display(),
            unreadable.join("; ")
        ),
        0 => bail!(
            "the tarball {} holds no DKMS driver rpm (an rpm with /usr/src/<name>-<version>/dkms.conf)",
            path.display()
        ),
        1 => {
            let (file_name, data) = candidates.remove(0);
            let mut source = from_rpm(data, file_name.clone(), rpm_db)?;
            source.described = format!("{file_name} from {}", path.display());
            Ok(source)
        }
        _ => bail!(
            "the tarball {} holds several DKMS driver rpms ({}): unpack it and point src at one",
            path.display(),
            candidates.iter().map(|(f, _)| f.as_str()).collect::<Vec<_>>().join(", ")
        ),
    }
}

fn from_rpm(bytes: Vec<u8>, file_name: String, rpm_db: bool) -> Result<Source> {
    let package = rpm::read(&bytes, |p| p.starts_with("usr/src/"))
        .with_context(|| format!("cannot read the rpm {file_name}"))?;
    let conf_member = package
        .files
        .iter()
        .find(|f| f.path.ends_with("/dkms.conf") && f.path.matches('/').count() == 3)
        .with_context(|| {
            format!("the rpm {file_name} has no /usr/src/<name>-<version>/dkms.conf")
        })?;
    let tree = conf_member
        .path
        .strip_suffix("/dkms.conf")
        .unwrap_or_default()
        .to_string();
    let conf = dkms::parse_conf(&String::from_utf8_lossy(&conf_member.data));
    let (name, version, modules) = identity(&conf, &format!("/{tree}/dkms.conf"))?;
    // Payload paths are normalised (`usr/src/x-1//etc/y` is
    // `usr/src/x-1/etc/y`): what is left after the prefix is relative.
    let prefix = format!("{tree}/");
    let files: Vec<Member> = package
        .files
        .into_iter()
        .filter_map(|mut f| {
            f.path = f.path.strip_prefix(&prefix)?.to_string();
            Some(f)
        })
        .collect();
    if files.iter().any(|f| f.path == LIST) {
        bail!("the rpm {file_name} holds /{tree}/{LIST}, the name aacraid_build keeps its checksum list under");
    }
    Ok(Source {
        name,
        version,
        modules,
        files,
        rpm: rpm_db.then(|| Rpm {
            bytes,
            file_name: file_name.clone(),
        }),
        in_place: false,
        described: file_name,
    })
}

fn from_tree(host: &Host, dir: &Path) -> Result<Source> {
    let conf_path = dir.join("dkms.conf");
    let text = host
        .read_text(&conf_path)
        .with_context(|| format!("{} is a folder without a readable dkms.conf", dir.display()))?;
    let conf = dkms::parse_conf(&text);
    let (name, version, modules) = identity(&conf, &conf_path.display().to_string())?;
    let target = dkms::source_dir(&name, &version);
    let in_place = dir == target
        || matches!((host.canonicalize(dir), host.canonicalize(&target)), (Ok(a), Ok(b)) if a == b);
    Ok(Source {
        name,
        version,
        modules,
        files: tree_files(host, dir, "")?,
        rpm: None,
        in_place,
        described: dir.display().to_string(),
    })
}

/// Every regular file under `dir`, relative paths, modes masked as an
/// archive's are; our checksum list at the top is left out.
fn tree_files(host: &Host, dir: &Path, prefix: &str) -> Result<Vec<Member>> {
    let mut out = Vec::new();
    for entry in host.read_dir(dir)? {
        let rel = format!("{prefix}{}", entry.name);
        match entry.kind {
            linux_host::host::Kind::Dir => {
                out.extend(tree_files(host, &entry.path, &format!("{rel}/"))?)
            }
            linux_host::host::Kind::File if rel == LIST => {}
            linux_host::host::Kind::File => out.push(Member {
                data: host
                    .read_input(&entry.path, ARCHIVE_MAX)
                    .with_context(|| format!("cannot read {}", entry.path.display()))?,
                mode: host.mode(&entry.path)? & path::MODE_MASK,
                regular: true,
                path: rel,
            }),
            _ => bail!("{} is not a regular file or folder", entry.path.display()),
        }
    }
    Ok(out)
}

fn identity(conf: &Conf, shown: &str) -> Result<(String, String, Vec<String>)> {
    let name = conf
        .package_name
        .clone()
        .with_context(|| format!("{shown} sets no PACKAGE_NAME"))?;
    let version = conf
        .package_version
        .clone()
        .with_context(|| format!("{shown} sets no PACKAGE_VERSION"))?;
    validate_name(&name).with_context(|| format!("PACKAGE_NAME in {shown}"))?;
    if version.is_empty()
        || !version
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "._+-~".contains(c))
    {
        bail!("PACKAGE_VERSION {version:?} in {shown} is not a plain version string");
    }
    let modules = if conf.built_modules.is_empty() {
        vec![name.clone()]
    } else {
        conf.built_modules.clone()
    };
    for m in &modules {
        validate_name(m).with_context(|| format!("BUILT_MODULE_NAME in {shown}"))?;
    }
    Ok((name, version, modules))
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;
    use linux_host::testing::root_with;
    use linux_host::Script;

    /// A source folder holding a setuid, world-writable file: its bits
    /// were copied as they were into /usr/src.
    #[test]
    fn folder_sources_lose_setuid_and_world_write() -> Result<()> {
        let dir = root_with(&[
            (
                "/root/src/dkms.conf",
                &b"PACKAGE_NAME=aacraid\nPACKAGE_VERSION=1.0\n"[..],
            ),
            ("/root/src/tool", b"#!/bin/sh\n"),
        ]);
        let tool = dir.path().join("root/src/tool");
        std::fs::set_permissions(&tool, std::fs::Permissions::from_mode(0o6777))?;
        let host = Host::scripted(dir.path(), Script::new());
        let source = read(&host, Path::new("/root/src"), false)?;
        assert!(!source.in_place);
        let tool = source
            .files
            .iter()
            .find(|f| f.path == "tool")
            .context("tool")?;
        assert_eq!(tool.mode, 0o775);
        Ok(())
    }
}
