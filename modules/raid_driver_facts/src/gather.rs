//! Collecting `ansible_facts.raid_driver` (schema in [`crate::schema`]):
//! which kernels, then each kernel's facts (one thread per kernel: reading
//! images and walking module trees are the costly parts), with the
//! host-wide families read meanwhile on the calling thread.

use linux_host::kernel::{self, KernelSpec};
use linux_host::signing::HostSigning;
use linux_host::{loaded, pci, Host};

use crate::boot::{next_boot, reboot};
use crate::image_cache::Cache;
use crate::options::Subset;
use crate::per_kernel::kernel_facts;
use crate::schema::{KernelLog, RaidDriver};
use crate::tools::{arcconf_controllers, dkms_entries};

/// What to gather, from the options.
pub struct Request<'a> {
    pub name: &'a str,
    pub kernels: &'a [KernelSpec],
    pub subset: Subset,
    pub arcconf: Option<&'a str>,
    pub banner: &'a str,
    /// Where what images hold is kept between gathers, when it may be.
    pub cache: Option<&'a Cache>,
}

/// Warnings collected on the way.
#[derive(Default)]
pub struct Notes(pub Vec<String>);

impl Notes {
    pub fn warn(&mut self, text: String) {
        self.0.push(text);
    }
}

/// Reads everything `req` asks for.
pub fn gather(host: &Host, req: &Request, notes: &mut Notes) -> anyhow::Result<RaidDriver> {
    let running = match kernel::running(host) {
        Ok(k) => Some(k),
        Err(e) => {
            notes.warn(format!("{e:#}"));
            None
        }
    };
    let installed = kernel::installed(host)?;
    let releases = select_kernels(host, req.kernels, &installed, running.is_some(), notes)?;
    let modinfo_present = host.find_program("modinfo").is_ok();
    if req.subset.modules && !modinfo_present && !releases.is_empty() {
        notes.warn(
            "modinfo (kmod) is not installed: module files resolved from modules.dep instead"
                .into(),
        );
    }
    let signing = req.subset.signing.then(|| HostSigning::read(host));
    let (per_kernel, wide) = std::thread::scope(|scope| {
        let workers: Vec<_> = releases
            .iter()
            .map(|release| {
                let installed = installed.contains(release);
                let running = running.as_deref() == Some(release.as_str());
                let signing = signing.as_ref();
                scope.spawn(move || {
                    let mut notes = Notes::default();
                    let facts = kernel_facts(
                        host,
                        req,
                        release,
                        (installed, running, modinfo_present),
                        signing,
                        &mut notes,
                    );
                    (facts, notes)
                })
            })
            .collect();
        // Read while the kernels' threads work.
        let wide = host_wide(host, req);
        let per_kernel: Vec<_> = workers
            .into_iter()
            .map(|w| {
                w.join()
                    .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
            })
            .collect();
        (per_kernel, wide)
    });
    let mut kernels = Vec::with_capacity(per_kernel.len());
    for (facts, kernel_notes) in per_kernel {
        kernels.push(facts);
        notes.0.extend(kernel_notes.0);
    }
    notes.0.extend(wide.notes.0);

    let loaded = req
        .subset
        .loaded
        .then(|| loaded::loaded(host, req.name))
        .flatten();
    let next_boot = kernels
        .iter()
        .find(|k| k.running && k.installed)
        .and_then(next_boot);
    let (reboot_required, reboot_reason) = if req.subset.loaded && req.subset.modules {
        let (required, reason) = reboot(
            loaded.as_ref(),
            next_boot.as_ref(),
            running.as_deref(),
            req.subset.initramfs,
        );
        (Some(required), Some(reason))
    } else {
        (None, None)
    };

    Ok(RaidDriver {
        name: req.name.to_string(),
        running_kernel: running,
        kernels,
        loaded,
        next_boot,
        reboot_required,
        reboot_reason,
        dkms: wide.dkms,
        controllers: wide.controllers,
        arcconf: wide.arcconf,
        kernel_log: wide.kernel_log,
        signing,
    })
}

/// The families that are the host's, not a kernel's, with their warnings.
struct HostWide {
    dkms: Option<Vec<formats::dkms::Entry>>,
    controllers: Option<Vec<pci::Device>>,
    arcconf: Option<Vec<formats::arcconf::Controller>>,
    kernel_log: Option<KernelLog>,
    notes: Notes,
}

/// `dkms status` (or the check of its kept answer, which waits for the
/// kernels' module trees) on a thread of its own, the rest on this one.
fn host_wide(host: &Host, req: &Request) -> HostWide {
    std::thread::scope(|scope| {
        let dkms = req.subset.dkms.then(|| {
            scope.spawn(|| {
                let mut notes = Notes::default();
                let entries = dkms_entries(host, req.name, req.cache, &mut notes);
                (entries, notes)
            })
        });
        let mut rest = other_tools(host, req);
        if let Some(worker) = dkms {
            let (entries, mut notes) = worker
                .join()
                .unwrap_or_else(|panic| std::panic::resume_unwind(panic));
            rest.dkms = entries;
            notes.0.append(&mut rest.notes.0);
            rest.notes = notes;
        }
        rest
    })
}

/// The host-wide families but DKMS.
fn other_tools(host: &Host, req: &Request) -> HostWide {
    let mut notes = Notes::default();
    let controllers = if req.subset.controllers {
        match pci::controllers(host, req.name) {
            Ok(found) => Some(found),
            Err(e) => {
                notes.warn(format!("cannot list PCI controllers: {e:#}"));
                None
            }
        }
    } else {
        None
    };
    let arcconf = req
        .subset
        .controllers
        .then(|| arcconf_controllers(host, req.arcconf, &mut notes))
        .flatten();
    let kernel_log = if req.subset.kernel_log {
        match loaded::kernel_log_banner(host, req.banner) {
            Ok(banner) => Some(KernelLog { banner }),
            Err(e) => {
                notes.warn(format!("cannot read the kernel log: {e:#}"));
                None
            }
        }
    } else {
        None
    };
    HostWide {
        dkms: None,
        controllers,
        arcconf,
        kernel_log,
        notes,
    }
}

/// The kernels to report: every installed one when none is named; a named
/// kernel that is not installed is reported (as not installed) with a
/// warning; `running` is left out when the running kernel is unknown.
fn select_kernels(
    host: &Host,
    wanted: &[KernelSpec],
    installed: &[String],
    running_known: bool,
    notes: &mut Notes,
) -> anyhow::Result<Vec<String>> {
    if wanted.is_empty() {
        return Ok(installed.to_vec());
    }
    let known: Vec<KernelSpec> = wanted
        .iter()
        .filter(|w| running_known || **w != KernelSpec::Running)
        .cloned()
        .collect();
    let releases = kernel::select(host, &known, installed, |_| true)?;
    for release in releases.iter().filter(|r| !installed.contains(r)) {
        notes.warn(format!(
            "kernel {release} is not installed (no module tree in /lib/modules/{release})"
        ));
    }
    Ok(releases)
}
