//! The options of `kmod_update` (documented in the sidecar) and their
//! checks that need no host.

use std::path::PathBuf;

use anyhow::{bail, Result};
use linux_host::kernel::KernelSpec;
use serde::{Deserialize, Serialize};

/// What the run should leave behind.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum State {
    /// The module from `src` is installed and resolved.
    #[default]
    Present,
    /// What kmod_update installed is gone; what it replaced is back.
    Absent,
}

/// Task options.
#[derive(Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Options {
    /// A `.ko` (plain or compressed) or an artifact `.tgz` on the host.
    #[serde(default)]
    pub src: Option<String>,
    /// Module name.
    #[serde(default = "default_name")]
    pub name: String,
    /// Kernel releases or `running`; empty: the artifact's (or the
    /// module's vermagic) kernel, or with `absent` every kernel with a record.
    #[serde(default)]
    pub kernels: Vec<KernelSpec>,
    /// Folder under `/lib/modules/<kver>`.
    #[serde(default = "default_dest")]
    pub dest: String,
    /// Desired state.
    #[serde(default)]
    pub state: State,
    /// Keep a replaced file beside it, named `<file>.<date>@<time>~`.
    #[serde(default)]
    pub backup: bool,
    /// Accept a vermagic mismatch, or remove a changed file with `absent`.
    #[serde(default)]
    pub force: bool,
    /// The `MODULE_VERSION` the source must have.
    #[serde(default)]
    pub expected_version: Option<String>,
    /// The signer the source's module must be signed by.
    #[serde(default)]
    pub expected_signer: Option<String>,
    /// `false`: `src` is on the controller; the action plugin uploads it
    /// and sets this back to `true`.
    #[serde(default = "ansible_protocol::options::default_true")]
    pub remote_src: bool,
}

fn default_name() -> String {
    "aacraid".into()
}

fn default_dest() -> String {
    "updates".into()
}

/// A relative folder below the kernel's module tree, outside its own
/// `kernel/` tree (which package updates overwrite).
pub fn validate_dest(dest: &str) -> Result<PathBuf> {
    let path = PathBuf::from(dest);
    let plain = !dest.is_empty()
        && path
            .components()
            .all(|c| matches!(c, std::path::Component::Normal(_)));
    if !plain {
        bail!(
            "dest must be a relative folder under /lib/modules/<kver> without `..`, got {dest:?}"
        );
    }
    if ["kernel", "build", "source"]
        .iter()
        .any(|own| path.starts_with(own))
    {
        bail!(
            "dest {dest:?} is inside the kernel package's own files, which its updates overwrite: \
             use updates (the default) or extra"
        );
    }
    Ok(path)
}
