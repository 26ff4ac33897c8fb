//! `kmod_update`: the server's half of the procedure. Installs one kernel
//! module (a `.ko` file or an `aacraid_build` artifact already on the host)
//! into `/lib/modules/<kver>/<dest>/` for the kernels asked for, runs
//! `depmod -a <kver>` only where something changed, and proves that the
//! kernel now resolves the module to that file. `state: absent` removes
//! what it installed and puts back what it replaced (see [`record`]).
//!
//! Everything is checked before the first write; once writing starts, any
//! failure (including a resolution check that another file wins) undoes
//! every change of the run and reruns `depmod`, so the host ends as it was.
//! Options are documented in `kmod_update.yml`.

mod record;
mod source;
mod undo;

use std::path::{Path, PathBuf};

use ansible_protocol::{Context, Host, Module, Response};
use anyhow::{bail, Context as _, Result};
use linux_host::kmod::{self, ModInfo, Resolution};
use linux_host::{depmod, kernel, mounts, Cmd, DirLock};
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};

use record::{Record, Replaced};
use source::Source;
use undo::Undo;

/// The module.
pub struct KmodUpdate;

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

/// Task options (documented in the sidecar).
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
    pub kernels: Vec<String>,
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

/// What the run does for one kernel.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    /// Nothing: the kernel is as asked.
    None,
    /// Write the module where there was none.
    Install,
    /// Write the module over a different file.
    Replace,
    /// Only rerun depmod: the file is in place but not resolved.
    Depmod,
    /// Remove the installed module.
    Remove,
    /// Remove the installed module and put the replaced file back.
    Restore,
}

/// The module file a kernel resolves, as shown in results and diffs.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Resolved {
    /// The file, `(builtin)` or `(none)`.
    pub path: String,
    /// Its `MODULE_VERSION`.
    pub version: Option<String>,
    /// Its source checksum.
    pub srcversion: Option<String>,
    #[serde(skip)]
    file: Option<PathBuf>,
    #[serde(skip)]
    sha256: Option<String>,
}

/// A file that is at the destination now.
#[derive(Debug)]
struct Existing {
    data: Vec<u8>,
    sha256: String,
    mode: u32,
}

/// One kernel's part of the plan.
#[derive(Debug)]
pub struct KernelPlan {
    kernel: String,
    action: Action,
    reason: String,
    path: Option<PathBuf>,
    existing: Option<Existing>,
    record: Option<Record>,
    restore: Option<Vec<u8>>,
    new_dirs: Vec<PathBuf>,
    before: Resolved,
    after: Resolved,
}

/// Everything decided before the first change.
pub struct Plan {
    name: String,
    state: State,
    source: Option<Source>,
    backup: bool,
    kernels: Vec<KernelPlan>,
    warnings: Vec<String>,
    _locks: Vec<DirLock>,
}

impl Plan {
    fn changed(&self) -> bool {
        self.kernels.iter().any(|k| k.action != Action::None)
    }
}

impl Module for KmodUpdate {
    const NAME: &'static str = "kmod_update";
    type Options = Options;
    type Plan = Plan;

