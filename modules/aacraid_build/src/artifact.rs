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
use formats::modsig;
use linux_host::{Cmd, Host};
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
    /// How the artifact's modules are signed, when they are.
    pub signing: Option<&'a Signing>,
}

/// Signing the artifacts' modules with the kernel's `sign-file`.
#[derive(Debug)]
pub struct Signing {
    /// The private key (PEM), passed to `sign-file` by path only.
    pub key: PathBuf,
    /// The certificate (PEM or DER).
    pub cert: PathBuf,
    /// The digest algorithm.
    pub hash: String,
    /// What a signature made with the certificate names as its signer
    /// (`formats::modsig::certificate_names`).
    pub signer: Option<String>,
    /// And as its key: the certificate's serial number.
    pub key_id: String,
}

/// Where a kernel's build files hold `sign-file`: its `build` link, Debian's
/// and RHEL's headers folders.
pub fn sign_file_candidates(kernel: &str) -> [String; 3] {
    [
        format!("/lib/modules/{kernel}/build/scripts/sign-file"),
        format!("/usr/src/linux-headers-{kernel}/scripts/sign-file"),
        format!("/usr/src/kernels/{kernel}/scripts/sign-file"),
    ]
}

/// The first `sign-file` of `kernel` that only root can replace.
pub fn sign_file(host: &Host, kernel: &str) -> Result<String> {
    let candidates = sign_file_candidates(kernel);
    let mut refused = Vec::new();
    for path in &candidates {
        match host.find_program(path) {
            Ok(_) => return Ok(path.clone()),
            Err(e) => refused.extend(e.refused),
        }
    }
    let mut message = format!(
        "no sign-file for kernel {kernel} (looked for {}): install the kernel's headers",
        candidates.join(", ")
    );
    if !refused.is_empty() {
        message.push_str(&format!("; not run: {}", refused.join("; ")));
    }
    anyhow::bail!(message)
}

/// What the artifact will hold, as far as it can be known without signing.
enum Fresh {
    /// These bytes.
    Bytes(Vec<u8>),
    /// These modules, once signed.
    Unsigned(Vec<Built>),
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
            let existing = host.read(&target).ok();
            let (fresh, sha256) = match self.fresh(host, existing.as_deref())? {
                Fresh::Bytes(bytes) => {
                    let sha256 = Some(sha256_hex(&bytes));
                    (Some(bytes), sha256)
                }
                Fresh::Unsigned(_) => (None, None),
            };
            match existing {
                Some(existing) if fresh.as_ref() == Some(&existing) => (false, "current", sha256),
                Some(_) => (true, "content differs", sha256),
                None => (true, "missing", sha256),
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
        let existing = host.read(&target).ok();
        let fresh = match self.fresh(host, existing.as_deref())? {
            Fresh::Bytes(bytes) => bytes,
            Fresh::Unsigned(built) => {
                let signed = self.sign(host, built)?;
                self.contents_of(&signed)?
            }
        };
        let written = existing.as_ref() != Some(&fresh);
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

    /// The artifact's bytes from the modules DKMS built; with signing, from
    /// the modules the `existing` artifact holds when they are those
    /// modules signed with this certificate and digest (signing again would
    /// give the same bytes, or with a randomised scheme equivalent ones),
    /// else the modules that are still to be signed.
    fn fresh(&self, host: &Host, existing: Option<&[u8]>) -> Result<Fresh> {
        let built = self.built(host)?;
        let Some(signing) = self.signing else {
            return Ok(Fresh::Bytes(self.contents_of(&built)?));
        };
        match existing.and_then(|bytes| signed_as(bytes, &built, signing)) {
            Some(signed) => Ok(Fresh::Bytes(self.contents_of(&signed)?)),
            None => Ok(Fresh::Unsigned(built)),
        }
    }

    /// `built` signed with the kernel's `sign-file`, each copy stripped of
    /// any signature DKMS gave it first, in a folder only root can enter.
    fn sign(&self, host: &Host, built: Vec<Built>) -> Result<Vec<Built>> {
        let Some(signing) = self.signing else {
            return Ok(built);
        };
        let program = sign_file(host, self.kernel)?;
        let stage = host.private_dir(Path::new(crate::tree::SRC_ROOT), crate::tree::STAGING)?;
        let mut signed = Vec::with_capacity(built.len());
        for b in built {
            if !b.file.ends_with(".ko") {
                anyhow::bail!(
                    "cannot sign {}: DKMS compressed it; sign it in DKMS (its sign_file and mok settings) \
                     instead of with sign_key",
                    b.file
                );
            }
            let unsigned = modsig::without_signature(&b.data)
                .with_context(|| format!("{}: its signature trailer is damaged", b.file))?;
            let file = stage.path.join(&b.file);
            host.write_atomic_as_root(&file, unsigned, 0o600)?;
            host.run_ok(
                &Cmd::new(&program)
                    .arg(&signing.hash)
                    .arg(&signing.key)
                    .arg(&signing.cert)
                    .arg(&file),
            )
            .with_context(|| format!("cannot sign {} for kernel {}", b.file, self.kernel))?;
            let data = host.read(&file)?;
            let info = ModInfo::from_bytes(data.clone())?;
            if !signed_by(&info, signing) {
                anyhow::bail!(
                    "{program} signed {} but the module does not carry a signature by {:?} (key {})",
                    b.file,
                    signing.signer.as_deref().unwrap_or("an unnamed signer"),
                    signing.key_id
                );
            }
            signed.push(Built { data, info, ..b });
        }
        Ok(signed)
    }

    /// The artifact's bytes when `files` are its modules.
    fn contents_of(&self, files: &[Built]) -> Result<Vec<u8>> {
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
        for b in files {
            entries.push((&b.file, 0o644, &b.data));
        }
        archive::write_tar_gz(&entries)
    }
}

/// The modules of the artifact `bytes` when each is the module of `built`
/// signed as `signing` says; `None` otherwise.
fn signed_as(bytes: &[u8], built: &[Built], signing: &Signing) -> Option<Vec<Built>> {
    let entries = archive::read_tar_gz(bytes, archive::Links::Refuse).ok()?;
    built
        .iter()
        .map(|b| {
            let entry = entries.iter().find(|e| e.path == b.file)?;
            let info = ModInfo::from_bytes(entry.data.clone()).ok()?;
            let same =
                modsig::without_signature(&entry.data)? == modsig::without_signature(&b.data)?;
            (same && signed_by(&info, signing)).then(|| Built {
                file: b.file.clone(),
                module: b.module.clone(),
                data: entry.data.clone(),
                info,
            })
        })
        .collect()
}

fn signed_by(info: &ModInfo, signing: &Signing) -> bool {
    info.signature.as_ref().is_some_and(|s| {
        s.error.is_none()
            && s.signer == signing.signer
            && s.key_id.as_deref() == Some(signing.key_id.as_str())
            && s.hash_algo.as_deref() == Some(signing.hash.as_str())
    })
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
