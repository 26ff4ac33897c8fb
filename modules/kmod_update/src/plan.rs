//! Deciding, per kernel, what the run does: everything is read and checked
//! here, before the first write (see [`crate::apply`] for carrying it out).

use std::path::{Path, PathBuf};

use anyhow::{bail, Context as _, Result};
use formats::modinfo::{compression_of, kmod_lacks, sha256_hex, validate_name, Resolution};
use linux_host::kmod::{self, Resolved};
use linux_host::signing::HostSigning;
use linux_host::{depmod, kernel, mounts, Cmd, DirLock, Host};
use serde::Serialize;

use crate::files::{missing_dirs, read_existing, same_file, Existing};
use crate::journal::{self, Journal, View};
use crate::options::{validate_dest, Options, State};
use crate::record::{self, Record};
use crate::source::{self, Source};
use crate::vermagic::{check_signature, check_vermagic};

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

impl Action {
    /// The action's name in results and messages.
    pub fn as_str(self) -> &'static str {
        match self {
            Action::None => "none",
            Action::Install => "install",
            Action::Replace => "replace",
            Action::Depmod => "depmod",
            Action::Remove => "remove",
            Action::Restore => "restore",
        }
    }
}

/// One kernel's part of the plan.
#[derive(Debug)]
pub struct KernelPlan {
    pub kernel: String,
    pub action: Action,
    pub reason: String,
    /// The installed (or to be installed) file.
    pub path: Option<PathBuf>,
    pub existing: Option<Existing>,
    pub record: Option<Record>,
    /// The bytes `absent` puts back.
    pub restore: Option<Vec<u8>>,
    /// Folders an install creates, top down.
    pub new_dirs: Vec<PathBuf>,
    pub before: Resolved,
    /// What the kernel is expected to resolve after the run.
    pub after: Resolved,
}

/// Everything decided before the first change.
pub struct Plan {
    pub(crate) name: String,
    pub(crate) state: State,
    pub(crate) source: Option<Source>,
    pub(crate) backup: bool,
    pub(crate) kernels: Vec<KernelPlan>,
    pub(crate) warnings: Vec<String>,
    /// Journals of killed runs, rolled back (or removed) before the plan
    /// is carried out; taken by [`crate::apply`].
    pub(crate) recover: Vec<Journal>,
    /// What that recovery does, for the result.
    pub(crate) recovered: Vec<Recovered>,
    pub(crate) _locks: Vec<DirLock>,
}

/// A kernel where an earlier run was killed.
#[derive(Clone, Debug, Serialize)]
pub struct Recovered {
    pub kernel: String,
    /// The journal folder it left.
    pub journal: PathBuf,
    /// True when its changes are rolled back (and depmod rerun); false
    /// when it had finished and only its journal folder is removed.
    pub rolled_back: bool,
}

impl Plan {
    /// Whether any kernel changes, or a killed run is recovered.
    pub fn changed(&self) -> bool {
        !self.recovered.is_empty() || self.kernels.iter().any(|k| k.action != Action::None)
    }
}

