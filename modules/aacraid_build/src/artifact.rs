//! The artifact `aacraid_build` writes and `kmod_update` installs: one
//! reproducible `.tar.gz` per kernel, named `<name>-<version>-<kernel>.tgz`,
//! holding, in this order,
//!
//! - `manifest.json`:
//!   ```json
//!   {"format": 1, "name": "aacraid", "version": "1.2.1.41024",
//!    "kernel": "6.1.0-56-amd64", "arch": "x86_64",
//!    "files": [{"file": "aacraid.ko", "module": "aacraid", "size": 337000,
//!               "sha256": "…", "version": "1.2-1.41024dkms",
//!               "srcversion": "…", "vermagic": "6.1.0-56-amd64 SMP …"}]}
//!   ```
//! - each built module file, as DKMS built it (`aacraid.ko`, or
//!   `aacraid.ko.xz` where DKMS compresses), at the top level.
//!
//! Entries are owned by 0:0 with mtime 0, so the same build always gives
//! the same bytes: an artifact is rewritten only when its content changes.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use linux_host::archive;
use linux_host::kmod::{self, ModInfo};
use linux_host::Host;
use serde::Serialize;
use serde_json::json;

/// What the plan says about one kernel's artifact.
#[derive(Clone, Debug, Serialize)]
pub struct Planned {
    /// Where it goes.
    pub path: PathBuf,
    /// Whether it will be (re)written.
    pub write: bool,
    /// Why, or why not.
    pub reason: &'static str,
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

/// `<dir>/<name>-<version>-<kernel>.tgz`.
pub fn path(dir: &Path, name: &str, version: &str, kernel: &str) -> PathBuf {
    dir.join(format!("{name}-{version}-{kernel}.tgz"))
}

/// Decides whether the artifact must be written. When the module is about
/// to be built its content is not known yet, so it will be.
#[allow(clippy::too_many_arguments)]
pub fn plan(
    host: &Host,
    dir: &Path,
    name: &str,
    version: &str,
    kernel: &str,
    arch: &str,
    modules: &[String],
    will_build: bool,
) -> Result<Planned> {
    let target = path(dir, name, version, kernel);
    let (write, reason) = if will_build {
        (true, "the module is built by this run")
    } else {
        let fresh = contents(host, name, version, kernel, arch, modules)?;
        match host.read(&target) {
            Ok(existing) if existing == fresh => (false, "current"),
            Ok(_) => (true, "content differs"),
            Err(_) => (true, "missing"),
        }
    };
    Ok(Planned {
        path: target,
        write,
        reason,
    })
}

/// Writes the artifact if its content differs from what is there.
pub fn write(
    host: &Host,
    dir: &Path,
    name: &str,
    version: &str,
    kernel: &str,
    modules: &[String],
) -> Result<Written> {
    let target = path(dir, name, version, kernel);
    let fresh = contents(host, name, version, kernel, std::env::consts::ARCH, modules)?;
    let written = host.read(&target).ok().as_ref() != Some(&fresh);
    if written {
        host.create_dir_all(dir)?;
        host.write_atomic(&target, &fresh, 0o644)?;
    }
    Ok(Written {
        sha256: kmod::sha256_hex(&fresh),
        path: target,
        written,
    })
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

/// The module files DKMS built for `kernel`, one per name in `modules`.
pub fn built(
    host: &Host,
    name: &str,
    version: &str,
    kernel: &str,
    arch: &str,
    modules: &[String],
) -> Result<Vec<Built>> {
    let dir = PathBuf::from(format!(
        "/var/lib/dkms/{name}/{version}/{kernel}/{arch}/module"
    ));
    let listing = host.read_dir(&dir).with_context(|| {
        format!(
            "no DKMS build of {name} {version} for kernel {kernel} in {}",
            dir.display()
        )
    })?;
    let mut files = Vec::new();
    for module in modules {
        let entry = listing
            .iter()
            .find(|e| {
                kmod::module_name_of_file(&e.name).as_deref() == Some(&kmod::normalize(module))
            })
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

/// The artifact's bytes, from the modules DKMS built for `kernel`.
fn contents(
    host: &Host,
    name: &str,
    version: &str,
    kernel: &str,
    arch: &str,
    modules: &[String],
) -> Result<Vec<u8>> {
    let files = built(host, name, version, kernel, arch, modules)?;
    let manifest = json!({
        "format": 1,
        "name": name,
        "version": version,
        "kernel": kernel,
        "arch": arch,
        "files": files.iter().map(|b| json!({
            "file": b.file,
            "module": b.module,
            "size": b.data.len(),
            "sha256": kmod::sha256_hex(&b.data),
            "version": b.info.version,
            "srcversion": b.info.srcversion,
            "vermagic": b.info.vermagic,
        })).collect::<Vec<_>>(),
    });
    let manifest = serde_json::to_vec_pretty(&manifest)?;
    let mut entries: Vec<(&str, u32, &[u8])> = vec![("manifest.json", 0o644, &manifest)];
    for b in &files {
        entries.push((&b.file, 0o644, &b.data));
    }
    archive::write_tar_gz(&entries)
}
