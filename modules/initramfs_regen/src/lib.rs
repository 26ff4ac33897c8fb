//! `initramfs_regen`: rebuilds only the initramfs images that do not carry
//! the module files their kernel resolves, and never puts an unchecked
//! image in place. Per kernel the verdict comes from the image itself (the
//! cpio walk of `linux_host::initramfs`): each named module must be in it at
//! the path the kernel resolves, with the same bytes. A stale image is
//! regenerated into a temporary file beside it (dracut, or initramfs-tools'
//! `mkinitramfs`), the new image is read back and checked the same way, and
//! only then renamed over the old one (after an optional `.bak` link).
//! Options are documented in `initramfs_regen.yml`.

use std::path::{Path, PathBuf};
use std::time::Instant;

use ansible_protocol::{Context, Host, Module, Response};
use anyhow::{bail, Context as _, Result};
use linux_host::initramfs::{self, member_for, module_files, relative_module_path};
use linux_host::kmod::{self, ModInfo, Resolution};
use linux_host::{kernel, mounts, Cmd, CommandFailed, DirLock};
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};

/// The module.
pub struct InitramfsRegen;

/// Which tool makes images.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum ToolChoice {
    /// dracut where installed, else initramfs-tools.
    #[default]
    Auto,
    /// dracut.
    Dracut,
    /// initramfs-tools' `mkinitramfs`.
    InitramfsTools,
}

/// Task options (documented in the sidecar).
#[derive(Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Options {
    /// Kernel releases, `running`, or `all`.
    #[serde(default = "default_kernels")]
    pub kernels: Vec<String>,
    /// Modules each image must carry as the kernel resolves them.
    #[serde(default = "default_modules")]
    pub modules: Vec<String>,
    /// The tool.
    #[serde(default)]
    pub tool: ToolChoice,
    /// Rebuild even current images.
    #[serde(default)]
    pub force: bool,
    /// Keep the previous image as `<image>.bak`.
    #[serde(default)]
    pub backup: bool,
}

fn default_kernels() -> Vec<String> {
    vec!["all".into()]
}

fn default_modules() -> Vec<String> {
    vec!["aacraid".into()]
}

/// The tool chosen for this host.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Tool {
    /// `dracut --force <image> <kver>`.
    Dracut,
    /// `mkinitramfs -o <image> <kver>`.
    InitramfsTools,
}

impl Tool {
    fn program(self) -> &'static str {
        match self {
            Tool::Dracut => "dracut",
            Tool::InitramfsTools => "mkinitramfs",
        }
    }

    fn command(self, output: &Path, kver: &str) -> Cmd {
        match self {
            Tool::Dracut => Cmd::new("dracut").arg("--force").arg(output).arg(kver),
            Tool::InitramfsTools => Cmd::new("mkinitramfs").arg("-o").arg(output).arg(kver),
        }
    }
}

/// A named module as the kernel resolves it (what the image must carry).
#[derive(Clone, Debug)]
struct Wanted {
    name: String,
    relative: String,
    sha256: String,
    version: Option<String>,
}

/// A named module's copy in an image, as shown in results and diffs.
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

/// One kernel's part of the plan.
#[derive(Debug)]
pub struct KernelPlan {
    kernel: String,
    image: PathBuf,
    exists: bool,
    rebuild: bool,
    reason: String,
    before: Vec<Inside>,
    wanted: Vec<Wanted>,
    old_mode: Option<u32>,
}

/// Everything decided before the first change.
pub struct Plan {
    tool: Tool,
    backup: bool,
    modules: Vec<String>,
    kernels: Vec<KernelPlan>,
    warnings: Vec<String>,
    _locks: Vec<DirLock>,
}

impl Module for InitramfsRegen {
    const NAME: &'static str = "initramfs_regen";
    type Options = Options;
    type Plan = Plan;

    fn plan(o: Options, _ctx: &Context, host: &Host) -> Result<Plan> {
        if o.modules.is_empty() {
            bail!("modules must name at least one module");
        }
        for m in &o.modules {
            kmod::validate_name(m)?;
        }
        for k in o.kernels.iter().filter(|k| *k != "all" && *k != "running") {
            kernel::validate_release(k)?;
        }
        let kernels = select_kernels(host, &o.kernels)?;
        let tool = choose_tool(host, o.tool)?;
        // Hold the module trees (kmod_update writes there) and /boot while
        // deciding and rebuilding.
        let mut locks = kernel::lock_trees(host, &kernels)?;
        locks.push(host.lock_dir(Path::new("/boot"))?);
        let mut plans = Vec::new();
        for k in &kernels {
            plans.push(plan_kernel(host, k, &o)?);
        }
        let mut warnings = Vec::new();
        check_space(host, &plans, o.backup, &mut warnings)?;
        Ok(Plan {
            tool,
            backup: o.backup,
            modules: o.modules,
            kernels: plans,
            warnings,
            _locks: locks,
        })
    }