/// Reads the source, the records and the trees; decides per kernel.
pub fn plan(o: Options, host: &Host) -> Result<Plan> {
    if !o.remote_src {
        return Err(ansible_protocol::needs_action_plugin(&[
            "remote_src: false",
        ]));
    }
    validate_name(&o.name)?;
    let dest = validate_dest(&o.dest)?;
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
    if let (Some(s), Some(wanted)) = (&source, &o.expected_signer) {
        check_signer(s, wanted)?;
    }
    let kernels = select_kernels(host, &o, source.as_ref())?;
    // Two runs on one host must not interleave: each holds its kernels'
    // module folders from planning to the end of the run, and those where
    // a killed run left a journal, which this run recovers first.
    let installed = kernel::installed(host)?;
    let journaled: Vec<String> = journal::kernels_with_journal(host, &o.name)
        .into_iter()
        .filter(|k| installed.contains(k))
        .collect();
    let mut locked = kernels.clone();
    locked.extend(journaled.iter().cloned());
    let locks = kernel::lock_trees(host, &locked)?;
    let mut recover = Vec::new();
    for k in &journaled {
        if let Some(j) = Journal::read(host, k, &o.name)? {
            recover.push(j);
        }
    }
    let recovered = recover
        .iter()
        .map(|j| Recovered {
            kernel: j.kernel.clone(),
            journal: j.path().to_path_buf(),
            rolled_back: j.unfinished(),
        })
        .collect();
    let mut planner = Planner {
        host,
        o: &o,
        // Only a removal predicts which copy wins afterwards.
        config: match source {
            None => depmod::Config::read(host),
            Some(_) => depmod::Config::default(),
        },
        warnings: Vec::new(),
        signing: None,
    };
    let mut plans = Vec::new();
    for k in &kernels {
        let view = View::after_rollback(host, recover.iter().find(|j| &j.kernel == k));
        let before = view.resolved(k, &o.name)?;
        let record = record::read(&view, k, &o.name)?;
        plans.push(match &source {
            Some(s) => planner.install(&view, k, &dest, s, record, before)?,
            None => planner.remove(&view, k, record, before)?,
        });
    }
    let warnings = planner.warnings;
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
    if let Some(s) = &source {
        check_kmod_reads(host, s, &plans)?;
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
        recover,
        recovered,
        _locks: locks,
    })
}

/// Refuses a source whose module is not signed by `wanted`.
fn check_signer(s: &Source, wanted: &str) -> Result<()> {
    let problem = match &s.info.signature {
        None => "is unsigned".to_string(),
        Some(sig) => match (&sig.error, sig.signer.as_deref()) {
            (Some(error), _) => format!("carries a signature that cannot be read ({error})"),
            (None, Some(signer)) if signer == wanted => return Ok(()),
            (None, signer) => format!(
                "is signed by {:?} (key {})",
                signer.unwrap_or("an unnamed signer"),
                sig.key_id.as_deref().unwrap_or("unknown")
            ),
        },
    };
    bail!(
        "{} {problem}, but expected_signer is {wanted:?}",
        s.described
    )
}

/// Refuses a compressed module that the host's kmod is built without
/// support for (`modinfo -V` says `-ZLIB`, as Debian 12's does): depmod
/// would skip the installed file and the kernel never resolve it. When
/// kmod does not say, the check after depmod still catches it.
fn check_kmod_reads(host: &Host, s: &Source, plans: &[KernelPlan]) -> Result<()> {
    let Some((feature, compression)) = compression_of(s.extension) else {
        return Ok(());
    };
    let Some(target) = plans
        .iter()
        .filter(|p| p.action != Action::None)
        .find_map(|p| p.path.as_deref())
    else {
        return Ok(());
    };
    let version = match host.run(&Cmd::new("modinfo").arg("-V")) {
        Ok(out) if out.success() => out.stdout,
        _ => return Ok(()),
    };
    if !kmod_lacks(&version, feature) {
        return Ok(());
    }
    let mut readable = vec![".ko"];
    readable.extend(
        formats::modinfo::EXTENSIONS
            .iter()
            .copied()
            .filter(|e| compression_of(e).is_some_and(|(f, _)| !kmod_lacks(&version, f))),
    );
    let readable = match readable.split_last() {
        Some((last, [])) => last.to_string(),
        Some((last, rest)) => format!("{} or {last}", rest.join(", ")),
        None => String::new(),
    };
    let said: Vec<&str> = version
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect();
    bail!(
        "{} is compressed with {compression}, which this host's kmod cannot read ({}): depmod would not \
         index {}; install the module as {readable}",
        s.described,
        said.join(": "),
        target.display()
    )
}

