//! Carrying a plan out: write (or remove) each kernel's file and its
//! record, run depmod where something changed, and prove that the kernel
//! resolves what was installed. Every change goes through [`Undo`], so a
//! failure puts the host back as it was.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context as _, Result};
use formats::calendar::DateTime;
use linux_host::kmod::{self, Lookup, Resolved};
use linux_host::{depmod, Cmd, Host};

use crate::files::{missing_dirs, same_file};
use crate::options::State;
use crate::plan::{Action, KernelPlan, Plan};
use crate::record::{self, Record, Replaced};
use crate::source::Source;
use crate::undo::Undo;

/// What one kernel resolves after the run, and the backup the run made.
pub struct Outcome {
    pub now: Resolved,
    pub backup: Option<PathBuf>,
}

/// Carries `plan` out; on failure undoes every change and reruns depmod,
/// and says whether that worked.
pub fn apply(plan: &Plan, host: &Host) -> Result<(Vec<Outcome>, Vec<String>)> {
    let mut undo = Undo::default();
    let mut warnings = Vec::new();
    match carry_out(host, plan, &mut undo, &mut warnings) {
        Ok(outcomes) => Ok((outcomes, warnings)),
        Err(e) => {
            let touched: Vec<&str> = plan
                .kernels
                .iter()
                .filter(|k| k.action != Action::None)
                .map(|k| k.kernel.as_str())
                .collect();
            let undone = undo
                .roll_back(host)
                .and_then(|()| touched.iter().try_for_each(|k| depmod(host, k)));
            Err(match undone {
                Ok(()) => e.context(
                    "every change of this run was undone and depmod rerun: the host is as it was",
                ),
                Err(u) => e.context(format!("undoing this run's changes failed too: {u:#}")),
            })
        }
    }
}

fn carry_out(
    host: &Host,
    plan: &Plan,
    undo: &mut Undo,
    warnings: &mut Vec<String>,
) -> Result<Vec<Outcome>> {
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
    let mut outcomes = Vec::new();
    for (k, backup) in plan.kernels.iter().zip(backups) {
        if k.action == Action::None {
            outcomes.push(Outcome {
                now: k.before.clone(),
                backup,
            });
            continue;
        }
        depmod(host, &k.kernel)?;
        let now = Resolved::read(host, &k.kernel, &plan.name, Lookup::Auto)?;
        if let (State::Present, Some(target), Some(s)) = (plan.state, &k.path, &plan.source) {
            let ours = now.path().is_some_and(|f| same_file(host, f, target))
                && now.sha256() == Some(s.sha256.as_str());
            if !ours {
                bail!("{}", lost(host, &plan.name, &k.kernel, target, &now));
            }
        }
        outcomes.push(Outcome { now, backup });
    }
    Ok(outcomes)
}

fn depmod(host: &Host, k: &str) -> Result<()> {
    host.run_ok(&Cmd::new("depmod").arg("-a").arg(k))
        .with_context(|| format!("depmod failed for kernel {k}"))?;
    Ok(())
}

/// The failure message when the kernel resolves another file than the one
/// installed: which file, and why.
fn lost(host: &Host, name: &str, k: &str, target: &Path, now: &Resolved) -> String {
    let relative = |p: &Path| kmod::relative_to(k, p);
    let why = match now.path() {
        Some(winner) => {
            let link = host
                .read_link(winner)
                .map(|t| format!(" (a link to {})", t.display()))
                .unwrap_or_default();
            format!(
                "{}{link}, version {}: {}",
                winner.display(),
                now.info().version.as_deref().unwrap_or("(none)"),
                depmod::Config::read(host).explain(name, k, &relative(target), &relative(winner))
            )
        }
        None => format!("{}: depmod did not index it", now.describe()),
    };
    format!(
        "after depmod, kernel {k} resolves {name} to {why}; not to the installed {}",
        target.display()
    )
}

/// `<file>.<YYYY-MM-DD@HH:MM:SS>~` for a time in seconds since the epoch
/// (UTC), Ansible's backup naming; the suffix keeps depmod from taking it
/// for a module.
pub fn backup_path(path: &Path, secs: u64) -> PathBuf {
    let mut name = path.as_os_str().to_os_string();
    name.push(format!(".{}~", DateTime::from_unix(secs)));
    PathBuf::from(name)
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