    fn preview(plan: &Plan, _ctx: &Context) -> Response {
        let results = plan
            .kernels
            .iter()
            .map(|k| {
                let after = if k.rebuild {
                    predicted(k)
                } else {
                    k.before.clone()
                };
                kernel_result(k, k.rebuild, &after, None, None)
            })
            .collect();
        report(plan, results, "would rebuild")
    }

    fn apply(plan: Plan, _ctx: &Context, host: &Host) -> Result<Response> {
        let mut results = Vec::new();
        for k in &plan.kernels {
            if !k.rebuild {
                results.push(kernel_result(k, false, &k.before, None, None));
                continue;
            }
            let started = Instant::now();
            let (inside, backup) = rebuild(host, &plan, k).with_context(|| {
                let done: Vec<&str> = results
                    .iter()
                    .filter(|r| r["rebuilt"] == json!(true))
                    .filter_map(|r| r["image"].as_str())
                    .collect();
                if done.is_empty() {
                    "no image was changed".to_string()
                } else {
                    format!(
                        "already replaced by checked new images: {}",
                        done.join(", ")
                    )
                }
            })?;
            let seconds = started.elapsed().as_secs_f64();
            results.push(kernel_result(k, true, &inside, backup, Some(seconds)));
        }
        let mut response = report(&plan, results, "rebuilt");
        response.warnings = plan.warnings.clone();
        Ok(response)
    }
}

fn select_kernels(host: &Host, wanted: &[String]) -> Result<Vec<String>> {
    let installed = kernel::installed(host)?;
    let expanded = wanted.iter().flat_map(|w| match w.as_str() {
        "all" => installed.clone(),
        other => vec![other.to_string()],
    });
    let out = kernel::select(host, expanded, &installed)?;
    if out.is_empty() {
        bail!("no kernel selected: kernels is empty or no kernel is installed");
    }
    Ok(out)
}

fn choose_tool(host: &Host, choice: ToolChoice) -> Result<Tool> {
    let has = |t: Tool| host.find_program(t.program()).is_ok();
    match choice {
        ToolChoice::Dracut if has(Tool::Dracut) => Ok(Tool::Dracut),
        ToolChoice::InitramfsTools if has(Tool::InitramfsTools) => Ok(Tool::InitramfsTools),
        ToolChoice::Auto if has(Tool::Dracut) => Ok(Tool::Dracut),
        ToolChoice::Auto if has(Tool::InitramfsTools) => Ok(Tool::InitramfsTools),
        ToolChoice::Auto => bail!(
            "no initramfs tool is installed: neither dracut nor mkinitramfs (initramfs-tools) was found"
        ),
        other => bail!(
            "tool {} is not installed ({} was not found)",
            json!(other).as_str().unwrap_or_default(),
            match other {
                ToolChoice::Dracut => "dracut",
                _ => "mkinitramfs",
            }
        ),
    }
}