    fn plan(o: Options, _ctx: &Context, host: &Host) -> Result<Plan> {
        if !o.remote_src {
            bail!("{}", ansible_protocol::NEEDS_ACTION_PLUGIN);
        }
        kmod::validate_name(&o.name)?;
        let dest = validate_dest(&o.dest)?;
        for k in o.kernels.iter().filter(|k| *k != "running") {
            kernel::validate_release(k)?;
        }
        let source = match o.state {
            State::Present => {
                let src = o
                    .src
                    .as_deref()
                    .context("src is required when state is present")?;
                Some(source::read(host, Path::new(src), &o.name)?)
            }
            State::Absent => None,
        };
        if let (Some(s), Some(wanted)) = (&source, &o.expected_version) {
            if s.info.version.as_deref() != Some(wanted.as_str()) {
                bail!(
                    "{} has version {:?}, but expected_version is {wanted:?}",
                    s.described,
                    s.info.version.as_deref().unwrap_or("(none)")
                );
            }
        }
        let kernels = select_kernels(host, &o, source.as_ref())?;
        // Two runs on one host must not interleave: each holds its kernels'
        // module folders from planning to the end of the run.
        let locks = kernel::lock_trees(host, &kernels)?;
        // Only a removal predicts which copy wins afterwards.
        let config = match source {
            None => depmod::Config::read(host),
            Some(_) => depmod::Config::default(),
        };
        let mut warnings = Vec::new();
        let mut plans = Vec::new();
        for k in &kernels {
            let before = resolve(host, k, &o.name)?;
            let record = record::read(host, k, &o.name)?;
            plans.push(match &source {
                Some(s) => plan_install(host, k, &o, &dest, s, record, before, &mut warnings)?,
                None => plan_remove(host, k, &o, record, before, &config, &mut warnings)?,
            });
        }
        for p in plans.iter().filter(|p| p.action != Action::None) {
            let dirs = [
                p.path.as_deref().and_then(Path::parent),
                Some(Path::new(record::STATE_DIR)),
            ];
            for dir in dirs.into_iter().flatten() {
                if let Some(mount) = mounts::read_only_mount(host, dir) {
                    bail!(
                        "cannot change kernel {}: {} is on the read-only file system mounted at {}",
                        p.kernel,
                        dir.display(),
                        mount.display()
                    );
                }
            }
        }
        if plans.iter().any(|p| p.action != Action::None) {
            host.find_program("depmod").map_err(|e| {
                anyhow::anyhow!("depmod is not installed ({e}): install the kmod package")
            })?;
        }
        Ok(Plan {
            name: o.name,
            state: o.state,
            source,
            backup: o.backup,
            kernels: plans,
            warnings,
            _locks: locks,
        })
    }

    fn preview(plan: &Plan, _ctx: &Context) -> Response {
        let kernels = plan
            .kernels
            .iter()
            .map(|k| kernel_result(plan, k, &k.after, None))
            .collect();
        report(
            plan,
            kernels,
            plan.kernels.iter().map(|k| &k.after).collect(),
        )
    }

    fn apply(plan: Plan, _ctx: &Context, host: &Host) -> Result<Response> {
        let mut undo = Undo::default();
        let mut warnings = Vec::new();
        let done = carry_out(host, &plan, &mut undo, &mut warnings);
        match done {
            Ok((results, after)) => {
                let mut response = report(&plan, results, after.iter().collect());
                response.warnings.extend(warnings);
                Ok(response)
            }
            Err(e) => {
                let touched: Vec<&str> = plan
                    .kernels
                    .iter()
                    .filter(|k| k.action != Action::None)
                    .map(|k| k.kernel.as_str())
                    .collect();
                let undone = undo
                    .roll_back(host)
                    .and_then(|()| touched.iter().try_for_each(|k| depmod(host, k).map(|_| ())));
                Err(match undone {
                    Ok(()) => e.context(
                        "every change of this run was undone and depmod rerun: the host is as it was",
                    ),
                    Err(u) => e.context(format!("undoing this run's changes failed too: {u:#}")),
                })
            }
        }
    }
}

