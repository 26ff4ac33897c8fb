//! Collecting `ansible_facts.raid_driver`. Every source is read-only; a
//! source that is missing or unreadable yields `null` plus a warning, so the
//! facts of a half-configured host are still worth having. The schema here
//! is public API: it is documented field by field in `raid_driver_facts.yml`.

use std::path::{Path, PathBuf};

use linux_host::initramfs::{image_path, member_for, module_files};
use linux_host::kmod::{self, ModInfo, ModuleFile, Resolution};
use linux_host::{arcconf, dkms, kernel, loaded, pci, Cmd, Host, ProgramNotFound};
use serde::Serialize;

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
}

/// One kernel's view of the module.
#[derive(Debug, Serialize)]
pub struct KernelFacts {
    pub release: String,
    pub running: bool,
    pub installed: bool,
    /// `modinfo` or `modules.dep`: how `resolved` was found.
    pub resolved_by: Option<&'static str>,
    pub resolved: Option<Resolved>,
    pub copies: Option<Vec<Copy>>,
    pub initramfs: Option<Image>,
}

/// The file the kernel loads for the module name.
#[derive(Debug, Default, Serialize)]
pub struct Resolved {
    pub builtin: bool,
    pub path: Option<PathBuf>,
    pub tree: Option<String>,
    pub version: Option<String>,
    pub srcversion: Option<String>,
    pub vermagic: Option<String>,
    pub vermagic_matches: Option<bool>,
    pub sha256: Option<String>,
}

/// A copy of the module in the kernel's module tree.
#[derive(Debug, Serialize)]
pub struct Copy {
    #[serde(flatten)]
    pub file: ModuleFile,
    pub active: bool,
}

/// An initramfs image and the module inside it.
#[derive(Debug, Serialize)]
pub struct Image {
    pub path: String,
    pub exists: bool,
    pub compression: Option<linux_host::compress::Compression>,
    pub early_cpio: Option<bool>,
    pub contains_module: Option<bool>,
    pub module: Option<ImageModule>,
    pub matches_resolved: Option<bool>,
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

/// Which parts to gather (see the `gather_subset` option).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Subset {
    pub modules: bool,
    pub initramfs: bool,
    pub loaded: bool,
    pub dkms: bool,
    pub controllers: bool,
    pub kernel_log: bool,
}

/// Names accepted in `gather_subset`.
pub const SUBSETS: &[&str] = &[
    "modules",
    "initramfs",
    "loaded",
    "dkms",
    "controllers",
    "kernel_log",
];

/// What to gather, from the options.
pub struct Request<'a> {
    pub name: &'a str,
    pub kernels: &'a [String],
    pub subset: Subset,
    pub arcconf: Option<&'a str>,
    pub banner: &'a str,
}

/// Warnings collected on the way.
#[derive(Default)]
pub struct Notes(pub Vec<String>);

