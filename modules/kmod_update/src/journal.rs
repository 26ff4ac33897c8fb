//! The intent journal: every change a run makes to one kernel, written and
//! synced before the change, so that a run killed at any point (kill -9, a
//! dropped SSH session, a power cut) is rolled back by the next run of
//! either state before it plans, and a failure half way is rolled back the
//! same way.
//!
//! One journal per kernel and module name, a root-only folder
//! `/var/lib/kmod_update.journal.<name>@<kver>` (outside the record folder,
//! which `state: absent` removes):
//!
//! - `intent.json`: `{"kernel", "name", "before"}`, written first; `before`
//!   is what the kernel resolved when the run planned. Its removal is the
//!   commit point: a folder without it is the leftover of a finished run.
//! - `step-<n>.json`, `n` from 0: one change about to be made, with what
//!   was there before (`file`: the path's mode and checksum, its bytes in
//!   `step-<n>.data`, or nothing; `created_dir`; `removed_dir`).
//!
//! Rolling back applies the steps newest first; every step is idempotent,
//! so a kill during a rollback is rolled back again by the next run.
//! [`View`] lets planning see the host as the rollback will leave it, so
//! check mode predicts a run that recovers exactly.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use formats::limits::MODULE_MAX;
use formats::modinfo::{sha256_hex, Resolution};
use linux_host::host::is_temp_name_of;
use linux_host::kmod::{Lookup, Resolved};
use linux_host::{kernel, Host};
use serde::{Deserialize, Serialize};

/// Where journals live (a folder every host has).
const PARENT: &str = "/var/lib";
/// Journal folder names: `<PREFIX><name>@<kver>`.
const PREFIX: &str = "kmod_update.journal.";
const INTENT: &str = "intent.json";

/// `/var/lib/kmod_update.journal.<name>@<kver>` (neither a module name
/// nor a kernel release can hold `@` or `/`).
pub fn dir(kver: &str, name: &str) -> PathBuf {
    Path::new(PARENT).join(format!("{PREFIX}{name}@{kver}"))
}

/// Kernels with a journal of `name` (valid release names only).
pub fn kernels_with_journal(host: &Host, name: &str) -> Vec<String> {
    let prefix = format!("{PREFIX}{name}@");
    host.read_dir(Path::new(PARENT))
        .unwrap_or_default()
        .into_iter()
        .filter_map(|e| e.name.strip_prefix(&prefix).map(str::to_string))
        .filter(|k| kernel::validate_release(k).is_ok())
        .collect()
}

/// What the kernel resolved before the run, as the journal keeps it.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
enum Before {
    File(PathBuf),
    Builtin,
    NotFound,
}

#[derive(Debug, Deserialize, Serialize)]
struct Intent {
    kernel: String,
    name: String,
    before: Before,
}

/// A file as it was before a step changed it.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize, Serialize)]
struct FileBefore {
    mode: u32,
    sha256: String,
}

/// One change about to be made.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[serde(tag = "step", rename_all = "snake_case")]
enum Step {
    /// `path` is written or removed; `before` is what was there.
    File {
        path: PathBuf,
        before: Option<FileBefore>,
    },
    /// `path` did not exist and is created.
    CreatedDir { path: PathBuf },
    /// `path` was an empty folder and is removed.
    RemovedDir { path: PathBuf },
}

/// One kernel's journal.
#[derive(Debug)]
pub struct Journal {
    pub kernel: String,
    dir: PathBuf,
    intent: Option<Intent>,
    /// Each step with the bytes of a file it replaces or removes.
    steps: Vec<(Step, Option<Vec<u8>>)>,
}

impl Journal {
    /// Starts the journal of a run on `kver`, before its first change.
    pub fn begin(host: &Host, kver: &str, name: &str, before: &Resolved) -> Result<Journal> {
        let dir = dir(kver, name);
        host.create_dir(&dir, 0o700)?;
        let intent = Intent {
            kernel: kver.to_string(),
            name: name.to_string(),
            before: match &before.resolution {
                Resolution::File(p) => Before::File(p.clone()),
                Resolution::Builtin => Before::Builtin,
                Resolution::NotFound => Before::NotFound,
            },
        };
        host.write_atomic_as_root(&dir.join(INTENT), &serde_json::to_vec(&intent)?, 0o600)?;
        Ok(Journal {
            kernel: kver.to_string(),
            dir,
            intent: Some(intent),
            steps: Vec::new(),
        })
    }

