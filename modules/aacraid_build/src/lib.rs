//! `aacraid_build`: the build host's half of the procedure. Puts the
//! vendor's DKMS source in `/usr/src/<name>-<version>`, runs `dkms add`,
//! `build` and `install` for exactly the kernels asked for (nothing that is
//! already done), and writes one artifact per kernel for `kmod_update`
//! (format in [`artifact`]). Options are documented in `aacraid_build.yml`.

pub mod artifact;
mod source;

use std::path::{Path, PathBuf};

use ansible_protocol::{Context, Host, Module, Response};
use anyhow::{bail, Context as _, Result};
use linux_host::{dkms, kernel, kmod, Cmd, CommandFailed};
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};

use source::{Install, Source};

/// The module.
pub struct AacraidBuild;

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

/// Task options (documented in the sidecar).
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
    /// Kernel releases, `running`, or `all`.
    #[serde(default = "default_kernels")]
    pub kernels: Vec<String>,
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
}

fn default_kernels() -> Vec<String> {
    vec!["running".into()]
}

/// One kernel's part of the plan.
#[derive(Debug, Serialize)]
pub struct KernelPlan {
    kernel: String,
    before: String,
    after: String,
    build: bool,
    install: bool,
    remove: bool,
    artifact: Option<artifact::Planned>,
}

/// Everything decided before the first change.
pub struct Plan {
    name: String,
    version: String,
    modules: Vec<String>,
    install_source: Option<Install>,
    source_described: Option<String>,
    add: bool,
    remove_all: bool,
    kernels: Vec<KernelPlan>,
    artifacts_dir: Option<PathBuf>,
    mkrpm: bool,
    force: bool,
    state: State,
}

impl Plan {
    fn build<'a>(&'a self, kernel: &'a str) -> artifact::Build<'a> {
        artifact::Build {
            name: &self.name,
            version: &self.version,
            kernel,
            modules: &self.modules,
        }
    }

    fn changed(&self) -> bool {
        self.install_source.is_some()
            || self.add
            || self.remove_all
            || self.mkrpm
            || self.kernels.iter().any(|k| {
                k.build || k.install || k.remove || k.artifact.as_ref().is_some_and(|a| a.write)
            })
    }
}

impl Module for AacraidBuild {
    const NAME: &'static str = "aacraid_build";
    type Options = Options;
    type Plan = Plan;

