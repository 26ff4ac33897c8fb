//! Carrying a plan out: first roll back what killed runs left unfinished
//! (see [`crate::journal`]), then write (or remove) each kernel's file and
//! its record, run depmod where something changed, and prove that the
//! kernel resolves what was installed. Every change is journaled before it
//! is made, so a failure, or a kill, puts the host back as it was.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context as _, Result};
use formats::calendar::DateTime;
use linux_host::kmod::{self, Lookup, Resolved};
use linux_host::{depmod, kernel, Cmd, Host};

use crate::files::{missing_dirs, same_file};
use crate::journal::{self, Journal, View};
use crate::options::State;
use crate::plan::{Action, KernelPlan, Plan};
use crate::record::{self, Record, Replaced};
use crate::source::Source;

/// What one kernel resolves after the run, and the backup the run made.
pub struct Outcome {
    pub now: Resolved,
    pub backup: Option<PathBuf>,
}

/// Carries `plan` out; on failure rolls every change back and reruns
/// depmod, and says whether that worked.
pub fn apply(plan: &mut Plan, host: &Host) -> Result<(Vec<Outcome>, Vec<String>)> {
    for j in std::mem::take(&mut plan.recover) {
        recover(host, j, &plan.name)?;
    }
    let mut journals = Vec::new();
    let mut warnings = Vec::new();
    match carry_out(host, plan, &mut journals, &mut warnings) {
        Ok(outcomes) => {
            for j in journals {
                j.finish(host)?;
            }
            Ok((outcomes, warnings))
        }
        Err(e) => {
            let undone = journals
                .into_iter()
                .rev()
                .try_for_each(|j| roll_back(host, j));
            Err(match undone {
                Ok(()) => e.context(
                    "every change of this run was undone and depmod rerun: the host is as it was",
                ),
                Err(u) => e.context(format!(
                    "undoing this run's changes failed too: {u:#}; the next run of kmod_update \
                     rolls them back"
                )),
            })
        }
    }
}

/// Finishes what a killed run left: rolls an unfinished journal back
/// (then depmod), or removes a finished run's journal folder.
fn recover(host: &Host, j: Journal, name: &str) -> Result<()> {
    if j.unfinished() {
        roll_back(host, j)
            .with_context(|| format!("cannot roll back the interrupted run of {name}"))
    } else {
        j.finish(host)
    }
}

/// Rolls one kernel's journal back, removes what a killed depmod left,
/// reruns depmod and removes the journal.
fn roll_back(host: &Host, j: Journal) -> Result<()> {
    j.roll_back(host)?;
    let tree = kernel::modules_dir(&j.kernel);
    for entry in host.read_dir(&tree).unwrap_or_default() {
        if journal::is_depmod_temporary(&entry.name) {
            host.remove_file(&entry.path)?;
        }
    }
    depmod(host, &j.kernel)?;
    j.finish(host)
}

fn carry_out(
    host: &Host,
    plan: &Plan,
    journals: &mut Vec<Journal>,
    warnings: &mut Vec<String>,
) -> Result<Vec<Outcome>> {
    let mut backups = Vec::new();
    for k in &plan.kernels {
        if k.action == Action::None {
            backups.push(None);
            continue;
        }
        journals.push(Journal::begin(host, &k.kernel, &plan.name, &k.before)?);
        let j = journals.last_mut().context("a journal was just begun")?;
        backups.push(match (k.action, &plan.source) {
            (Action::Install | Action::Replace, Some(s)) => install(host, plan, k, s, j, warnings)?,
            (Action::Remove | Action::Restore, _) => {
                remove(host, &plan.name, k, j)?;
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

/// `depmod -a <k>`, then its index files are synced: after a power cut
/// they are the new ones, not empty.
fn depmod(host: &Host, k: &str) -> Result<()> {
    host.run_ok(&Cmd::new("depmod").arg("-a").arg(k))
        .with_context(|| format!("depmod failed for kernel {k}"))?;
    host.sync_files(&kernel::modules_dir(k), |f| f.starts_with("modules."))
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
    journal: &mut Journal,
    warnings: &mut Vec<String>,
) -> Result<Option<PathBuf>> {
    let target = k.path.as_deref().context("an install has a destination")?;
    let mut created = journal.create_dirs(host, &k.new_dirs)?;
    let mut replaced = k.record.as_ref().and_then(|r| r.replaced.clone());
    let mut backup = None;
    if let Some(e) = &k.existing {
        if plan.backup && e.sha256 != s.sha256 {
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_secs())
                .unwrap_or(0);
            let path = backup_path(target, now);
            journal.write(host, &path, &e.data, e.mode)?;
            backup = Some(path);
        }
        match &k.record {
            None => {
                journal.create_dirs(host, &missing_dirs(&View::live(host), &record::kernel_dir(&k.kernel)))?;
                journal.write(
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
    journal.write(host, target, &s.data, 0o644)?;
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
    journal.create_dirs(
        host,
        &missing_dirs(&View::live(host), &record::kernel_dir(&k.kernel)),
    )?;
    journal.write(
        host,
        &record::path(&k.kernel, &plan.name),
        &serde_json::to_vec_pretty(&rec)?,
        0o644,
    )?;
    Ok(backup)
}

fn remove(host: &Host, name: &str, k: &KernelPlan, journal: &mut Journal) -> Result<()> {
    let r = k.record.as_ref().context("a removal has a record")?;
    match (&k.restore, &r.replaced) {
        (Some(data), Some(replaced)) => journal.write(host, &r.path, data, replaced.mode)?,
        _ if k.existing.is_some() => journal.remove(host, &r.path)?,
        _ => {}
    }
    if r.replaced.is_some() {
        journal.remove(host, &record::saved_path(&k.kernel, name))?;
    }
    journal.remove(host, &record::path(&k.kernel, name))?;
    for dir in r.created_dirs.iter().rev() {
        journal.remove_dir_if_empty(host, dir)?;
    }
    journal.remove_dir_if_empty(host, &record::kernel_dir(&k.kernel))?;
    journal.remove_dir_if_empty(host, Path::new(record::STATE_DIR))?;
    Ok(())
}