impl Notes {
    fn warn(&mut self, text: String) {
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
    let releases = select_kernels(req.kernels, &installed, running.as_deref(), notes);
    let modinfo_present = host.find_program("modinfo").is_ok();
    if req.subset.modules && !modinfo_present && !releases.is_empty() {
        notes.warn(
            "modinfo (kmod) is not installed: module files resolved from modules.dep instead"
                .into(),
        );
    }
    // Reading images is the costly part (decompression): one thread per kernel.
    let per_kernel: Vec<(KernelFacts, Notes)> = std::thread::scope(|scope| {
        let workers: Vec<_> = releases
            .iter()
            .map(|release| {
                let (installed, running) = (
                    installed.contains(release),
                    running.as_deref() == Some(release.as_str()),
                );
                scope.spawn(move || {
                    let mut notes = Notes::default();
                    let facts = kernel_facts(
                        host,
                        req,
                        release,
                        installed,
                        running,
                        modinfo_present,
                        &mut notes,
                    );
                    (facts, notes)
                })
            })
            .collect();
        workers
            .into_iter()
            .map(|w| {
                w.join()
                    .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
            })
            .collect()
    });
    let mut kernels = Vec::with_capacity(per_kernel.len());
    for (facts, kernel_notes) in per_kernel {
        kernels.push(facts);
        notes.0.extend(kernel_notes.0);
    }

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

    let dkms = req
        .subset
        .dkms
        .then(|| dkms_entries(host, req.name, notes))
        .flatten();
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
        .then(|| arcconf_controllers(host, req.arcconf, notes))
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

    Ok(RaidDriver {
        name: req.name.to_string(),
        running_kernel: running,
        kernels,
        loaded,
        next_boot,
        reboot_required,
        reboot_reason,
        dkms,
        controllers,
        arcconf,
        kernel_log,
    })
}

fn select_kernels(
    wanted: &[String],
    installed: &[String],
    running: Option<&str>,
    notes: &mut Notes,
) -> Vec<String> {
    if wanted.is_empty() {
        return installed.to_vec();
    }
    let mut out: Vec<String> = Vec::new();
    for k in wanted {
        let release = if k == "running" {
            match running {
                Some(r) => r.to_string(),
                None => continue,
            }
        } else {
            k.clone()
        };
        if !installed.contains(&release) {
            notes.warn(format!(
                "kernel {release} is not installed (no module tree in /lib/modules/{release})"
            ));
        }
        if !out.contains(&release) {
            out.push(release);
        }
    }
    out
}

fn kernel_facts(
    host: &Host,
    req: &Request,
    release: &str,
    installed: bool,
    running: bool,
    modinfo_present: bool,
    notes: &mut Notes,
) -> KernelFacts {
    let mut facts = KernelFacts {
        release: release.to_string(),
        running,
        installed,
        resolved_by: None,
        resolved: None,
        copies: None,
        initramfs: None,
    };
    if !installed {
        return facts;
    }
    let mut resolved_file: Option<ModuleFile> = None;
    if req.subset.modules {
        let (how, resolution) = if modinfo_present {
            (
                "modinfo",
                kmod::resolve_with_modinfo(host, release, req.name),
            )
        } else {
            (
                "modules.dep",
                kmod::resolve_with_modules_dep(host, release, req.name),
            )
        };
        match resolution {
            Ok(resolution) => {
                facts.resolved_by = Some(how);
                let (resolved, file) = describe_resolution(host, release, resolution);
                facts.resolved = resolved;
                resolved_file = file;
            }
            Err(e) => notes.warn(format!(
                "kernel {release}: cannot resolve {}: {e:#}",
                req.name
            )),
        }
        match kmod::find_copies(host, release, req.name) {
            Ok(paths) => {
                facts.copies = Some(
                    paths
                        .iter()
                        .map(|p| Copy {
                            active: resolved_file.as_ref().map(|r| &r.path) == Some(p),
                            file: ModuleFile::read(host, release, p),
                        })
                        .collect(),
                )
            }
            Err(e) => notes.warn(format!("kernel {release}: {e:#}")),
        }
    }
    if req.subset.initramfs {
        let image = image_facts(host, release, req.name, resolved_file.as_ref());
        if let Some(error) = &image.error {
            notes.warn(format!(
                "kernel {release}: initramfs {}: {error}",
                image.path
            ));
        }
        facts.initramfs = Some(image);
    }
    facts
}

fn describe_resolution(
    host: &Host,
    release: &str,
    resolution: Resolution,
) -> (Option<Resolved>, Option<ModuleFile>) {
    match resolution {
        Resolution::NotFound => (None, None),
        Resolution::Builtin => (
            Some(Resolved {
                builtin: true,
                ..Resolved::default()
            }),
            None,
        ),
        Resolution::File(path) => {
            let file = ModuleFile::read(host, release, &path);
            let resolved = Resolved {
                builtin: false,
                path: Some(path),
                tree: Some(file.tree.clone()),
                version: file.info.version.clone(),
                srcversion: file.info.srcversion.clone(),
                vermagic: file.info.vermagic.clone(),
                vermagic_matches: file.info.vermagic_release().map(|r| r == release),
                sha256: file.sha256.clone(),
            };
            (Some(resolved), Some(file))
        }
    }
}

fn image_facts(host: &Host, release: &str, name: &str, resolved: Option<&ModuleFile>) -> Image {
    let (path, exists) = image_path(host, release);
    let path = path.display().to_string();
    let mut image = Image {
        path: path.clone(),
        exists,
        compression: None,
        early_cpio: None,
        contains_module: None,
        module: None,
        matches_resolved: None,
        error: None,
    };
    if !exists {
        return image;
    }
    let scan = match module_files(host, Path::new(&path), release, &[name.to_string()]) {
        Ok(scan) => scan,
        Err(e) => {
            image.error = Some(format!("{e:#}"));
            return image;
        }
    };
    image.compression = Some(scan.compression());
    image.early_cpio = Some(scan.segments.len() > 1);
    let file = member_for(&scan.files, release, name).cloned();
    image.contains_module = Some(file.is_some());
    match file {
        Some(file) => {
            let sha256 = kmod::sha256_hex(&file.data);
            image.matches_resolved = resolved.map(|r| r.sha256.as_deref() == Some(sha256.as_str()));
            image.module = Some(ImageModule {
                path: file.path,
                size: file.data.len() as u64,
                sha256,
                info: ModInfo::from_bytes(file.data).unwrap_or_default(),
            });
        }
        None => image.matches_resolved = resolved.map(|_| false),
    }
    image
}

fn next_boot(k: &KernelFacts) -> Option<NextBoot> {
    if let Some(module) = k.initramfs.as_ref().and_then(|i| i.module.as_ref()) {
        return Some(NextBoot {
            kernel: k.release.clone(),
            source: "initramfs",
            path: Some(module.path.clone()),
            version: module.info.version.clone(),
            srcversion: module.info.srcversion.clone(),
        });
    }
    let resolved = k.resolved.as_ref()?;
    Some(NextBoot {
        kernel: k.release.clone(),
        source: if resolved.builtin {
            "builtin"
        } else {
            "modules"
        },
        path: resolved.path.as_ref().map(|p| p.display().to_string()),
        version: resolved.version.clone(),
        srcversion: resolved.srcversion.clone(),
    })
}

fn reboot(
    loaded: Option<&loaded::Loaded>,
    next: Option<&NextBoot>,
    running: Option<&str>,
    images_read: bool,
) -> (bool, String) {
    let Some(loaded) = loaded else {
        return (false, "the module is not loaded".into());
    };
    let Some(next) = next else {
        let running = running.unwrap_or("unknown");
        return (
            false,
            format!("the running kernel {running} has no module tree here: next boot unknown"),
        );
    };
    let source = match (next.source, images_read) {
        ("initramfs", _) => "the initramfs",
        ("builtin", _) => "the kernel image",
        (_, true) => "the module tree (the initramfs lacks it)",
        (_, false) => "the module tree",
    };
    // srcversion tells builds apart even when the version string is reused.
    let pairs = [
        ("srcversion", &loaded.srcversion, &next.srcversion),
        ("version", &loaded.version, &next.version),
    ];
    let Some((what, Some(now), Some(then))) = pairs
        .into_iter()
        .find(|(_, a, b)| a.is_some() && b.is_some())
    else {
        return (
            false,
            "neither srcversion nor version can be compared".into(),
        );
    };
    if now == then {
        (false, format!("the loaded module matches {source}"))
    } else {
        (
            true,
            format!("loaded {what} {now} differs from {then} in {source}"),
        )
    }
}

fn dkms_entries(host: &Host, name: &str, notes: &mut Notes) -> Option<Vec<dkms::Entry>> {
    let cmd = Cmd::new("dkms").arg("status").arg("-m").arg(name);
    match host.run(&cmd) {
        Ok(out) => {
            let status = dkms::parse_status(&out.stdout);
            if !out.success() {
                notes.warn(format!("`{cmd}` exited {}: {}", out.rc, out.stderr.trim()));
            }
            Some(
                status
                    .entries
                    .into_iter()
                    .filter(|e| kmod::normalize(&e.module) == kmod::normalize(name))
                    .collect(),
            )
        }
        Err(e) => {
            notes.warn(missing_or_error("dkms", &e));
            None
        }
    }
}

const ARCCONF_PLACES: &[&str] = &[
    "/usr/Arcconf/arcconf",
    "/usr/StorMan/arcconf",
    "/opt/Arcconf/arcconf",
];

fn arcconf_controllers(
    host: &Host,
    path: Option<&str>,
    notes: &mut Notes,
) -> Option<Vec<arcconf::Controller>> {
    let program = match path {
        Some(p) => p.to_string(),
        None => host
            .find_program("arcconf")
            .ok()
            .map(|_| "arcconf".to_string())
            .or_else(|| {
                ARCCONF_PLACES
                    .iter()
                    .find(|p| host.find_program(p).is_ok())
                    .map(|p| p.to_string())
            })
            .unwrap_or_else(|| "arcconf".into()),
    };
    let cmd = Cmd::new(program).arg("getversion");
    match host.run_ok(&cmd) {
        Ok(out) => Some(arcconf::parse_getversion(&out.stdout)),
        Err(e) => {
            notes.warn(missing_or_error("arcconf", &e));
            None
        }
    }
}

fn missing_or_error(tool: &str, e: &anyhow::Error) -> String {
    if e.downcast_ref::<ProgramNotFound>().is_some() {
        format!("{tool} is not installed: its facts are null")
    } else {
        format!("{tool} failed, its facts are null: {e:#}")
    }
}
