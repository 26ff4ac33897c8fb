//! The artifacts `aacraid_build` writes for `kmod_update`: one reproducible
//! `.tar.gz` per kernel, named by `formats::manifest::file_name`, holding
//! the manifest (`formats::manifest`, which documents the format) and then
//! each module file as DKMS built it, at the top level.
//!
//! Entries are owned by 0:0 with mtime 0, so the same build always gives
//! the same bytes: an artifact is rewritten only when its content changes.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use formats::archive;
use formats::dkms::{built_modules_dir, ARCH};
use formats::manifest::{self, Manifest, FORMAT};
use formats::modinfo::{module_name_of_file, normalize, sha256_hex, ModInfo};
use linux_host::Host;
use serde::Serialize;

/// What the plan says about one kernel's artifact.
#[derive(Clone, Debug, Serialize)]
pub struct Planned {
    /// Where it goes.
    pub path: PathBuf,
    /// Whether it will be (re)written.
    pub write: bool,
    /// Why, or why not.
    pub reason: &'static str,
    /// SHA-256 of its content, when known before the build (the module
    /// is not rebuilt by this run).
    pub sha256: Option<String>,
}

/// What was written (or found current).
#[derive(Clone, Debug, Serialize)]
pub struct Written {
    /// Artifact path.
    pub path: PathBuf,
    /// SHA-256 of the artifact.
    pub sha256: String,
    /// Whether this run wrote it.
    pub written: bool,
}

/// One DKMS build: a module package version for one kernel.
pub struct Build<'a> {
    /// DKMS package name.
    pub name: &'a str,
    /// DKMS package version.
    pub version: &'a str,
    /// Kernel release.
    pub kernel: &'a str,
    /// Modules the package builds.
    pub modules: &'a [String],
}

/// One module file DKMS built.
pub struct Built {
    /// File name (`aacraid.ko`, `aacraid.ko.xz`).
    pub file: String,
    /// Module name.
    pub module: String,
    /// The bytes.
    pub data: Vec<u8>,
    /// Its `.modinfo`.
    pub info: ModInfo,
}

impl Build<'_> {
    /// `<dir>/<name>-<version>-<kernel>.tgz`.
    pub fn path(&self, dir: &Path) -> PathBuf {
        dir.join(manifest::file_name(self.name, self.version, self.kernel))
    }

    /// Decides whether the artifact must be written. When the module is
    /// about to be built its content is not known yet, so it will be.
    pub fn plan(&self, host: &Host, dir: &Path, will_build: bool) -> Result<Planned> {
        let target = self.path(dir);
        let (write, reason, sha256) = if will_build {
            (true, "the module is built by this run", None)
        } else {
            let fresh = self.contents(host)?;
            let sha256 = Some(sha256_hex(&fresh));
            match host.read(&target) {
                Ok(existing) if existing == fresh => (false, "current", sha256),
                Ok(_) => (true, "content differs", sha256),
                Err(_) => (true, "missing", sha256),
            }
        };
        Ok(Planned {
            path: target,
            write,
            reason,
            sha256,
        })
    }

    /// Writes the artifact if its content differs from what is there.
    pub fn write(&self, host: &Host, dir: &Path) -> Result<Written> {
        let target = self.path(dir);
        let fresh = self.contents(host)?;
        let written = host.read(&target).ok().as_ref() != Some(&fresh);
        if written {
            host.create_dir_all(dir)?;
            host.write_atomic(&target, &fresh, 0o644)?;
        }
        Ok(Written {
            sha256: sha256_hex(&fresh),
            path: target,
            written,
        })
    }

    /// The module files DKMS built, one per name in `modules`.
    pub fn built(&self, host: &Host) -> Result<Vec<Built>> {
        let Build {
            name,
            version,
            kernel,
            ..
        } = self;
        let dir = built_modules_dir(name, version, kernel);
        let listing = host.read_dir(&dir).with_context(|| {
            format!(
                "no DKMS build of {name} {version} for kernel {kernel} in {}",
                dir.display()
            )
        })?;
        let mut files = Vec::new();
        for module in self.modules {
            let entry = listing
                .iter()
                .find(|e| module_name_of_file(&e.name).as_deref() == Some(&normalize(module)))
                .with_context(|| {
                    format!(
                        "DKMS built no {module} module for kernel {kernel} in {}",
                        dir.display()
                    )
                })?;
            let data = host.read(&entry.path)?;
            let info = ModInfo::from_bytes(data.clone())
                .with_context(|| format!("{} is not a kernel module", entry.path.display()))?;
            files.push(Built {
                file: entry.name.clone(),
                module: module.clone(),
                data,
                info,
            });
        }
        Ok(files)
    }

    /// The artifact's bytes, from the modules DKMS built.
    fn contents(&self, host: &Host) -> Result<Vec<u8>> {
        let files = self.built(host)?;
        let manifest = Manifest {
            format: FORMAT,
            name: self.name.to_string(),
            version: self.version.to_string(),
            kernel: self.kernel.to_string(),
            arch: ARCH.to_string(),
            files: files
                .iter()
                .map(|b| manifest::File {
                    file: b.file.clone(),
                    module: b.module.clone(),
                    size: b.data.len() as u64,
                    sha256: sha256_hex(&b.data),
                    version: b.info.version.clone(),
                    srcversion: b.info.srcversion.clone(),
                    vermagic: b.info.vermagic.clone(),
                    signer: b.info.signature.as_ref().and_then(|s| s.signer.clone()),
                    key_id: b.info.signature.as_ref().and_then(|s| s.key_id.clone()),
                })
                .collect(),
        }
        .to_bytes()?;
        let mut entries: Vec<(&str, u32, &[u8])> = vec![(manifest::MEMBER, 0o644, &manifest)];
        for b in &files {
            entries.push((&b.file, 0o644, &b.data));
        }
        archive::write_tar_gz(&entries)
    }
}

/// The temporary artifact files killed runs left in `dir`
/// (`.<name>-<version>-<kernel>.tgz.tmp<pid>.<n>`, what an interrupted
/// atomic write leaves): regular files of this package's artifacts only.
/// Runs are serialised by the lock on `/usr/src`, so none is being written.
pub fn leftovers(host: &Host, dir: &Path, name: &str) -> Result<Vec<PathBuf>> {
    if !host.is_dir(dir) {
        return Ok(Vec::new());
    }
    Ok(host
        .read_dir(dir)
        .with_context(|| format!("cannot list {}", dir.display()))?
        .into_iter()
        .filter(|e| e.kind == linux_host::host::Kind::File && is_leftover_of(&e.name, name))
        .map(|e| e.path)
        .collect())
}

/// Whether `file` is `.<name>-<...>.tgz.tmp<pid>.<n>`.
fn is_leftover_of(file: &str, name: &str) -> bool {
    linux_host::host::temp_target(file)
        .is_some_and(|target| target.starts_with(&format!("{name}-")) && target.ends_with(".tgz"))
}

/// Removes a temporary artifact file a killed run left.
pub fn remove_leftover(host: &Host, path: &Path, name: &str) -> Result<()> {
    let file = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    if !is_leftover_of(&file, name) {
        anyhow::bail!(
            "{} is not a temporary artifact of aacraid_build",
            path.display()
        );
    }
    host.remove_file(path)
}