/// A relative folder below the kernel's module tree, outside its own
/// `kernel/` tree (which package updates overwrite).
fn validate_dest(dest: &str) -> Result<PathBuf> {
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

fn select_kernels(host: &Host, o: &Options, source: Option<&Source>) -> Result<Vec<String>> {
    let installed = kernel::installed(host)?;
    let wanted: Vec<String> = match (o.kernels.is_empty(), source) {
        (false, _) => o.kernels.clone(),
        (true, Some(s)) => vec![s
            .kernel
            .clone()
            .or_else(|| s.info.vermagic_release().map(str::to_string))
            .with_context(|| format!("{} names no kernel: set kernels", s.described))?],
        (true, None) => {
            let recorded = record::kernels_with_record(host, &o.name);
            installed
                .iter()
                .filter(|k| recorded.contains(k))
                .cloned()
                .collect()
        }
    };
    kernel::select(host, wanted, &installed)
}

/// What `kver` resolves `name` to now (`modinfo -k`, or `modules.dep`
/// when kmod's modinfo is missing).
fn resolve(host: &Host, kver: &str, name: &str) -> Result<Resolved> {
    Ok(match kmod::resolve(host, kver, name)? {
        Resolution::File(path) => {
            let file = kmod::ModuleFile::read(host, kver, &path);
            Resolved {
                path: path.display().to_string(),
                version: file.info.version,
                srcversion: file.info.srcversion,
                file: Some(path),
                sha256: file.sha256,
            }
        }
        Resolution::Builtin => Resolved {
            path: "(builtin)".into(),
            ..Resolved::default()
        },
        Resolution::NotFound => Resolved {
            path: "(none)".into(),
            ..Resolved::default()
        },
    })
}

fn same_file(host: &Host, a: &Path, b: &Path) -> bool {
    a == b || matches!((host.canonicalize(a), host.canonicalize(b)), (Ok(x), Ok(y)) if x == y)
}

fn resolved_of(path: &Path, info: &ModInfo, sha256: &str) -> Resolved {
    Resolved {
        path: path.display().to_string(),
        version: info.version.clone(),
        srcversion: info.srcversion.clone(),
        file: Some(path.to_path_buf()),
        sha256: Some(sha256.to_string()),
    }
}

fn read_existing(host: &Host, path: &Path) -> Result<Option<Existing>> {
    if !host.exists(path) {
        return Ok(None);
    }
    if host.read_link(path).is_ok() {
        bail!(
            "{} is a symbolic link: refusing to replace it",
            path.display()
        );
    }
    let data = host
        .read(path)
        .with_context(|| format!("cannot read {}", path.display()))?;
    let mode = host.mode(path)?;
    Ok(Some(Existing {
        sha256: kmod::sha256_hex(&data),
        data,
        mode,
    }))
}

/// Folders from the top down that must be created for `dir` to exist.
fn missing_dirs(host: &Host, dir: &Path) -> Vec<PathBuf> {
    let mut missing: Vec<PathBuf> = dir
        .ancestors()
        .take_while(|d| !host.exists(d))
        .map(Path::to_path_buf)
        .collect();
    missing.reverse();
    missing
}

#[allow(clippy::too_many_arguments)]
fn plan_install(
    host: &Host,
    k: &str,
    o: &Options,
    dest: &Path,
    s: &Source,
    record: Option<Record>,
    before: Resolved,
    warnings: &mut Vec<String>,
) -> Result<KernelPlan> {
    check_vermagic(host, k, s, &before, o.force, warnings)?;
    let dir = kernel::modules_dir(k).join(dest);
    let target = dir.join(format!("{}{}", o.name, s.extension));
    for ext in source::EXTENSIONS.iter().filter(|e| **e != s.extension) {
        let sibling = dir.join(format!("{}{ext}", o.name));
        if host.exists(&sibling) {
            bail!(
                "{} already exists beside {}: depmod would take either of them; remove it first",
                sibling.display(),
                target.display()
            );
        }
    }
    if let Some(r) = &record {
        if r.path != target {
            bail!(
                "kmod_update installed {} for kernel {k} at {}; run it with state: absent first to install it at {}",
                o.name,
                r.path.display(),
                target.display()
            );
        }
    }
    let existing = read_existing(host, &target)?;
    let resolved_here = before
        .file
        .as_deref()
        .is_some_and(|f| same_file(host, f, &target));
    let (action, reason) = match &existing {
        None => (Action::Install, "not installed".to_string()),
        Some(e) if e.sha256 == s.sha256 => {
            let owner = host.owner(&target)?;
            if e.mode != 0o644 || owner != (0, 0) {
                (
                    Action::Replace,
                    format!(
                        "same content, but mode {:o} and owner {}:{} instead of 644 and 0:0",
                        e.mode, owner.0, owner.1
                    ),
                )
            } else if resolved_here {
                (Action::None, "installed and resolved".to_string())
            } else {
                (
                    Action::Depmod,
                    format!(
                        "installed, but the kernel resolves {} (modules.dep is stale)",
                        before.path
                    ),
                )
            }
        }
        Some(_) => (
            Action::Replace,
            "a different file is at the destination".to_string(),
        ),
    };
    Ok(KernelPlan {
        kernel: k.to_string(),
        action,
        reason,
        new_dirs: missing_dirs(host, &dir),
        after: resolved_of(&target, &s.info, &s.sha256),
        path: Some(target),
        existing,
        record,
        restore: None,
        before,
    })
}

fn plan_remove(
    host: &Host,
    k: &str,
    o: &Options,
    record: Option<Record>,
    before: Resolved,
    config: &depmod::Config,
    warnings: &mut Vec<String>,
) -> Result<KernelPlan> {
    let Some(r) = record else {
        return Ok(KernelPlan {
            kernel: k.to_string(),
            action: Action::None,
            reason: "not installed by kmod_update".into(),
            path: None,
            existing: None,
            record: None,
            restore: None,
            new_dirs: Vec::new(),
            after: before.clone(),
            before,
        });
    };
    let existing = read_existing(host, &r.path)?;
    if let Some(e) = existing.as_ref().filter(|e| e.sha256 != r.sha256) {
        let what = format!(
            "{} changed since kmod_update installed it (sha256 {} instead of {})",
            r.path.display(),
            e.sha256,
            r.sha256
        );
        if !o.force {
            bail!("{what}; remove it by hand, or set force: true to remove it anyway");
        }
        warnings.push(format!("{what}; removed anyway because force is set"));
    }
    let restore = match &r.replaced {
        Some(replaced) => {
            let saved = record::saved_path(k, &o.name);
            let data = host.read(&saved).with_context(|| {
                format!(
                    "cannot read {}, the file kmod_update replaced",
                    saved.display()
                )
            })?;
            if kmod::sha256_hex(&data) != replaced.sha256 {
                bail!(
                    "{} does not hold the file kmod_update replaced (checksum differs); nothing was changed",
                    saved.display()
                );
            }
            Some(data)
        }
        None => None,
    };
    let after = match &restore {
        Some(data) => {
            let info = ModInfo::from_bytes(data.clone()).unwrap_or_default();
            resolved_of(&r.path, &info, &kmod::sha256_hex(data))
        }
        None => next_copy(host, k, &o.name, &r.path, config)?,
    };
    let (action, reason) = match (&restore, &existing) {
        (Some(_), _) => (
            Action::Restore,
            "installed by kmod_update over another file",
        ),
        (None, Some(_)) => (Action::Remove, "installed by kmod_update"),
        (None, None) => (
            Action::Remove,
            "the file kmod_update installed is already gone; its record is dropped",
        ),
    };
    Ok(KernelPlan {
        kernel: k.to_string(),
        action,
        reason: reason.into(),
        path: Some(r.path.clone()),
        existing,
        record: Some(r),
        restore,
        new_dirs: Vec::new(),
        before,
        after,
    })
}

/// Which copy depmod is expected to pick once `removed` is gone: the one
/// with the best search rank (the check-mode prediction; a real run reports
/// what modinfo says).
fn next_copy(
    host: &Host,
    k: &str,
    name: &str,
    removed: &Path,
    config: &depmod::Config,
) -> Result<Resolved> {
    let root = kernel::modules_dir(k);
    let best = kmod::find_copies(host, k, name)?
        .into_iter()
        .filter(|p| p != removed)
        .min_by_key(|p| config.rank(p.strip_prefix(&root).unwrap_or(p)));
    Ok(match best {
        Some(path) => {
            let file = kmod::ModuleFile::read(host, k, &path);
            resolved_of(&path, &file.info, &file.sha256.unwrap_or_default())
        }
        None => Resolved {
            path: "(none)".into(),
            ..Resolved::default()
        },
    })
}

/// A module whose vermagic differs from the kernel's own modules would be
/// refused at load time: refuse it now, unless forced.
fn check_vermagic(
    host: &Host,
    k: &str,
    s: &Source,
    before: &Resolved,
    force: bool,
    warnings: &mut Vec<String>,
) -> Result<()> {
    let words = |v: &str| v.split_whitespace().collect::<Vec<_>>().join(" ");
    let theirs = words(s.info.vermagic.as_deref().unwrap_or(""));
    let problem = match reference_vermagic(host, k, before) {
        Some((reference, from)) if words(&reference) != theirs => Some(format!(
            "{} was built for `{theirs}`, but kernel {k}'s own modules have vermagic `{}` ({}): \
             the kernel would refuse to load it",
            s.described,
            words(&reference),
            from.display()
        )),
        Some(_) => None,
        None if s.info.vermagic_release() != Some(k) => Some(format!(
            "{} was built for `{theirs}`, not for kernel {k}",
            s.described
        )),
        None => None,
    };
    match problem {
        Some(p) if force => {
            warnings.push(format!("{p}; installed anyway because force is set"));
            Ok(())
        }
        Some(p) => bail!("{p}; set force: true to install it anyway"),
        None => Ok(()),
    }
}

/// The vermagic of one of the kernel's own modules: its in-tree copy of
/// the same module when it resolves to one, else the first in-tree module
/// `modules.dep` lists.
fn reference_vermagic(host: &Host, k: &str, before: &Resolved) -> Option<(String, PathBuf)> {
    let root = kernel::modules_dir(k);
    let vermagic = |path: &Path| {
        host.read(path)
            .ok()
            .and_then(|b| ModInfo::from_bytes(b).ok())
            .and_then(|i| i.vermagic)
            .map(|v| (v, path.to_path_buf()))
    };
    if let Some(found) = before
        .file
        .as_deref()
        .filter(|f| f.strip_prefix(&root).is_ok_and(|r| r.starts_with("kernel")))
        .and_then(vermagic)
    {
        return Some(found);
    }
    let dep = host.read_text(&root.join("modules.dep")).ok()?;
    dep.lines()
        .filter_map(|l| l.split(':').next())
        .filter(|p| p.starts_with("kernel/"))
        .take(5)
        .find_map(|p| vermagic(&root.join(p)))
}

fn depmod(host: &Host, k: &str) -> Result<()> {
    host.run_ok(&Cmd::new("depmod").arg("-a").arg(k))
        .with_context(|| format!("depmod failed for kernel {k}"))?;
    Ok(())
}

/// `<file>.<YYYY-MM-DD@HH:MM:SS>~` for a time in seconds since the epoch
/// (UTC), Ansible's backup naming; the suffix keeps depmod from taking it
/// for a module.
fn backup_path(path: &Path, secs: u64) -> PathBuf {
    let (days, time) = ((secs / 86_400) as i64, secs % 86_400);
    // Days since 1970-01-01 to a proleptic Gregorian date, counting in
    // 400-year eras that start on 1 March.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let day_of_era = z - era * 146_097;
    let year_of_era =
        (day_of_era - day_of_era / 1_460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let month_index = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * month_index + 2) / 5 + 1;
    let month = if month_index < 10 {
        month_index + 3
    } else {
        month_index - 9
    };
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    let mut name = path.as_os_str().to_os_string();
    name.push(format!(
        ".{year:04}-{month:02}-{day:02}@{:02}:{:02}:{:02}~",
        time / 3600,
        time % 3600 / 60,
        time % 60
    ));
    PathBuf::from(name)
}

/// Writes, depmods and verifies; returns per-kernel results and what each
/// kernel resolves afterwards.
fn carry_out(
    host: &Host,
    plan: &Plan,
    undo: &mut Undo,
    warnings: &mut Vec<String>,
) -> Result<(Vec<Value>, Vec<Resolved>)> {
    let mut backups = Vec::new();
    for k in &plan.kernels {
        backups.push(match (k.action, &plan.source) {
            (Action::Install | Action::Replace, Some(s)) => {
                install(host, plan, k, s, undo, warnings)?
            }
            (Action::Remove | Action::Restore, _) => {
                remove(host, &plan.name, k, undo)?;
                None
            }
            _ => None,
        });
    }
    let mut results = Vec::new();
    let mut after = Vec::new();
    for (k, backup) in plan.kernels.iter().zip(backups) {
        if k.action == Action::None {
            results.push(kernel_result(plan, k, &k.before, None));
            after.push(k.before.clone());
            continue;
        }
        depmod(host, &k.kernel)?;
        let now = resolve(host, &k.kernel, &plan.name)?;
        if let (State::Present, Some(target), Some(s)) = (plan.state, &k.path, &plan.source) {
            let ours = now
                .file
                .as_deref()
                .is_some_and(|f| same_file(host, f, target))
                && now.sha256.as_deref() == Some(s.sha256.as_str());
            if !ours {
                bail!("{}", lost(host, &plan.name, &k.kernel, target, &now));
            }
        }
        results.push(kernel_result(plan, k, &now, backup));
        after.push(now);
    }
    Ok((results, after))
}

/// The failure message when the kernel resolves another file than the one
/// installed: which file, and why.
fn lost(host: &Host, name: &str, k: &str, target: &Path, now: &Resolved) -> String {
    let root = kernel::modules_dir(k);
    let relative = |p: &Path| p.strip_prefix(&root).unwrap_or(p).to_path_buf();
    let why = match &now.file {
        Some(winner) => {
            let link = host
                .read_link(winner)
                .map(|t| format!(" (a link to {})", t.display()))
                .unwrap_or_default();
            format!(
                "{}{link}, version {}: {}",
                winner.display(),
                now.version.as_deref().unwrap_or("(none)"),
                depmod::Config::read(host).explain(name, k, &relative(target), &relative(winner))
            )
        }
        None => format!("{}: depmod did not index it", now.path),
    };
    format!(
        "after depmod, kernel {k} resolves {name} to {why}; not to the installed {}",
        target.display()
    )
}

fn install(
    host: &Host,
    plan: &Plan,
    k: &KernelPlan,
    s: &Source,
    undo: &mut Undo,
    warnings: &mut Vec<String>,
) -> Result<Option<PathBuf>> {
    let target = k.path.as_deref().context("an install has a destination")?;
    let mut created = undo.create_dirs(host, &k.new_dirs)?;
    let mut replaced = k.record.as_ref().and_then(|r| r.replaced.clone());
    let mut backup = None;
    if let Some(e) = &k.existing {
        if plan.backup && e.sha256 != s.sha256 {
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_secs())
                .unwrap_or(0);
            let path = backup_path(target, now);
            undo.write(host, &path, &e.data, e.mode)?;
            backup = Some(path);
        }
        match &k.record {
            None => {
                undo.create_dirs(host, &missing_dirs(host, &record::kernel_dir(&k.kernel)))?;
                undo.write(
                    host,
                    &record::saved_path(&k.kernel, &plan.name),
                    &e.data,
                    0o600,
                )?;
                replaced = Some(Replaced {
                    sha256: e.sha256.clone(),
                    mode: e.mode,
                });
            }
            Some(r) if r.sha256 != e.sha256 && backup.is_none() => warnings.push(format!(
                "{} was changed after kmod_update installed it; that file is replaced without a copy \
                 (state: absent restores the file from before the first install)",
                target.display()
            )),
            Some(_) => {}
        }
    }
    undo.write(host, target, &s.data, 0o644)?;
    if let Some(r) = &k.record {
        created.splice(0..0, r.created_dirs.iter().cloned());
    }
    let rec = Record {
        path: target.to_path_buf(),
        sha256: s.sha256.clone(),
        version: s.info.version.clone(),
        created_dirs: created,
        replaced,
    };
    undo.create_dirs(host, &missing_dirs(host, &record::kernel_dir(&k.kernel)))?;
    undo.write(
        host,
        &record::path(&k.kernel, &plan.name),
        &serde_json::to_vec_pretty(&rec)?,
        0o644,
    )?;
    Ok(backup)
}