    /// The journal a killed run left for `kver`, if any.
    pub fn read(host: &Host, kver: &str, name: &str) -> Result<Option<Journal>> {
        let dir = dir(kver, name);
        host.refuse_links_below(Path::new(PARENT), &dir.join(INTENT))?;
        if !host.exists(&dir) {
            return Ok(None);
        }
        if !host.is_dir(&dir) {
            bail!("{} is not a folder kmod_update made", dir.display());
        }
        let bad = |what: &str| format!("{}: {what}", dir.display());
        let intent: Option<Intent> = match host.read(&dir.join(INTENT)) {
            Ok(bytes) => Some(
                serde_json::from_slice(&bytes).with_context(|| bad("unreadable intent.json"))?,
            ),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
            Err(e) => return Err(e).with_context(|| bad("cannot read intent.json")),
        };
        if let Some(i) = &intent {
            if i.kernel != kver || i.name != name {
                bail!(bad("intent.json names another kernel or module"));
            }
        }
        let mut steps = Vec::new();
        while intent.is_some() {
            let n = steps.len();
            let json = match host.read(&dir.join(format!("step-{n}.json"))) {
                Ok(bytes) => bytes,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => break,
                Err(e) => return Err(e).with_context(|| bad("cannot read a step")),
            };
            let step: Step = serde_json::from_slice(&json)
                .with_context(|| bad(&format!("unreadable step-{n}.json")))?;
            let tree_ok = |p: &Path| {
                host.refuse_links_below(&kernel::modules_dir(kver), p)
                    .is_ok()
                    || host
                        .refuse_links_below(Path::new(crate::record::STATE_DIR), p)
                        .is_ok()
            };
            let path = match &step {
                Step::File { path, .. } | Step::CreatedDir { path } | Step::RemovedDir { path } => {
                    path
                }
            };
            if !tree_ok(path) && path != Path::new(crate::record::STATE_DIR) {
                bail!(bad(&format!(
                    "step-{n}.json names {}, a path kmod_update does not touch",
                    path.display()
                )));
            }
            let data = match &step {
                Step::File {
                    before: Some(b), ..
                } => {
                    let file = dir.join(format!("step-{n}.data"));
                    if host.file_size(&file).unwrap_or(u64::MAX) > MODULE_MAX {
                        bail!(bad(&format!("step-{n}.data is missing or too large")));
                    }
                    let data = host
                        .read(&file)
                        .with_context(|| bad("cannot read a step"))?;
                    if sha256_hex(&data) != b.sha256 {
                        bail!(bad(&format!("step-{n}.data does not match its checksum")));
                    }
                    Some(data)
                }
                _ => None,
            };
            steps.push((step, data));
        }
        Ok(Some(Journal {
            kernel: kver.to_string(),
            dir,
            intent,
            steps,
        }))
    }

    /// Whether the run it records was under way (not finished) when it
    /// stopped: then it must be rolled back; otherwise only the folder is
    /// left to remove.
    pub fn unfinished(&self) -> bool {
        self.intent.is_some()
    }

    /// The journal folder.
    pub fn path(&self) -> &Path {
        &self.dir
    }

    fn push(&mut self, host: &Host, step: Step, data: Option<&[u8]>) -> Result<()> {
        let n = self.steps.len();
        if let Some(data) = data {
            host.write_atomic_as_root(&self.dir.join(format!("step-{n}.data")), data, 0o600)?;
        }
        host.write_atomic_as_root(
            &self.dir.join(format!("step-{n}.json")),
            &serde_json::to_vec(&step)?,
            0o600,
        )?;
        self.steps.push((step, data.map(<[u8]>::to_vec)));
        Ok(())
    }

    fn record_file(&mut self, host: &Host, path: &Path) -> Result<bool> {
        let (before, data) = if host.exists(path) {
            let data = host
                .read(path)
                .with_context(|| format!("cannot read {}", path.display()))?;
            let before = FileBefore {
                mode: host.mode(path)?,
                sha256: sha256_hex(&data),
            };
            (Some(before), Some(data))
        } else {
            (None, None)
        };
        let existed = before.is_some();
        self.push(
            host,
            Step::File {
                path: path.to_path_buf(),
                before,
            },
            data.as_deref(),
        )?;
        Ok(existed)
    }