    fn plan(options: Options, _ctx: &Context, host: &Host) -> Result<Plan> {
        if !options.remote_src || options.fetch_dir.is_some() {
            bail!("{}", ansible_protocol::NEEDS_ACTION_PLUGIN);
        }
        for k in &options.kernels {
            if k != "running" && k != "all" {
                kernel::validate_release(k)?;
            }
        }
        host.find_program("dkms").map_err(|e| {
            anyhow::anyhow!("dkms is not installed on this host ({e}): install the dkms package")
        })?;
        // An rpm-based distribution: its own shell belongs to an rpm package.
        // (Debian may have the rpm tool, but its database owns nothing.)
        let rpm_db = host
            .run(&Cmd::new("rpm").arg("-qf").arg("/bin/sh"))
            .is_ok_and(|out| out.success());
        let source: Option<Source> = match (&options.src, options.state) {
            (Some(src), _) => Some(source::read(host, Path::new(src), rpm_db)?),
            (None, State::Absent) => None,
            (None, _) => bail!("src is required unless state is absent"),
        };
        let name = agree(
            &options.name,
            source.as_ref().map(|s| (&s.name, &s.described)),
            "name",
            "PACKAGE_NAME",
        )?;
        let version = agree(
            &options.version,
            source.as_ref().map(|s| (&s.version, &s.described)),
            "version",
            "PACKAGE_VERSION",
        )?;
        kmod::validate_name(&name)?;
        let modules = source
            .as_ref()
            .map(|s| s.modules.clone())
            .unwrap_or_else(|| vec![name.clone()]);

        let status = dkms_status(host, &name, &version)?;
        let added = status.iter().any(|e| e.version == version);
        let kernels = select_kernels(host, &options.kernels, options.state)?;
        let artifacts_dir = options.artifacts_dir.as_ref().map(PathBuf::from);
        if let Some(dir) = &artifacts_dir {
            if !dir.is_absolute() {
                bail!(
                    "artifacts_dir must be an absolute path, got {}",
                    dir.display()
                );
            }
        }
        let mut plans = Vec::new();
        for k in &kernels {
            let before = state_of(&status, &version, k);
            let (build, install, remove) = match options.state {
                State::Absent => (false, false, before != "absent" && before != "added"),
                State::Built => (
                    !matches!(before.as_str(), "built" | "installed"),
                    false,
                    false,
                ),
                State::Installed => (
                    !matches!(before.as_str(), "built" | "installed"),
                    before != "installed",
                    false,
                ),
            };
            let after = match options.state {
                State::Absent => {
                    if before == "absent" {
                        "absent"
                    } else {
                        "added"
                    }
                }
                State::Built if before == "installed" => "installed",
                State::Built => "built",
                State::Installed => "installed",
            }
            .to_string();
            let artifact = match (&artifacts_dir, options.state) {
                (Some(dir), State::Built | State::Installed) => Some(
                    artifact::Build {
                        name: &name,
                        version: &version,
                        kernel: k,
                        modules: &modules,
                    }
                    .plan(host, dir, build)?,
                ),
                _ => None,
            };
            plans.push(KernelPlan {
                kernel: k.clone(),
                before,
                after,
                build,
                install,
                remove,
                artifact,
            });
        }
        // `dkms remove --all` covers every kernel at once.
        let remove_all = options.state == State::Absent && options.kernels.is_empty() && added;
        if remove_all {
            plans.iter_mut().for_each(|p| p.remove = false);
        }
        let (install_source, source_described) = match source {
            Some(s) => {
                let install = match s.install {
                    Install::Present => None,
                    _ if options.state == State::Absent => None,
                    other => Some(other),
                };
                (install, Some(s.described))
            }
            None => (None, None),
        };
        Ok(Plan {
            add: options.state != State::Absent && !added,
            name,
            version,
            modules,
            install_source,
            source_described,
            remove_all,
            kernels: plans,
            artifacts_dir,
            mkrpm: options.mkrpm && options.state != State::Absent,
            force: options.force,
            state: options.state,
        })
    }

    fn preview(plan: &Plan, _ctx: &Context) -> Response {
        report(
            plan,
            plan.kernels.iter().map(|k| json!(k)).collect(),
            plan.changed(),
        )
    }

    fn apply(plan: Plan, _ctx: &Context, host: &Host) -> Result<Response> {
        let changed = plan.changed();
        let src_dir = source::src_dir(&plan.name, &plan.version);
        if let Some(install) = &plan.install_source {
            put_source(host, install, &src_dir)?;
        }
        let base = |action: &str| {
            Cmd::new("dkms")
                .arg(action)
                .arg("-m")
                .arg(&plan.name)
                .arg("-v")
                .arg(&plan.version)
        };
        if plan.add {
            let out = host.run(&base("add"))?;
            // Exit 3: the tree already holds this version (not an error).
            if !out.success() && out.rc != 3 {
                return Err(CommandFailed {
                    cmd: base("add").display(),
                    rc: out.rc,
                    stdout: out.stdout,
                    stderr: out.stderr,
                }
                .into());
            }
        }
        let mut results = Vec::new();
        for k in &plan.kernels {
            if k.build {
                build(
                    host,
                    base("build").arg("-k").arg(&k.kernel),
                    &plan,
                    &k.kernel,
                )?;
            }
            if k.install {
                let mut cmd = base("install").arg("-k").arg(&k.kernel);
                if plan.force {
                    cmd = cmd.arg("--force");
                }
                host.run_ok(&cmd).with_context(|| {
                    format!(
                        "dkms could not install {} {} for kernel {}",
                        plan.name, plan.version, k.kernel
                    )
                })?;
                verify_installed(host, &plan, &k.kernel)?;
            }
            if k.remove {
                host.run_ok(&base("remove").arg("-k").arg(&k.kernel))?;
            }
            let mut result = json!(k);
            if let (Some(dir), Some(_)) = (&plan.artifacts_dir, &k.artifact) {
                let written = plan.build(&k.kernel).write(host, dir)?;
                result["artifact"] = json!(written);
            }
            if plan.state != State::Absent {
                result["module"] = module_facts(host, &plan.name, &k.kernel);
            }
            results.push(result);
        }
        if plan.remove_all {
            host.run_ok(&base("remove").arg("--all"))?;
        }
        if plan.mkrpm {
            let out = host.run_ok(&base("mkrpm"))?;
            let said = format!("{}{}", out.stdout, out.stderr);
            if said.contains("Unknown action") {
                bail!(
                    "this dkms has no mkrpm (removed in dkms 3.0; it printed {:?}): use artifacts_dir to get one \
                     archive per kernel for kmod_update instead",
                    said.trim()
                );
            }
        }
        Ok(report(&plan, results, changed))
    }
}