/// The kernels named, else the artifact's (or the module's vermagic)
/// kernel, else with `absent` every kernel holding a record.
fn select_kernels(host: &Host, o: &Options, source: Option<&Source>) -> Result<Vec<String>> {
    let installed = kernel::installed(host)?;
    let kernels = match (o.kernels.is_empty(), source) {
        (false, _) => kernel::select(host, &o.kernels, &installed, |_| true)?,
        (true, Some(s)) => vec![s
            .kernel
            .clone()
            .or_else(|| s.info.vermagic_release().map(str::to_string))
            .with_context(|| format!("{} names no kernel: set kernels", s.described))?],
        (true, None) => {
            let mut recorded = record::kernels_with_record(host, &o.name);
            recorded.extend(journal::kernels_with_journal(host, &o.name));
            installed
                .iter()
                .filter(|k| recorded.contains(k))
                .cloned()
                .collect()
        }
    };
    kernel::require_installed(&kernels, &installed)?;
    Ok(kernels)
}

/// What planning one kernel needs besides the kernel itself.
struct Planner<'a> {
    host: &'a Host,
    o: &'a Options,
    config: depmod::Config,
    warnings: Vec<String>,
    /// Read at the first install check.
    signing: Option<HostSigning>,
}

impl Planner<'_> {
    fn install(
        &mut self,
        view: &View,
        k: &str,
        dest: &Path,
        s: &Source,
        record: Option<Record>,
        before: Resolved,
    ) -> Result<KernelPlan> {
        let (host, o) = (self.host, self.o);
        check_vermagic(host, k, s, &before, o.force, &mut self.warnings)?;
        let signing = self.signing.get_or_insert_with(|| HostSigning::read(host));
        check_signature(host, k, s, &before, signing, o.force, &mut self.warnings)?;
        let dir = kernel::modules_dir(k).join(dest);
        let target = dir.join(format!("{}{}", o.name, s.extension));
        host.refuse_links_below(&kernel::modules_dir(k), &target)?;
        for ext in formats::modinfo::EXTENSIONS
            .iter()
            .filter(|e| **e != s.extension)
        {
            let sibling = dir.join(format!("{}{ext}", o.name));
            if view.exists(&sibling) {
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
        let existing = read_existing(view, &target)?;
        let resolved_here = before.path().is_some_and(|f| same_file(host, f, &target));
        let (action, reason) = match &existing {
            None => (Action::Install, "not installed".to_string()),
            Some(e) if e.sha256 == s.sha256 => {
                let owner = view.owner(&target)?;
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
                            before.describe()
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
            new_dirs: missing_dirs(view, &dir),
            after: Resolved::predicted(k, &target, &s.data),
            path: Some(target),
            existing,
            record,
            restore: None,
            before,
        })
    }

    fn remove(
        &mut self,
        view: &View,
        k: &str,
        record: Option<Record>,
        before: Resolved,
    ) -> Result<KernelPlan> {
        let o = self.o;
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
        let existing = read_existing(view, &r.path)?;
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
            self.warnings
                .push(format!("{what}; removed anyway because force is set"));
        }
        let restore = match &r.replaced {
            Some(replaced) => {
                let saved = record::saved_path(k, &o.name);
                let data = view.read(&saved).with_context(|| {
                    format!(
                        "cannot read {}, the file kmod_update replaced",
                        saved.display()
                    )
                })?;
                if sha256_hex(&data) != replaced.sha256 {
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
            Some(data) => Resolved::predicted(k, &r.path, data),
            None => self.next_copy(view, k, &r.path)?,
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

    /// Which copy depmod is expected to pick once `removed` is gone: the
    /// one with the best search rank (the check-mode prediction; a real run
    /// reports what modinfo says).
    fn next_copy(&self, view: &View, k: &str, removed: &Path) -> Result<Resolved> {
        let best = kmod::find_copies(self.host, k, &self.o.name)?
            .into_iter()
            .filter(|p| p != removed && view.exists(p))
            .min_by_key(|p| self.config.rank(&kmod::relative_to(k, p)));
        Ok(Resolved::of(
            self.host,
            k,
            best.map_or(Resolution::NotFound, Resolution::File),
        ))
    }
}
