//! Every change a run makes, recorded as it is made, so that a failure
//! half way (a full disk, a resolution check that another file wins) can
//! put the host back exactly as it was.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use linux_host::Host;

/// The changes made so far, oldest first.
#[derive(Default)]
pub struct Undo {
    steps: Vec<Step>,
}

enum Step {
    /// A file was written; `previous` is what was there (bytes, mode).
    Wrote {
        path: PathBuf,
        previous: Option<(Vec<u8>, u32)>,
    },
    /// A file was removed.
    Removed {
        path: PathBuf,
        data: Vec<u8>,
        mode: u32,
    },
    CreatedDir(PathBuf),
    RemovedDir(PathBuf),
}

fn snapshot(host: &Host, path: &Path) -> Result<Option<(Vec<u8>, u32)>> {
    if !host.exists(path) {
        return Ok(None);
    }
    let data = host
        .read(path)
        .with_context(|| format!("cannot read {}", path.display()))?;
    Ok(Some((data, host.mode(path)?)))
}

impl Undo {
    /// Writes a root-owned file atomically, remembering what it replaces.
    pub fn write(&mut self, host: &Host, path: &Path, data: &[u8], mode: u32) -> Result<()> {
        let previous = snapshot(host, path)?;
        host.write_atomic_as_root(path, data, mode)?;
        self.steps.push(Step::Wrote {
            path: path.to_path_buf(),
            previous,
        });
        Ok(())
    }

    /// Removes a file, remembering its content.
    pub fn remove(&mut self, host: &Host, path: &Path) -> Result<()> {
        let Some((data, mode)) = snapshot(host, path)? else {
            return Ok(());
        };
        host.remove_file(path)?;
        self.steps.push(Step::Removed {
            path: path.to_path_buf(),
            data,
            mode,
        });
        Ok(())
    }

    /// Creates the folders that do not exist yet, top down; returns those
    /// it created.
    pub fn create_dirs(&mut self, host: &Host, dirs: &[PathBuf]) -> Result<Vec<PathBuf>> {
        let mut created = Vec::new();
        for dir in dirs.iter().filter(|d| !host.exists(d)) {
            host.create_dir_all(dir)?;
            self.steps.push(Step::CreatedDir(dir.clone()));
            created.push(dir.clone());
        }
        Ok(created)
    }

    /// Removes a folder when it is empty; leaves it otherwise.
    pub fn remove_dir_if_empty(&mut self, host: &Host, dir: &Path) -> Result<()> {
        if host.read_dir(dir).is_ok_and(|entries| entries.is_empty()) {
            host.remove_dir(dir)?;
            self.steps.push(Step::RemovedDir(dir.to_path_buf()));
        }
        Ok(())
    }

    /// Reverts every step, newest first. Stops at the first failure.
    pub fn roll_back(self, host: &Host) -> Result<()> {
        for step in self.steps.into_iter().rev() {
            match step {
                Step::Wrote {
                    path,
                    previous: Some((data, mode)),
                }
                | Step::Removed { path, data, mode } => {
                    host.write_atomic_as_root(&path, &data, mode)?
                }
                Step::Wrote {
                    path,
                    previous: None,
                } => host.remove_file(&path)?,
                Step::CreatedDir(dir) => host.remove_dir(&dir)?,
                Step::RemovedDir(dir) => host.create_dir_all(&dir)?,
            }
        }
        Ok(())
    }
}
