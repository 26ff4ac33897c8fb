//! The manifest of an artifact: the `manifest.json` that `aacraid_build`
//! writes first into each per-kernel `.tgz` and `kmod_update` reads before
//! it trusts any module in the archive. One type serves both sides:
//!
//! ```json
//! {"format": 1, "name": "aacraid", "version": "1.2.1.41024",
//!  "kernel": "6.1.0-56-amd64", "arch": "x86_64",
//!  "files": [{"file": "aacraid.ko", "module": "aacraid", "size": 337000,
//!             "sha256": "…", "version": "1.2-1.41024dkms",
//!             "srcversion": "…", "vermagic": "6.1.0-56-amd64 SMP …",
//!             "signer": "DKMS module signing key", "key_id": "5A:1F:…"}]}
//! ```
//!
//! `signer` and `key_id` are present only for a signed module; a manifest
//! without them reads as before.
//!
//! The archive holds the manifest and then each module file at the top
//! level; [`file_name`] names it. `format` changes only when a reader of
//! an older format would misread the new one.

use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};

/// The format this code writes and reads.
pub const FORMAT: u32 = 1;

/// The name of the manifest inside the archive.
pub const MEMBER: &str = "manifest.json";

/// An artifact's manifest.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize, Serialize)]
pub struct Manifest {
    /// [`FORMAT`] when written by this code.
    pub format: u32,
    /// DKMS package name.
    pub name: String,
    /// DKMS package version.
    pub version: String,
    /// The kernel release the modules were built for.
    pub kernel: String,
    /// Their architecture.
    pub arch: String,
    /// The module files, in archive order.
    pub files: Vec<File>,
}

/// One module file of an artifact.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize, Serialize)]
pub struct File {
    /// File name at the archive's top level (`aacraid.ko`, `aacraid.ko.xz`).
    pub file: String,
    /// Module name.
    pub module: String,
    /// Size in bytes.
    pub size: u64,
    /// SHA-256 of the bytes.
    pub sha256: String,
    /// `MODULE_VERSION`.
    pub version: Option<String>,
    /// Source checksum.
    pub srcversion: Option<String>,
    /// Kernel release and options the module was built for.
    pub vermagic: Option<String>,
    /// Who signed the module (`formats::modsig`'s `signer`); absent when
    /// it is unsigned, and in manifests written before signers were recorded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signer: Option<String>,
    /// The signing key's identifier (`formats::modsig`'s `key_id`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_id: Option<String>,
}

/// `<name>-<version>-<kernel>.tgz`, the artifact's file name.
pub fn file_name(name: &str, version: &str, kernel: &str) -> String {
    format!("{name}-{version}-{kernel}.tgz")
}

impl Manifest {
    /// Decodes a manifest, refusing formats this code does not know.
    pub fn parse(bytes: &[u8]) -> Result<Manifest> {
        #[derive(Deserialize)]
        struct Versioned {
            format: u32,
        }
        let versioned: Versioned =
            serde_json::from_slice(bytes).context("manifest.json is not a valid manifest")?;
        if versioned.format != FORMAT {
            bail!(
                "manifest format {} is not supported (this module reads format {FORMAT})",
                versioned.format
            );
        }
        serde_json::from_slice(bytes).context("manifest.json is not a valid manifest")
    }

    /// The encoded manifest, as written into the archive.
    pub fn to_bytes(&self) -> Result<Vec<u8>> {
        Ok(serde_json::to_vec_pretty(self)?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_unknown_formats() -> Result<()> {
        let manifest = Manifest {
            format: FORMAT,
            name: "aacraid".into(),
            version: "1.2.1.41024".into(),
            kernel: "6.1.0-56-amd64".into(),
            arch: "x86_64".into(),
            files: vec![File {
                file: "aacraid.ko".into(),
                module: "aacraid".into(),
                size: 3,
                sha256: "ab".into(),
                version: Some("1.2-1.41024dkms".into()),
                srcversion: None,
                vermagic: None,
                signer: Some("DKMS module signing key".into()),
                key_id: Some("5A:1F".into()),
            }],
        };
        assert_eq!(Manifest::parse(&manifest.to_bytes()?)?, manifest);
        let mut unsigned = manifest.clone();
        unsigned.files[0].signer = None;
        unsigned.files[0].key_id = None;
        let bytes = unsigned.to_bytes()?;
        assert!(!String::from_utf8(bytes.clone())?.contains("signer"));
        assert_eq!(Manifest::parse(&bytes)?, unsigned);
        let newer =
            String::from_utf8(manifest.to_bytes()?)?.replace("\"format\": 1", "\"format\": 2");
        let err = Manifest::parse(newer.as_bytes())
            .err()
            .map(|e| format!("{e:#}"));
        assert_eq!(
            err.as_deref(),
            Some("manifest format 2 is not supported (this module reads format 1)")
        );
        assert!(Manifest::parse(b"{\"format\": 1}").is_err());
        assert_eq!(
            file_name("aacraid", "1.2", "6.1.0-56-amd64"),
            "aacraid-1.2-6.1.0-56-amd64.tgz"
        );
        Ok(())
    }
}