fn plan_kernel(host: &Host, k: &str, o: &Options) -> Result<KernelPlan> {
    let root = kernel::modules_dir(k);
    let mut wanted = Vec::new();
    for name in &o.modules {
        match kmod::resolve(host, k, name)? {
            Resolution::File(path) => {
                let data = host
                    .read(&path)
                    .with_context(|| format!("cannot read {}", path.display()))?;
                wanted.push(Wanted {
                    name: name.clone(),
                    relative: path
                        .strip_prefix(&root)
                        .map(|p| p.display().to_string())
                        .unwrap_or_else(|_| relative_module_path(&path.display().to_string(), k)),
                    sha256: kmod::sha256_hex(&data),
                    version: ModInfo::from_bytes(data).ok().and_then(|i| i.version),
                });
            }
            // Part of the kernel image itself: nothing to carry.
            Resolution::Builtin => {}
            Resolution::NotFound => bail!(
                "kernel {k} has no module {name} (modinfo -k {k} -n {name} finds none): install it first"
            ),
        }
    }
    let (image, exists) = initramfs::image_path(host, k);
    let (before, stale) = if exists {
        let scan = module_files(host, &image, k, &o.modules)?;
        let before: Vec<Inside> = o
            .modules
            .iter()
            .map(|name| match member_for(&scan.files, k, name) {
                Some(m) => Inside {
                    name: name.clone(),
                    path: Some(relative_module_path(&m.path, k)),
                    version: ModInfo::from_bytes(m.data.clone())
                        .ok()
                        .and_then(|i| i.version),
                    sha256: Some(kmod::sha256_hex(&m.data)),
                },
                None => Inside {
                    name: name.clone(),
                    path: None,
                    version: None,
                    sha256: None,
                },
            })
            .collect();
        let stale = wanted.iter().find_map(|w| {
            let inside = before.iter().find(|b| b.name == w.name)?;
            let on_disk = format!(
                "{} ({})",
                w.relative,
                w.version.as_deref().unwrap_or("no version")
            );
            match (&inside.path, &inside.sha256) {
                (None, _) => Some(format!(
                    "the image lacks {}; the kernel resolves {on_disk}",
                    w.name
                )),
                (Some(p), Some(sha)) if *p != w.relative || *sha != w.sha256 => Some(format!(
                    "the image holds {p} ({}), the kernel resolves {on_disk}",
                    inside.version.as_deref().unwrap_or("no version")
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
    })
}

/// New images are about as large as the ones they replace; allow 10% more.
/// Without a previous image, assume the largest image seen, or 64 MiB.
fn check_space(
    host: &Host,
    plans: &[KernelPlan],
    backup: bool,
    warnings: &mut Vec<String>,
) -> Result<()> {
    let rebuilds: Vec<&KernelPlan> = plans.iter().filter(|p| p.rebuild).collect();
    let Some(first) = rebuilds.first() else {
        return Ok(());
    };
    let sizes: Vec<Option<u64>> = rebuilds
        .iter()
        .map(|p| host.file_size(&p.image).ok())
        .collect();
    let fallback = sizes.iter().flatten().max().copied().unwrap_or(64 << 20);
    let estimates: Vec<u64> = sizes
        .iter()
        .map(|s| s.unwrap_or(fallback) / 10 * 11)
        .collect();
    // Each new image exists beside its old one until the rename; with
    // backup the old ones stay.
    let needed = if backup {
        estimates.iter().sum()
    } else {
        estimates.iter().copied().max().unwrap_or(0)
    };
    let dir = first.image.parent().unwrap_or(Path::new("/boot"));
    let available = match mounts::available_bytes(host, dir) {
        Ok(bytes) => bytes,
        Err(e) => {
            warnings.push(format!(
                "cannot tell the free space in {}: {e:#}",
                dir.display()
            ));
            return Ok(());
        }
    };
    if needed > available {
        let mib = |b: u64| format!("{:.1} MiB", b as f64 / 1048576.0);
        let current: Vec<String> = rebuilds
            .iter()
            .zip(&sizes)
            .map(|(p, s)| {
                format!(
                    "{} {}",
                    p.image.display(),
                    s.map(mib).unwrap_or_else(|| "missing".into())
                )
            })
            .collect();
        bail!(
            "not enough room in {}: {} free, rebuilding {} image(s) needs about {} (current images: {}; \
             10% added for growth{}); nothing was changed",
            dir.display(),
            mib(available),
            rebuilds.len(),
            mib(needed),
            current.join(", "),
            if backup {
                ", and the old images are kept as backups"
            } else {
                ""
            }
        );
    }
    Ok(())
}

fn tail(text: &str, lines: usize) -> String {
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

/// Regenerates one image into a temporary file, checks it, swaps it in.
fn rebuild(host: &Host, plan: &Plan, k: &KernelPlan) -> Result<(Vec<Inside>, Option<PathBuf>)> {
    let file_name = k
        .image
        .file_name()
        .map(|f| f.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = k
        .image
        .with_file_name(format!(".{file_name}.initramfs_regen"));
    if host.exists(&tmp) {
        host.remove_file(&tmp)?;
    }
    let cmd = plan.tool.command(&tmp, &k.kernel);
    let out = host.run(&cmd)?;
    if !out.success() {
        let _ = host.remove_file(&tmp);
        let said = tail(format!("{}\n{}", out.stdout, out.stderr).trim(), 20);
        return Err(anyhow::Error::new(CommandFailed {
            cmd: cmd.display(),
            rc: out.rc,
            stdout: out.stdout,
            stderr: out.stderr,
        })
        .context(format!(
            "{} failed for kernel {} (rc {}); {} is untouched; last lines of its output:\n{said}",
            plan.tool.program(),
            k.kernel,
            out.rc,
            k.image.display()
        )));
    }
    let checked = check_new_image(host, plan, k, &tmp);
    let inside = match checked {
        Ok(inside) => inside,
        Err(e) => {
            let _ = host.remove_file(&tmp);
            return Err(e);
        }
    };
    if let Some(mode) = k.old_mode {
        host.set_mode(&tmp, mode)?;
    }
    let mut backup = None;
    if plan.backup && k.exists {
        let mut name = k.image.as_os_str().to_os_string();
        name.push(".bak");
        let bak = PathBuf::from(name);
        if host.exists(&bak) {
            host.remove_file(&bak)?;
        }
        host.hard_link(&k.image, &bak)?;
        backup = Some(bak);
    }
    host.rename_durably(&tmp, &k.image)?;
    Ok((inside, backup))
}

/// The new image must hold every named module at the resolved path with
/// the bytes on disk.
fn check_new_image(host: &Host, plan: &Plan, k: &KernelPlan, tmp: &Path) -> Result<Vec<Inside>> {
    let scan = module_files(host, tmp, &k.kernel, &plan.modules).with_context(|| {
        format!(
            "the new image {} made for kernel {} is unreadable",
            plan.tool.program(),
            k.kernel
        )
    })?;
    let mut inside = Vec::new();
    for name in &plan.modules {
        let member = member_for(&scan.files, &k.kernel, name);
        let found = member.map(|m| {
            (
                relative_module_path(&m.path, &k.kernel),
                kmod::sha256_hex(&m.data),
                ModInfo::from_bytes(m.data.clone())
                    .ok()
                    .and_then(|i| i.version),
            )
        });
        if let Some(w) = k.wanted.iter().find(|w| w.name == *name) {
            let good = found
                .as_ref()
                .is_some_and(|(p, sha, _)| *p == w.relative && *sha == w.sha256);
            if !good {
                let held = match &found {
                    Some((p, _, v)) => {
                        format!("it holds {p} ({})", v.as_deref().unwrap_or("no version"))
                    }
                    None => format!("it holds no {name} module"),
                };
                bail!(
                    "the new image {} made for kernel {} lacks {} ({}) with the bytes on disk: {held}; \
                     {} is untouched",
                    plan.tool.program(),
                    k.kernel,
                    w.relative,
                    w.version.as_deref().unwrap_or("no version"),
                    k.image.display()
                );
            }
        }
        inside.push(Inside {
            name: name.clone(),
            path: found.as_ref().map(|f| f.0.clone()),
            version: found.as_ref().and_then(|f| f.2.clone()),
            sha256: found.map(|f| f.1),
        });
    }
    Ok(inside)
}

/// What a rebuilt image will hold: each module as the kernel resolves it.
fn predicted(k: &KernelPlan) -> Vec<Inside> {
    k.wanted
        .iter()
        .map(|w| Inside {
            name: w.name.clone(),
            path: Some(w.relative.clone()),
            version: w.version.clone(),
            sha256: Some(w.sha256.clone()),
        })
        .collect()
}

fn kernel_result(
    k: &KernelPlan,
    rebuilt: bool,
    inside: &[Inside],
    backup: Option<PathBuf>,
    seconds: Option<f64>,
) -> Value {
    json!({
        "kernel": k.kernel,
        "image": k.image,
        "rebuilt": rebuilt,
        "reason": k.reason,
        "modules": inside,
        "before": k.before,
        "backup_file": backup,
        "seconds": seconds.map(|s| (s * 100.0).round() / 100.0),
    })
}

fn report(plan: &Plan, kernels: Vec<Value>, verb: &str) -> Response {
    let changed = plan.kernels.iter().any(|k| k.rebuild);
    let side = |key: &str| -> String {
        let map: Map<String, Value> = kernels
            .iter()
            .map(|r| {
                let modules: Map<String, Value> = r[key]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .map(|m| {
                        (
                            m["name"].as_str().unwrap_or_default().to_string(),
                            json!({"path": m["path"], "version": m["version"]}),
                        )
                    })
                    .collect();
                (
                    r["image"].as_str().unwrap_or_default().to_string(),
                    Value::Object(modules),
                )
            })
            .collect();
        serde_json::to_string_pretty(&map).unwrap_or_default() + "\n"
    };
    let rebuilt: Vec<String> = plan
        .kernels
        .iter()
        .filter(|k| k.rebuild)
        .map(|k| k.image.display().to_string())
        .collect();
    let diff = json!({
        "before_header": "modules inside each image",
        "after_header": "modules inside each image",
        "before": side("before"),
        "after": side("modules"),
    });
    let mut values = Map::new();
    values.insert("tool".into(), json!(plan.tool));
    values.insert("modules".into(), json!(plan.modules));
    values.insert("kernels".into(), Value::Array(kernels));
    Response {
        changed,
        msg: Some(if rebuilt.is_empty() {
            "every image is current".into()
        } else {
            format!(
                "{verb} with {}: {}",
                plan.tool.program(),
                rebuilt.join(", ")
            )
        }),
        diff: Some(diff),
        warnings: plan.warnings.clone(),
        values,
        ..Response::default()
    }
}

#[cfg(test)]
mod tests;