fn remove(host: &Host, name: &str, k: &KernelPlan, undo: &mut Undo) -> Result<()> {
    let r = k.record.as_ref().context("a removal has a record")?;
    match (&k.restore, &r.replaced) {
        (Some(data), Some(replaced)) => undo.write(host, &r.path, data, replaced.mode)?,
        _ if k.existing.is_some() => undo.remove(host, &r.path)?,
        _ => {}
    }
    if r.replaced.is_some() {
        undo.remove(host, &record::saved_path(&k.kernel, name))?;
    }
    undo.remove(host, &record::path(&k.kernel, name))?;
    for dir in r.created_dirs.iter().rev() {
        undo.remove_dir_if_empty(host, dir)?;
    }
    undo.remove_dir_if_empty(host, &record::kernel_dir(&k.kernel))?;
    undo.remove_dir_if_empty(host, Path::new(record::STATE_DIR))?;
    Ok(())
}

fn kernel_result(plan: &Plan, k: &KernelPlan, now: &Resolved, backup: Option<PathBuf>) -> Value {
    let installed = plan.source.as_ref().map(|s| &s.info);
    json!({
        "kernel": k.kernel,
        "action": k.action,
        "reason": k.reason,
        "path": k.path,
        "version": installed.and_then(|i| i.version.clone()),
        "srcversion": installed.and_then(|i| i.srcversion.clone()),
        "sha256": plan.source.as_ref().map(|s| s.sha256.clone()),
        "resolved": now.path,
        "backup_file": backup,
        "before": k.before,
        "after": now,
    })
}

