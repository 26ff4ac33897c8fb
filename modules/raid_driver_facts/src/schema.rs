//! `ansible_facts.raid_driver`: the fact tree this module reports. The
//! schema is public API, documented field by field in the sidecar
//! `raid_driver_facts.yml`; a source that is missing or unreadable yields
//! `null` (and a warning), never a failure.

use formats::modinfo::ModInfo;
use formats::{arcconf, compress, dkms};
use linux_host::kmod::{ModuleFile, Resolved};
use linux_host::signing::{Enforcement, HostSigning};
use linux_host::{loaded, pci};
use serde::Serialize;

/// What the module returns: the facts, under `ansible_facts`.
#[derive(Debug, Serialize)]
pub struct Return {
    /// Merged into the host's facts by the controller.
    pub ansible_facts: AnsibleFacts,
}

/// The facts this module sets.
#[derive(Debug, Serialize)]
pub struct AnsibleFacts {
    /// Everything about the driver, see [`RaidDriver`].
    pub raid_driver: RaidDriver,
}

/// The whole fact tree.
#[derive(Debug, Serialize)]
pub struct RaidDriver {
    pub name: String,
    pub running_kernel: Option<String>,
    pub kernels: Vec<KernelFacts>,
    pub loaded: Option<loaded::Loaded>,
    pub next_boot: Option<NextBoot>,
    pub reboot_required: Option<bool>,
    pub reboot_reason: Option<String>,
    pub dkms: Option<Vec<dkms::Entry>>,
    pub controllers: Option<Vec<pci::Device>>,
    pub arcconf: Option<Vec<arcconf::Controller>>,
    pub kernel_log: Option<KernelLog>,
    pub signing: Option<HostSigning>,
}

/// One kernel's view of the module.
#[derive(Debug, Serialize)]
pub struct KernelFacts {
    pub release: String,
    pub running: bool,
    pub installed: bool,
    /// `modinfo` or `modules.dep`: how `resolved` was found.
    pub resolved_by: Option<&'static str>,
    pub resolved: Option<ResolvedFacts>,
    pub copies: Option<Vec<Copy>>,
    /// Whether where the copies are came from the cache (the tree unchanged
    /// since it was last walked) instead of a walk; null when `copies` is.
    pub copies_from_cache: Option<bool>,
    pub initramfs: Option<Image>,
    /// Whether this kernel refuses modules without a trusted signature.
    pub signing: Option<Enforcement>,
}

/// The file the kernel loads for the module name, and whether it was built
/// for that kernel.
#[derive(Debug, Serialize)]
pub struct ResolvedFacts {
    #[serde(flatten)]
    pub resolved: Resolved,
    pub vermagic_matches: Option<bool>,
    #[serde(flatten)]
    pub load: LoadFacts,
}

/// A copy of the module in the kernel's module tree.
#[derive(Debug, Serialize)]
pub struct Copy {
    #[serde(flatten)]
    pub file: ModuleFile,
    pub active: bool,
    #[serde(flatten)]
    pub load: LoadFacts,
}

/// An initramfs image and the module inside it.
#[derive(Debug, Serialize)]
pub struct Image {
    pub path: String,
    pub exists: bool,
    pub compression: Option<compress::Compression>,
    pub early_cpio: Option<bool>,
    pub appended_segment: Option<u64>,
    pub contains_module: Option<bool>,
    pub module: Option<ImageModule>,
    pub matches_resolved: Option<bool>,
    pub from_cache: bool,
    pub error: Option<String>,
}

/// A copy of the module inside an image.
#[derive(Debug, Serialize)]
pub struct ImageModule {
    pub path: String,
    pub size: u64,
    pub sha256: String,
    #[serde(flatten)]
    pub info: ModInfo,
    #[serde(flatten)]
    pub load: LoadFacts,
}

/// Whether the kernel's signature check lets a copy load, and why; null
/// when `signing` was not gathered.
#[derive(Debug, Default, Serialize)]
pub struct LoadFacts {
    pub will_load: Option<bool>,
    pub will_load_reason: Option<String>,
}

/// What the running kernel will load at the next boot.
#[derive(Debug, Serialize)]
pub struct NextBoot {
    pub kernel: String,
    pub source: &'static str,
    pub path: Option<String>,
    pub version: Option<String>,
    pub srcversion: Option<String>,
}

/// The driver's banner in the kernel log.
#[derive(Debug, Serialize)]
pub struct KernelLog {
    pub banner: Option<loaded::Banner>,
}
