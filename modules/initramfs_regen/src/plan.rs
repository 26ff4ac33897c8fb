//! Deciding, per kernel, whether its image must be rebuilt: the image must
//! hold each named module at the path the kernel resolves, with the same
//! bytes, as the image's own `modules.dep` would load it.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context as _, Result};
use formats::cpio::{Member, Scan};
use formats::limits::MODULE_MAX;
use formats::modinfo::{sha256_hex, validate_name, ModInfo, Resolution};
use linux_host::initramfs::{self, member_for, module_files, relative_module_path};
use linux_host::kmod::{Lookup, Resolved};
use linux_host::signing::{self, HostSigning};
use linux_host::{kernel, DirLock, Host};
use serde::Serialize;

use crate::append;
use crate::leftovers::{self, Leftover};
use crate::options::{Method, Options, Tool};
use crate::space::check_space;

/// A named module's copy in an image (or the copy it must hold), as shown
/// in results and diffs.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Inside {
    /// Module name.
    pub name: String,
    /// Path relative to the kernel's module folder in the image, or null
    /// when the image does not hold the module.
    pub path: Option<String>,
    /// Its `MODULE_VERSION`.
    pub version: Option<String>,
    /// SHA-256 of the file in the image.
    pub sha256: Option<String>,
}

impl Inside {
    /// The copy of `name` an image's modprobe would load, from the image's
    /// files for kernel `kver`.
    pub fn of(files: &[Member], kver: &str, name: &str) -> Inside {
        let member = member_for(files, kver, name);
        Inside {
            name: name.to_string(),
            path: member.map(|m| relative_module_path(&m.path, kver)),
            version: member.and_then(|m| ModInfo::from_bytes(m.data.clone()).ok()?.version),
            sha256: member.map(|m| sha256_hex(&m.data)),
        }
    }

    /// The copy an image must hold: the file kernel `kver` resolves.
    fn wanted(kver: &str, name: &str, resolved: &Resolved) -> Option<Inside> {
        let path = resolved.path()?;
        Some(Inside {
            name: name.to_string(),
            path: Some(relative_module_path(&path.display().to_string(), kver)),
            version: resolved.info().version,
            sha256: resolved.sha256().map(str::to_string),
        })
    }

    /// Whether this copy is `wanted` (same path, same bytes).
    pub fn is(&self, wanted: &Inside) -> bool {
        self.path.is_some() && self.path == wanted.path && self.sha256 == wanted.sha256
    }

    /// `path (version)` for messages.
    pub fn shown(&self) -> String {
        format!(
            "{} ({})",
            self.path.as_deref().unwrap_or("nothing"),
            self.version.as_deref().unwrap_or("no version")
        )
    }
}

/// One kernel's part of the plan.
#[derive(Debug)]
pub struct KernelPlan {
    pub kernel: String,
    pub image: PathBuf,
    pub exists: bool,
    pub rebuild: bool,
    pub reason: String,
    /// The named modules in the image now.
    pub before: Vec<Inside>,
    /// The copies the image must hold (modules built into the kernel need
    /// none).
    pub wanted: Vec<Inside>,
    /// Where each of `wanted` is on the host: module name, file.
    pub sources: Vec<(String, PathBuf)>,
    pub old_mode: Option<u32>,
    /// With `append`, the bytes the new image is expected to take (see
    /// [`append::estimate`]); `None` for a rebuild.
    pub append_estimate: Option<u64>,
}

/// Everything decided before the first change.
pub struct Plan {
    pub(crate) tool: Tool,
    pub(crate) method: Method,
    pub(crate) backup: bool,
    pub(crate) modules: Vec<String>,
    pub(crate) kernels: Vec<KernelPlan>,
    /// What killed runs left, removed before anything else.
    pub(crate) leftovers: Vec<Leftover>,
    pub(crate) timeout: u64,
    pub(crate) warnings: Vec<String>,
    pub(crate) _locks: Vec<DirLock>,
}

/// Refuses to put into kernel `k`'s image a module file that `k` would
/// reject for its signature (or its lack of one): the boot would go on
/// without the driver, which may hold the root disk. With `force`, warns.
fn check_signatures(
    host: &Host,
    k: &str,
    resolutions: &[Resolved],
    signing: &HostSigning,
    force: bool,
    warnings: &mut Vec<String>,
) -> Result<()> {
    for resolved in resolutions {
        let (Some(file), Some(path)) = (&resolved.file, resolved.path()) else {
            continue;
        };
        let Some(why) = signing::refusal(host, signing, k, file.info.signature.as_ref(), resolved)
        else {
            continue;
        };
        let problem = format!("kernel {k} would not load {}: {why}", path.display());
        if !force {
            bail!(
                "{problem}; the new image would carry it: install a build signed with a key the kernel \
                 trusts, or set force: true to rebuild anyway"
            );
        }
        warnings.push(format!(
            "{problem}; the image is rebuilt anyway because force is set"
        ));
    }
    Ok(())
}

