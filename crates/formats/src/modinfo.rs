//! What a kernel module file says about itself and how modules are named:
//! the `.modinfo` section of a module's bytes (plain or compressed), module
//! names and file names, and kmod's answer to `modinfo -n`. Pure functions
//! of bytes and text; reading files is the host crate's business.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::compress;
use crate::elf;
use crate::modsig;

/// Module file extensions kmod reads, longest first.
pub const EXTENSIONS: &[&str] = &[".ko.xz", ".ko.zst", ".ko.gz", ".ko"];

/// What kmod must be built with to read a compressed module file: the
/// feature its `-V` output names (`+XZ`, `-ZLIB`), and the compression;
/// `None` for a plain `.ko`.
pub fn compression_of(extension: &str) -> Option<(&'static str, &'static str)> {
    match extension {
        ".ko.xz" => Some(("XZ", "xz")),
        ".ko.zst" => Some(("ZSTD", "zstd")),
        ".ko.gz" => Some(("ZLIB", "gzip")),
        _ => None,
    }
}

/// Whether the output of `kmod -V` (`kmod version 30`, then
/// `+ZSTD +XZ -ZLIB ...`) says kmod was built without `feature`; false when
/// it does not say.
pub fn kmod_lacks(version_output: &str, feature: &str) -> bool {
    version_output
        .split_whitespace()
        .any(|w| w.strip_prefix('-') == Some(feature))
}

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
    EXTENSIONS
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
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ModInfo {
    /// `name=` (the kernel's name for the module), when recorded.
    pub name: Option<String>,
    /// `version=` (`MODULE_VERSION`).
    pub version: Option<String>,
    /// `srcversion=`: a checksum of the sources, what `/sys/module/*/srcversion` shows.
    pub srcversion: Option<String>,
    /// `vermagic=`: the kernel release and options it was built for.
    pub vermagic: Option<String>,
    /// The signature appended to the file (`null`: unsigned), see
    /// [`crate::modsig`].
    pub signature: Option<modsig::Signature>,
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
            signature: modsig::of(&elf),
        })
    }

    /// The modules a module file needs loaded before it (`depends=`, names
    /// separated by commas), from the file's bytes (compressed or not).
    pub fn depends(bytes: Vec<u8>) -> Result<Vec<String>> {
        let elf = compress::decode_all(bytes).context("cannot decompress the module")?;
        let pairs = elf::modinfo_section(&elf)?;
        Ok(pairs
            .iter()
            .filter(|(k, _)| k == "depends")
            .flat_map(|(_, v)| v.split(','))
            .map(str::trim)
            .filter(|d| !d.is_empty())
            .map(normalize)
            .collect())
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

#[cfg(test)]
mod tests {
    use super::*;

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
    fn kmod_features() {
        let debian12 = "kmod version 30\n+ZSTD +XZ -ZLIB +LIBCRYPTO -EXPERIMENTAL\n";
        assert!(kmod_lacks(debian12, "ZLIB"));
        assert!(!kmod_lacks(debian12, "XZ"));
        assert!(!kmod_lacks(debian12, "ZSTD"));
        assert!(
            !kmod_lacks("kmod version 20\n", "ZLIB"),
            "no feature line: unknown"
        );
        let needs: Vec<_> = EXTENSIONS.iter().map(|e| compression_of(e)).collect();
        assert_eq!(
            needs,
            [
                Some(("XZ", "xz")),
                Some(("ZSTD", "zstd")),
                Some(("ZLIB", "gzip")),
                None
            ]
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
}
