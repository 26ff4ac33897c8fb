//! The options of `raid_driver_facts` (documented in the sidecar) and the
//! `gather_subset` they select.

use anyhow::{bail, Result};
use linux_host::kernel::KernelSpec;
use serde::{Deserialize, Serialize};

/// Task options.
#[derive(Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Options {
    /// Kernel module name.
    #[serde(default = "default_name")]
    pub name: String,
    /// Kernels to report; empty means every installed kernel.
    #[serde(default)]
    pub kernels: Vec<KernelSpec>,
    /// Parts to gather: `all`, part names, `!part` to leave one out.
    #[serde(default = "default_subset")]
    pub gather_subset: Vec<String>,
    /// Path of `arcconf`, when it is not in a usual place.
    #[serde(default)]
    pub arcconf_path: Option<String>,
    /// Text that starts the driver's line in the kernel log.
    #[serde(default = "default_banner")]
    pub banner: String,
    /// Folder of the image cache; empty turns it off.
    #[serde(default = "default_image_cache")]
    pub image_cache: String,
}

fn default_image_cache() -> String {
    crate::image_cache::DEFAULT.into()
}

fn default_name() -> String {
    "aacraid".into()
}

fn default_subset() -> Vec<String> {
    vec!["all".into()]
}

fn default_banner() -> String {
    "Adaptec aacraid driver".into()
}

/// Which parts to gather.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Subset {
    /// Resolved files and copies per kernel.
    pub modules: bool,
    /// What each kernel's initramfs holds.
    pub initramfs: bool,
    /// The loaded module.
    pub loaded: bool,
    /// `dkms status`.
    pub dkms: bool,
    /// PCI controllers and `arcconf`.
    pub controllers: bool,
    /// The driver's banner in the kernel log.
    pub kernel_log: bool,
    /// Signature enforcement and whether each copy would load.
    pub signing: bool,
}

/// Names accepted in `gather_subset`.
pub const SUBSETS: &[&str] = &[
    "modules",
    "initramfs",
    "loaded",
    "dkms",
    "controllers",
    "kernel_log",
    "signing",
];

/// `gather_subset` the way `setup` reads it: `all`, names, `!name`.
pub fn parse_subset(items: &[String]) -> Result<Subset> {
    let mut chosen: Vec<&str> = Vec::new();
    let mut excluded: Vec<&str> = Vec::new();
    for item in items.iter().map(|s| s.trim()) {
        let (negated, word) = match item.strip_prefix('!') {
            Some(rest) => (true, rest),
            None => (false, item),
        };
        let names: Vec<&str> = if word == "all" {
            SUBSETS.to_vec()
        } else if let Some(known) = SUBSETS.iter().find(|s| **s == word) {
            vec![known]
        } else {
            bail!(
                "gather_subset: unknown part {word:?}; choose from all, {}",
                SUBSETS.join(", ")
            );
        };
        if negated {
            excluded.extend(names);
        } else {
            chosen.extend(names);
        }
    }
    if chosen.is_empty() {
        chosen = SUBSETS.to_vec();
    }
    let on = |name: &str| chosen.contains(&name) && !excluded.contains(&name);
    Ok(Subset {
        modules: on("modules"),
        initramfs: on("initramfs"),
        loaded: on("loaded"),
        dkms: on("dkms"),
        controllers: on("controllers"),
        kernel_log: on("kernel_log"),
        signing: on("signing"),
    })
}