/// Reads each kernel's resolution and image; decides what to rebuild.
pub fn plan(o: Options, host: &Host) -> Result<Plan> {
    let modules = o.wanted()?;
    for m in &modules {
        validate_name(m)?;
    }
    let installed = kernel::installed(host)?;
    let kernels = kernel::select(host, &o.kernels, &installed, |_| true)?;
    kernel::require_installed(&kernels, &installed)?;
    if kernels.is_empty() {
        bail!("no kernel selected: kernels is empty or no kernel is installed");
    }
    let tool = Tool::choose(host, o.tool)?;
    // Hold the module trees (kmod_update writes there) and /boot while
    // deciding and rebuilding.
    let mut locks = kernel::lock_trees(host, &kernels)?;
    locks.push(host.lock_dir(Path::new("/boot"))?);
    let leftovers = leftovers::find(host)?;
    let signing = HostSigning::read(host);
    let mut warnings = Vec::new();
    let mut plans = Vec::new();
    for k in &kernels {
        plans.push(plan_kernel(host, k, &o, &modules, &signing, &mut warnings)?);
    }
    let freed = leftovers.iter().map(|l| l.frees).sum();
    check_space(host, &plans, o.backup, freed, &mut warnings)?;
    Ok(Plan {
        tool,
        method: o.method,
        backup: o.backup,
        modules,
        kernels: plans,
        leftovers,
        timeout: o.timeout,
        warnings,
        _locks: locks,
    })
}

fn plan_kernel(
    host: &Host,
    k: &str,
    o: &Options,
    modules: &[String],
    signing: &HostSigning,
    warnings: &mut Vec<String>,
) -> Result<KernelPlan> {
    let mut wanted = Vec::new();
    let mut sources = Vec::new();
    // With `append`, the modules each new file needs (module, needed): the
    // image must hold them, as nothing else is added.
    let mut needs: Vec<(String, String)> = Vec::new();
    let mut resolutions = Vec::new();
    for name in modules {
        let resolved = Resolved::read(host, k, name, Lookup::Auto)?;
        match (&resolved.resolution, &resolved.file) {
            (Resolution::File(path), Some(file)) if file.sha256.is_none() => bail!(
                "cannot read {}: {}",
                path.display(),
                file.error.as_deref().unwrap_or("unreadable")
            ),
            (Resolution::NotFound, _) => bail!(
                "kernel {k} has no module {name} (modinfo -k {k} -n {name} finds none): install it first"
            ),
            // Part of the kernel image itself: nothing to carry.
            _ => wanted.extend(Inside::wanted(k, name, &resolved)),
        }
        if let Some(path) = resolved.path() {
            sources.push((name.clone(), path.to_path_buf()));
            if o.method == Method::Append {
                let (bytes, _) = host.read_capped(path, MODULE_MAX)?;
                let depends = ModInfo::depends(bytes)
                    .with_context(|| format!("cannot read the .modinfo of {}", path.display()))?;
                needs.extend(depends.into_iter().map(|d| (name.clone(), d)));
            }
        }
        resolutions.push(resolved);
    }
    let (image, exists) = initramfs::image_path(host, k);
    let mut scanned: Option<Scan> = None;
    let (before, stale) = if exists {
        let mut names = modules.to_vec();
        names.extend(needs.iter().map(|(_, d)| d.clone()));
        let scan = scanned.insert(module_files(host, &image, k, &names)?);
        let before: Vec<Inside> = modules
            .iter()
            .map(|name| Inside::of(&scan.files, k, name))
            .collect();
        let stale = wanted.iter().find_map(|w| {
            let inside = before.iter().find(|b| b.name == w.name)?;
            match &inside.path {
                None => Some(format!(
                    "the image lacks {}; the kernel resolves {}",
                    w.name,
                    w.shown()
                )),
                Some(_) if !inside.is(w) => Some(format!(
                    "the image holds {}, the kernel resolves {}",
                    inside.shown(),
                    w.shown()
                )),
                _ => None,
            }
        });
        (before, stale)
    } else {
        (Vec::new(), Some("no image".to_string()))
    };
    let (rebuild, reason) = match stale {
        Some(why) => (true, why),
        None if o.force => (true, "current, rebuilt because force is set".into()),
        None => (false, "current".into()),
    };
    let mut append_estimate = None;
    if rebuild {
        if o.method == Method::Append {
            append::check(k, &image, scanned.as_ref(), &sources, &needs)?;
            append_estimate = scanned
                .as_ref()
                .map(|scan| append::estimate(host, &image, scan, &sources));
        }
        check_signatures(host, k, &resolutions, signing, o.force, warnings)?;
        // A bootloader that reads the link's target would keep the old
        // image while the link became a regular file.
        let boot = image.parent().unwrap_or(Path::new("/boot"));
        host.refuse_links_below(boot, &image)
            .with_context(|| format!("cannot rebuild the image of kernel {k}"))?;
    }
    Ok(KernelPlan {
        kernel: k.to_string(),
        old_mode: if exists {
            Some(host.mode(&image)?)
        } else {
            None
        },
        image,
        exists,
        rebuild,
        reason,
        before,
        wanted,
        sources,
        append_estimate,
    })
}