fn report(plan: &Plan, kernels: Vec<Value>, after: Vec<&Resolved>) -> Response {
    let changed = plan.changed();
    let mut values = Map::new();
    values.insert("name".into(), json!(plan.name));
    values.insert("state".into(), json!(plan.state));
    values.insert(
        "source".into(),
        json!(plan.source.as_ref().map(|s| &s.described)),
    );
    values.insert("kernels".into(), Value::Array(kernels));
    let side = |pick: &dyn Fn(usize) -> Value| -> String {
        let map: Map<String, Value> = plan
            .kernels
            .iter()
            .enumerate()
            .map(|(i, k)| (k.kernel.clone(), pick(i)))
            .collect();
        serde_json::to_string_pretty(&map).unwrap_or_default() + "\n"
    };
    let header = format!("module {} as resolved per kernel", plan.name);
    let changes: Vec<String> = plan
        .kernels
        .iter()
        .filter(|k| k.action != Action::None)
        .map(|k| format!("{} {}", json!(k.action).as_str().unwrap_or(""), k.kernel))
        .collect();
    let msg = if changes.is_empty() {
        format!("{}: nothing to do", plan.name)
    } else {
        format!("{}: {}", plan.name, changes.join(", "))
    };
    Response {
        changed,
        msg: Some(msg),
        diff: Some(json!({
            "before_header": header,
            "after_header": header,
            "before": side(&|i| json!(plan.kernels[i].before)),
            "after": side(&|i| json!(after.get(i))),
        })),
        warnings: plan.warnings.clone(),
        values,
        ..Response::default()
    }
}

#[cfg(test)]
mod tests;
