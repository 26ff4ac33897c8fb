//! The options of `aacraid_build` (documented in the sidecar).

use anyhow::{bail, Result};
use linux_host::kernel::KernelSpec;
use serde::{Deserialize, Serialize};

/// What the run should leave behind.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum State {
    /// Added and built for each kernel.
    Built,
    /// Added, built and installed into each kernel's module tree.
    #[default]
    Installed,
    /// Removed from the DKMS tree (for the kernels given, or entirely).
    Absent,
}

/// Task options.
#[derive(Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Options {
    /// Vendor tarball, driver rpm, or DKMS source folder.
    #[serde(default)]
    pub src: Option<String>,
    /// Module package name; defaults to dkms.conf's PACKAGE_NAME.
    #[serde(default)]
    pub name: Option<String>,
    /// Version; defaults to dkms.conf's PACKAGE_VERSION.
    #[serde(default)]
    pub version: Option<String>,
    /// Kernel releases, `running`, or `all` (those with headers).
    #[serde(default = "default_kernels")]
    pub kernels: Vec<KernelSpec>,
    /// Desired state.
    #[serde(default)]
    pub state: State,
    /// Folder for one artifact per kernel.
    #[serde(default)]
    pub artifacts_dir: Option<String>,
    /// Run `dkms mkrpm` after building.
    #[serde(default)]
    pub mkrpm: bool,
    /// Pass `--force` to `dkms install` (install over a newer in-tree module).
    #[serde(default)]
    pub force: bool,
    /// `false`: `src` is on the controller; the action plugin uploads it
    /// and sets this back to `true`.
    #[serde(default = "ansible_protocol::options::default_true")]
    pub remote_src: bool,
    /// Controller folder the action plugin copies the artifacts into.
    #[serde(default)]
    pub fetch_dir: Option<String>,
    /// Private key the artifacts' modules are signed with.
    #[serde(default)]
    pub sign_key: Option<String>,
    /// Certificate of that key.
    #[serde(default)]
    pub sign_cert: Option<String>,
    /// Digest of the signatures.
    #[serde(default)]
    pub sign_hash: SignHash,
}

/// The digests `sign-file` and the kernel agree on.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum SignHash {
    #[default]
    Sha256,
    Sha384,
    Sha512,
    Sha224,
    Sha1,
}

impl SignHash {
    /// The name `sign-file` takes and a signature shows.
    pub fn name(self) -> &'static str {
        match self {
            SignHash::Sha256 => "sha256",
            SignHash::Sha384 => "sha384",
            SignHash::Sha512 => "sha512",
            SignHash::Sha224 => "sha224",
            SignHash::Sha1 => "sha1",
        }
    }
}

fn default_kernels() -> Vec<KernelSpec> {
    vec![KernelSpec::Running]
}

/// An option that, when given, must agree with what `dkms.conf` says
/// (`conf`: its value there and the file it came from).
pub fn agree(
    given: &Option<String>,
    conf: Option<(&String, &String)>,
    option: &str,
    key: &str,
) -> Result<String> {
    match (given, conf) {
        (Some(g), Some((c, source))) if g != c => {
            bail!("{option} {g:?} disagrees with dkms.conf's {key} {c:?} in {source}")
        }
        (Some(g), _) => Ok(g.clone()),
        (None, Some((c, _))) => Ok(c.clone()),
        (None, None) => bail!("{option} is required when src is not given"),
    }
}