    /// Writes a root-owned file atomically, journaled first.
    pub fn write(&mut self, host: &Host, path: &Path, data: &[u8], mode: u32) -> Result<()> {
        self.record_file(host, path)?;
        host.write_atomic_as_root(path, data, mode)
    }

    /// Removes a file, journaled first; nothing when it is not there.
    pub fn remove(&mut self, host: &Host, path: &Path) -> Result<()> {
        if host.exists(path) {
            self.record_file(host, path)?;
            host.remove_file(path)?;
        }
        Ok(())
    }

    /// Creates the folders that do not exist yet, top down; returns those
    /// it created.
    pub fn create_dirs(&mut self, host: &Host, dirs: &[PathBuf]) -> Result<Vec<PathBuf>> {
        let mut created = Vec::new();
        for dir in dirs.iter().filter(|d| !host.exists(d)) {
            self.push(host, Step::CreatedDir { path: dir.clone() }, None)?;
            host.create_dir_all(dir)?;
            created.push(dir.clone());
        }
        Ok(created)
    }

    /// Removes a folder when it is empty; leaves it otherwise.
    pub fn remove_dir_if_empty(&mut self, host: &Host, dir: &Path) -> Result<()> {
        if host.read_dir(dir).is_ok_and(|entries| entries.is_empty()) {
            self.push(
                host,
                Step::RemovedDir {
                    path: dir.to_path_buf(),
                },
                None,
            )?;
            host.remove_dir(dir)?;
        }
        Ok(())
    }

    /// Puts back what every step changed, newest first, first removing the
    /// temporary files a killed atomic write leaves beside its target.
    /// Safe to repeat.
    pub fn roll_back(&self, host: &Host) -> Result<()> {
        for (step, _) in &self.steps {
            if let Step::File { path, .. } = step {
                remove_temporaries_of(host, path)?;
            }
        }
        for (step, data) in self.steps.iter().rev() {
            match (step, data) {
                (Step::File { path, before }, Some(data)) => {
                    let mode = before.as_ref().map_or(0o644, |b| b.mode);
                    let same = host
                        .read(path)
                        .is_ok_and(|now| now == *data && host.mode(path).ok() == Some(mode));
                    if !same {
                        host.write_atomic_as_root(path, data, mode)?;
                    }
                }
                (Step::File { path, .. }, None) if host.exists(path) => host.remove_file(path)?,
                (Step::CreatedDir { path }, _) if host.is_dir(path) => host.remove_dir(path)?,
                (Step::RemovedDir { path }, _) if !host.exists(path) => {
                    host.create_dir_all(path)?
                }
                _ => {}
            }
        }
        Ok(())
    }

    /// Removes the journal: `intent.json` first (the commit point), then
    /// the steps and the folder.
    pub fn finish(self, host: &Host) -> Result<()> {
        let intent = self.dir.join(INTENT);
        if host.exists(&intent) {
            host.remove_file(&intent)?;
        }
        for entry in host.read_dir(&self.dir).unwrap_or_default() {
            host.remove_file(&entry.path)?;
        }
        host.remove_dir(&self.dir)
    }
}

/// Removes `.<file>.tmp<pid>.<n>`, what `Host::write_atomic` leaves when
/// it is killed between creating its temporary file and the rename.
fn remove_temporaries_of(host: &Host, path: &Path) -> Result<()> {
    let (Some(dir), Some(file)) = (path.parent(), path.file_name()) else {
        return Ok(());
    };
    let file = file.to_string_lossy();
    for entry in host.read_dir(dir).unwrap_or_default() {
        if is_temp_name_of(&entry.name, &file) {
            host.remove_file(&entry.path)?;
        }
    }
    Ok(())
}

/// Whether `name` is a temporary file depmod writes its indices to before
/// renaming them (`modules.dep.bin.<pid>.<usec>.<sec>`), which a killed
/// depmod leaves behind.
pub fn is_depmod_temporary(name: &str) -> bool {
    let Some(rest) = name.strip_prefix("modules.") else {
        return false;
    };
    let parts: Vec<&str> = rest.rsplitn(4, '.').collect();
    parts.len() == 4
        && parts[..3]
            .iter()
            .all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()))
}