/// An option that, when given, must agree with what `dkms.conf` says.
fn agree(
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

fn report(plan: &Plan, kernels: Vec<Value>, changed: bool) -> Response {
    let mut values = Map::new();
    values.insert("name".into(), json!(plan.name));
    values.insert("version".into(), json!(plan.version));
    values.insert("source".into(), json!(plan.source_described));
    values.insert(
        "source_installed".into(),
        json!(plan.install_source.is_some()),
    );
    values.insert("added".into(), json!(plan.add));
    values.insert("kernels".into(), Value::Array(kernels));
    let before: Map<String, Value> = plan
        .kernels
        .iter()
        .map(|k| (k.kernel.clone(), json!(k.before)))
        .collect();
    let after: Map<String, Value> = plan
        .kernels
        .iter()
        .map(|k| (k.kernel.clone(), json!(k.after)))
        .collect();
    Response {
        changed,
        diff: Some(json!({
            "before_header": format!("dkms {}/{}", plan.name, plan.version),
            "after_header": format!("dkms {}/{}", plan.name, plan.version),
            "before": serde_json::to_string_pretty(&before).unwrap_or_default() + "\n",
            "after": serde_json::to_string_pretty(&after).unwrap_or_default() + "\n",
        })),
        values,
        ..Response::default()
    }
}

fn dkms_status(host: &Host, name: &str, version: &str) -> Result<Vec<dkms::Entry>> {
    let out = host.run_ok(
        &Cmd::new("dkms")
            .arg("status")
            .arg("-m")
            .arg(name)
            .arg("-v")
            .arg(version),
    )?;
    Ok(dkms::parse_status(&out.stdout)
        .entries
        .into_iter()
        .filter(|e| e.module == name && e.version == version)
        .collect())
}

/// `absent`, `added`, `built`, `installed` (installed-weak counts as
/// installed), or whatever else dkms said. An install DKMS itself flags as
/// differing from the build (it skipped the copy) counts as `built`.
fn state_of(status: &[dkms::Entry], version: &str, kernel: &str) -> String {
    if let Some(e) = status.iter().find(|e| e.kernel.as_deref() == Some(kernel)) {
        return match e.state.as_str() {
            "installed" if e.built_differs_from_installed => "built".into(),
            "installed-weak" => "installed".into(),
            other => other.into(),
        };
    }
    if status.iter().any(|e| e.version == version) {
        "added".into()
    } else {
        "absent".into()
    }
}

fn select_kernels(host: &Host, wanted: &[String], state: State) -> Result<Vec<String>> {
    let installed = kernel::installed(host)?;
    let mut out: Vec<String> = Vec::new();
    for w in wanted {
        let list = match w.as_str() {
            "running" => vec![kernel::running(host)?],
            "all" => installed
                .iter()
                .filter(|k| host.is_dir(&kernel::modules_dir(k).join("build")))
                .cloned()
                .collect(),
            k => vec![k.to_string()],
        };
        for k in list {
            if !out.contains(&k) {
                out.push(k);
            }
        }
    }
    if state == State::Absent {
        return Ok(out);
    }
    let redhat = host.exists(Path::new("/etc/redhat-release"));
    for k in &out {
        if !installed.contains(k) {
            bail!("kernel {k} is not installed (no /lib/modules/{k})");
        }
        if !host.is_dir(&kernel::modules_dir(k).join("build")) {
            let package = if redhat {
                format!("kernel-devel-{k}")
            } else {
                format!("linux-headers-{k}")
            };
            bail!(
                "kernel {k} has no headers (/lib/modules/{k}/build is missing): install {package}"
            );
        }
    }
    if out.is_empty() {
        bail!("no kernel to build for: no installed kernel has headers");
    }
    Ok(out)
}

fn put_source(host: &Host, install: &Install, dir: &Path) -> Result<()> {
    match install {
        Install::Present => Ok(()),
        Install::Files(files) => {
            for f in files {
                let path = dir.join(&f.path);
                if let Some(parent) = path.parent() {
                    host.create_dir_all(parent)?;
                }
                host.write_atomic(&path, &f.data, f.mode)?;
            }
            Ok(())
        }
        Install::Rpm { bytes, file_name } => {
            let tmp = std::env::temp_dir()
                .join(format!("aacraid_build-{}-{file_name}", std::process::id()));
            host.write_atomic(&tmp, bytes, 0o600)?;
            let result = host.run_ok(&Cmd::new("rpm").arg("-i").arg(&tmp));
            // The package is installed or rpm said why not; the copy is no longer needed.
            let _ = host.remove_file(&tmp);
            result
                .map(|_| ())
                .with_context(|| format!("cannot install {file_name} with rpm"))
        }
    }
}

fn build(host: &Host, cmd: Cmd, plan: &Plan, kernel: &str) -> Result<()> {
    let out = host.run(&cmd)?;
    if out.success() {
        return Ok(());
    }
    let said = format!("{}\n{}", out.stdout, out.stderr);
    let logs = [
        said.split_whitespace()
            .skip_while(|w| *w != "Consult")
            .nth(1)
            .map(PathBuf::from),
        Some(PathBuf::from(format!(
            "/var/lib/dkms/{}/{}/{kernel}/{}/log/make.log",
            plan.name,
            plan.version,
            std::env::consts::ARCH
        ))),
        Some(PathBuf::from(format!(
            "/var/lib/dkms/{}/{}/build/make.log",
            plan.name, plan.version
        ))),
    ];
    let tail = logs
        .iter()
        .flatten()
        .find_map(|p| host.read_text(p).ok().map(|t| (p.clone(), t)))
        .map(|(p, text)| {
            let lines: Vec<&str> = text.lines().collect();
            let start = lines.len().saturating_sub(40);
            format!(
                "last lines of {}:\n{}",
                p.display(),
                lines[start..].join("\n")
            )
        })
        .unwrap_or_else(|| format!("no make.log found; dkms said:\n{}", said.trim()));
    Err(anyhow::Error::new(CommandFailed {
        cmd: cmd.display(),
        rc: out.rc,
        stdout: out.stdout,
        stderr: out.stderr,
    })
    .context(format!(
        "dkms build of {} {} failed for kernel {kernel} (rc {}); {tail}",
        plan.name, plan.version, out.rc
    )))
}

/// DKMS 3.0.10 skips installing a module it deems not newer than the
/// kernel's own, yet exits 0 and calls it installed: check that the kernel
/// now resolves each module to the bytes DKMS built.
fn verify_installed(host: &Host, plan: &Plan, kernel: &str) -> Result<()> {
    let built = plan.build(kernel).built(host)?;
    for b in built {
        let resolved = kmod::resolve_with_modinfo(host, kernel, &b.module)?;
        let kmod::Resolution::File(path) = &resolved else {
            bail!(
                "after dkms install, kernel {kernel} resolves {} to {resolved:?}",
                b.module
            );
        };
        let on_disk = host
            .read(path)
            .map(|d| kmod::sha256_hex(&d))
            .unwrap_or_default();
        if on_disk != kmod::sha256_hex(&b.data) {
            let theirs = kmod::ModuleFile::read(host, kernel, path);
            bail!(
                "dkms install of {} {} for kernel {kernel} left {} in place (version {}), not the module it built \
                 (version {}): dkms skips a module it does not consider newer than the kernel's own; set force: true \
                 to install it anyway",
                plan.name,
                plan.version,
                path.display(),
                theirs.info.version.unwrap_or_default(),
                b.info.version.unwrap_or_default()
            );
        }
    }
    Ok(())
}

/// What the kernel now resolves for the module, after the run.
fn module_facts(host: &Host, name: &str, kernel: &str) -> Value {
    match kmod::resolve_with_modinfo(host, kernel, name) {
        Ok(kmod::Resolution::File(path)) => {
            let file = kmod::ModuleFile::read(host, kernel, &path);
            json!({
                "resolved": path,
                "tree": file.tree,
                "version": file.info.version,
                "srcversion": file.info.srcversion,
                "vermagic": file.info.vermagic,
                "sha256": file.sha256,
            })
        }
        Ok(other) => json!({ "resolved": format!("{other:?}") }),
        Err(e) => json!({ "error": format!("{e:#}") }),
    }
}

#[cfg(test)]
mod tests;