/// The host as planning must see it: as it is, or, for a kernel with an
/// unfinished journal, as the rollback will leave it.
pub struct View<'a> {
    host: &'a Host,
    journal: Option<&'a Journal>,
}

impl<'a> View<'a> {
    /// The host as it is.
    pub fn live(host: &'a Host) -> View<'a> {
        View {
            host,
            journal: None,
        }
    }

    /// The host once `journal` (if unfinished) is rolled back.
    pub fn after_rollback(host: &'a Host, journal: Option<&'a Journal>) -> View<'a> {
        View {
            host,
            journal: journal.filter(|j| j.unfinished()),
        }
    }

    pub fn host(&self) -> &'a Host {
        self.host
    }

    /// The oldest step about `path`: its state before the run.
    fn first_step(&self, path: &Path) -> Option<&'a (Step, Option<Vec<u8>>)> {
        self.journal?.steps.iter().find(|(s, _)| match s {
            Step::File { path: p, .. }
            | Step::CreatedDir { path: p }
            | Step::RemovedDir { path: p } => p == path,
        })
    }

    pub fn exists(&self, path: &Path) -> bool {
        match self.first_step(path) {
            Some((Step::File { before, .. }, _)) => before.is_some(),
            Some((Step::CreatedDir { .. }, _)) => false,
            Some((Step::RemovedDir { .. }, _)) => true,
            None => self.host.exists(path),
        }
    }

    pub fn read(&self, path: &Path) -> std::io::Result<Vec<u8>> {
        match self.first_step(path) {
            Some((Step::File { .. }, Some(data))) => Ok(data.clone()),
            Some(_) => Err(std::io::ErrorKind::NotFound.into()),
            None => self.host.read(path),
        }
    }

    pub fn mode(&self, path: &Path) -> std::io::Result<u32> {
        match self.first_step(path) {
            Some((
                Step::File {
                    before: Some(b), ..
                },
                _,
            )) => Ok(b.mode),
            Some(_) => Err(std::io::ErrorKind::NotFound.into()),
            None => self.host.mode(path),
        }
    }

    /// Owner of a file; a file the rollback writes back belongs to root.
    pub fn owner(&self, path: &Path) -> std::io::Result<(u32, u32)> {
        match self.first_step(path) {
            Some((
                Step::File {
                    before: Some(_), ..
                },
                _,
            )) => Ok((0, 0)),
            Some(_) => Err(std::io::ErrorKind::NotFound.into()),
            None => self.host.owner(path),
        }
    }

    /// Whether `path` is a symbolic link (never one the journal restores).
    pub fn is_link(&self, path: &Path) -> bool {
        self.first_step(path).is_none() && self.host.read_link(path).is_ok()
    }

    /// What `kver` resolves `name` to: asked of the host, or, after a
    /// rollback, what it resolved when the rolled-back run planned.
    pub fn resolved(&self, kver: &str, name: &str) -> Result<Resolved> {
        let Some(intent) = self.journal.and_then(|j| j.intent.as_ref()) else {
            return Resolved::read(self.host, kver, name, Lookup::Auto);
        };
        Ok(match &intent.before {
            Before::File(path) => match self.first_step(path) {
                Some((Step::File { .. }, Some(data))) => Resolved::predicted(kver, path, data),
                _ => Resolved::of(self.host, kver, Resolution::File(path.clone())),
            },
            Before::Builtin => Resolved::of(self.host, kver, Resolution::Builtin),
            Before::NotFound => Resolved::of(self.host, kver, Resolution::NotFound),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn depmod_temporaries_are_recognised() {
        assert!(is_depmod_temporary(
            "modules.dep.bin.1234.567890.1700000000"
        ));
        assert!(is_depmod_temporary("modules.alias.12.0.1"));
        for other in [
            "modules.dep",
            "modules.dep.bin",
            "modules.order",
            "modules.builtin.alias.bin",
            "modules.dep.1.2",
            "modules.dep.bin.1.x.3",
            "aacraid.ko.1.2.3",
        ] {
            assert!(!is_depmod_temporary(other), "{other}");
        }
    }
}
