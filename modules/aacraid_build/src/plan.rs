//! Deciding what the run does: the locks, leftover staging folders,
//! whether the tree in `/usr/src` matches the package, whether the version
//! must be added (or its builds discarded first), and per kernel which
//! DKMS steps, repairs and artifact writes are due. Nothing is written
//! here.
//!
//! Lock order: `/usr/src` (one aacraid_build run at a time), then the
//! kernels' module folders in path order (`kernel::lock_trees`, as
//! kmod_update and initramfs_regen take them), held until the run ends.

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context as _, Result};
use formats::dkms::{self, State as Dkms};
use formats::modinfo::{sha256_hex, validate_name};
use linux_host::kernel::{self, KernelSpec};
use linux_host::kmod::{Lookup, Resolved};
use linux_host::{Cmd, DirLock, Host};
use serde::Serialize;

use crate::artifact::{self, Build, Signing};
use crate::options::{agree, Options, State};
use crate::source::{self, Rpm, Source};
use crate::tree::{self, Action, Shown, LIST, SRC_ROOT};

/// The DKMS steps for one kernel, and where they take it.
#[derive(Clone, Debug, Serialize)]
pub struct Steps {
    pub kernel: String,
    /// Where DKMS stands for this kernel now.
    pub before: Dkms,
    /// Where it will stand after the run.
    pub after: Dkms,
    pub build: bool,
    pub install: bool,
    pub remove: bool,
    /// Why an install DKMS reports as done is done again.
    pub repair: Option<String>,
}

/// One kernel's part of the plan.
#[derive(Debug)]
pub struct KernelPlan {
    pub steps: Steps,
    pub artifact: Option<artifact::Planned>,
}

/// How the tree in `/usr/src` is written.
pub enum Write {
    /// Not at all.
    Nothing,
    /// Only its checksum list (these bytes).
    List(Vec<u8>),
    /// Whole, from these files, then the list (see `tree::put`).
    Files {
        files: Vec<formats::cpio::Member>,
        list: Vec<u8>,
    },
    /// By `rpm -i` of the package, after the old tree is moved aside; then
    /// the list.
    Rpm { rpm: Rpm, list: Vec<u8> },
}

/// The tree's part of the plan.
pub struct TreePlan {
    pub shown: Shown,
    pub write: Write,
}

/// Everything decided before the first change.
pub struct Plan {
    pub(crate) name: String,
    pub(crate) version: String,
    pub(crate) modules: Vec<String>,
    pub(crate) leftovers: Vec<PathBuf>,
    /// Temporary artifact files killed runs left in `artifacts_dir`.
    pub(crate) artifact_leftovers: Vec<PathBuf>,
    pub(crate) tree: Option<TreePlan>,
    pub(crate) source_described: Option<String>,
    /// `dkms remove --all` first: what DKMS built came from another tree.
    pub(crate) discard: bool,
    pub(crate) add: bool,
    pub(crate) remove_all: bool,
    pub(crate) kernels: Vec<KernelPlan>,
    pub(crate) artifacts_dir: Option<PathBuf>,
    pub(crate) signing: Option<Signing>,
    pub(crate) mkrpm: bool,
    pub(crate) force: bool,
    pub(crate) state: State,
    pub(crate) _locks: Vec<DirLock>,
}

impl Plan {
    /// The build of this package for `kernel`.
    pub fn build<'a>(&'a self, kernel: &'a str) -> Build<'a> {
        Build {
            name: &self.name,
            version: &self.version,
            kernel,
            modules: &self.modules,
            signing: self.signing.as_ref(),
        }
    }

    /// Whether the run changes anything.
    pub fn changed(&self) -> bool {
        self.tree
            .as_ref()
            .is_some_and(|t| t.shown.action != Action::Current)
            || !self.leftovers.is_empty()
            || !self.artifact_leftovers.is_empty()
            || self.discard
            || self.add
            || self.remove_all
            || self.mkrpm
            || self.kernels.iter().any(|k| {
                let s = &k.steps;
                s.build || s.install || s.remove || k.artifact.as_ref().is_some_and(|a| a.write)
            })
    }
}

/// The artifact signing `sign_key` and `sign_cert` ask for, checked: both
/// or neither, absolute, with artifacts to sign, a certificate that names
/// its signatures, a key that is a regular file root alone can read (it is
/// never read here, only named to `sign-file`), and a `sign-file` for
/// every kernel.
fn signing(
    host: &Host,
    o: &Options,
    artifacts: bool,
    kernels: &[String],
) -> Result<Option<Signing>> {
    let (key, cert) = match (&o.sign_key, &o.sign_cert) {
        (None, None) => return Ok(None),
        (Some(key), Some(cert)) => (PathBuf::from(key), PathBuf::from(cert)),
        _ => bail!("sign_key and sign_cert go together"),
    };
    if o.state == State::Absent {
        return Ok(None);
    }
    if !artifacts {
        bail!("sign_key and sign_cert sign the artifacts: set artifacts_dir");
    }
    for (option, path) in [("sign_key", &key), ("sign_cert", &cert)] {
        if !path.is_absolute() {
            bail!("{option} must be an absolute path, got {}", path.display());
        }
    }
    let meta = host
        .symlink_metadata(&key)
        .with_context(|| format!("sign_key {}", key.display()))?;
    if !meta.is_file() || meta.mode() & 0o077 != 0 || meta.uid() != 0 {
        bail!(
            "sign_key {} must be a regular file that only root can read (owner uid {}, mode {:o})",
            key.display(),
            meta.uid(),
            meta.mode() & 0o7777
        );
    }
    let der = host
        .read_input(&cert, 1 << 20)
        .with_context(|| format!("cannot read sign_cert {}", cert.display()))?;
    let (signer, key_id) = formats::modsig::certificate_names(&der)
        .with_context(|| format!("sign_cert {} is not an X.509 certificate", cert.display()))?;
    for k in kernels {
        artifact::sign_file(host, k)?;
    }
    Ok(Some(Signing {
        key,
        cert,
        hash: o.sign_hash.name().to_string(),
        signer,
        key_id,
    }))
}

/// Reads the source and DKMS's status; decides every step.
pub fn plan(options: Options, host: &Host) -> Result<Plan> {
    if !options.remote_src || options.fetch_dir.is_some() {
        return Err(ansible_protocol::needs_action_plugin(&[
            "remote_src: false",
            "fetch_dir",
        ]));
    }
    host.find_program("dkms").map_err(|e| {
        anyhow::anyhow!("dkms is not installed on this host ({e}): install the dkms package")
    })?;
    let module_lock = host.lock_dir(Path::new(SRC_ROOT))?;
    let leftovers = tree::leftovers(host)?;
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
    validate_name(&name)?;
    let modules = source
        .as_ref()
        .map(|s| s.modules.clone())
        .unwrap_or_else(|| vec![name.clone()]);

    let status = dkms_status(host, &name, &version)?;
    let added = status.iter().any(|e| e.version == version);
    let kernels = select_kernels(host, &options.kernels, options.state)?;
    let mut locks = vec![module_lock];
    locks.extend(kernel::lock_trees(
        host,
        &lock_set(host, &kernels, &status),
    )?);
    let artifacts_dir = options.artifacts_dir.as_ref().map(PathBuf::from);
    if let Some(dir) = &artifacts_dir {
        if !dir.is_absolute() {
            bail!(
                "artifacts_dir must be an absolute path, got {}",
                dir.display()
            );
        }
    }
    let signing = signing(host, &options, artifacts_dir.is_some(), &kernels)?;
    let artifact_leftovers = match &artifacts_dir {
        Some(dir) => artifact::leftovers(host, dir, &name)?,
        None => Vec::new(),
    };
    let source_described = source.as_ref().map(|s| s.described.clone());
    let tree = match source {
        Some(s) if options.state != State::Absent => {
            Some(plan_tree(host, s, &dkms::source_dir(&name, &version))?)
        }
        _ => None,
    };
    // What DKMS built came from a tree that is no longer the package's.
    let discard = added
        && tree.as_ref().is_some_and(|t| {
            matches!(
                t.shown.action,
                Action::Installed | Action::Replaced | Action::Changed
            )
        });
    let mut plans = Vec::new();
    for k in &kernels {
        let entry = status.iter().find(|e| e.kernel.as_deref() == Some(k));
        let before = state_of(entry, added);
        let done = !discard && matches!(before, Dkms::Built | Dkms::Installed);
        let mut repair = None;
        let (build, install, remove) = match options.state {
            State::Absent => (false, false, !matches!(before, Dkms::Absent | Dkms::Added)),
            State::Built => (!done, false, false),
            State::Installed => {
                if !discard && before == Dkms::Installed {
                    repair = misinstalled(host, entry, &name, &version, k, &modules)?;
                }
                (
                    !done,
                    discard || before != Dkms::Installed || repair.is_some(),
                    false,
                )
            }
        };
        let after = match options.state {
            State::Absent if before == Dkms::Absent => Dkms::Absent,
            State::Absent => Dkms::Added,
            State::Built if before == Dkms::Installed && !discard => Dkms::Installed,
            State::Built => Dkms::Built,
            State::Installed => Dkms::Installed,
        };
        let artifact = match (&artifacts_dir, options.state) {
            (Some(dir), State::Built | State::Installed) => Some(
                Build {
                    name: &name,
                    version: &version,
                    kernel: k,
                    modules: &modules,
                    signing: signing.as_ref(),
                }
                .plan(host, dir, build)?,
            ),
            _ => None,
        };
        plans.push(KernelPlan {
            steps: Steps {
                kernel: k.clone(),
                before,
                after,
                build,
                install,
                remove,
                repair,
            },
            artifact,
        });
    }
    // `dkms remove --all` covers every kernel at once.
    let remove_all = options.state == State::Absent && options.kernels.is_empty() && added;
    if remove_all {
        plans.iter_mut().for_each(|p| p.steps.remove = false);
    }
    Ok(Plan {
        add: options.state != State::Absent && (!added || discard),
        name,
        version,
        modules,
        leftovers,
        artifact_leftovers,
        tree,
        source_described,
        discard,
        remove_all,
        kernels: plans,
        artifacts_dir,
        signing,
        mkrpm: options.mkrpm && options.state != State::Absent,
        force: options.force,
        state: options.state,
        _locks: locks,
    })
}

/// The kernels whose module folders the run may write: those asked for,
/// and those DKMS lists for this version (`dkms remove --all` reaches
/// them). A release DKMS prints is used only when it is a valid name of
/// an existing folder.
fn lock_set(host: &Host, kernels: &[String], status: &[dkms::Entry]) -> Vec<String> {
    let mut out = kernels.to_vec();
    for k in status.iter().filter_map(|e| e.kernel.as_ref()) {
        if !out.contains(k)
            && kernel::validate_release(k).is_ok()
            && host.is_dir(&kernel::modules_dir(k))
        {
            out.push(k.clone());
        }
    }
    out
}

/// Compares the tree in `/usr/src` with the package's files and decides
/// what to write.
fn plan_tree(host: &Host, source: Source, dir: &Path) -> Result<TreePlan> {
    host.refuse_links_below(Path::new(SRC_ROOT), dir)?;
    let want = tree::listing(&source.files);
    let list = tree::render(&want);
    let stored = || host.read(&dir.join(LIST)).ok();
    let (action, differences) = if !host.exists(dir) {
        (Action::Installed, Vec::new())
    } else if !host.is_dir(dir) {
        (
            Action::Replaced,
            vec![format!("{} is not a folder", dir.display())],
        )
    } else if source.in_place {
        match stored() {
            Some(s) if s == list => (Action::Current, Vec::new()),
            None => (Action::Adopted, Vec::new()),
            Some(_) => (
                Action::Changed,
                vec![format!(
                    "the tree's files differ from its checksum list {LIST}"
                )],
            ),
        }
    } else {
        let (have, mut differences) = tree::read(host, dir)?;
        differences.extend(tree::differences(&want, &have));
        if !differences.is_empty() {
            (Action::Replaced, tree::shorten(differences))
        } else if stored().as_ref() == Some(&list) {
            (Action::Current, Vec::new())
        } else {
            (Action::Adopted, Vec::new())
        }
    };
    let write = match action {
        Action::Current => Write::Nothing,
        Action::Adopted | Action::Changed => Write::List(list),
        Action::Installed | Action::Replaced => match source.rpm {
            Some(rpm) => Write::Rpm { rpm, list },
            None => Write::Files {
                files: source.files,
                list,
            },
        },
    };
    Ok(TreePlan {
        shown: Shown {
            path: dir.to_path_buf(),
            action,
            differences,
        },
        write,
    })
}

/// Why an install DKMS reports as done for `kernel` is not in effect: DKMS
/// itself sees a difference, or the kernel resolves a module to other
/// bytes than DKMS built (a run killed during `dkms install`, a file
/// removed or replaced by hand). `None` when it is.
fn misinstalled(
    host: &Host,
    entry: Option<&dkms::Entry>,
    name: &str,
    version: &str,
    kernel: &str,
    modules: &[String],
) -> Result<Option<String>> {
    let Some(entry) = entry else {
        return Ok(None);
    };
    if entry.state == Dkms::InstalledWeak {
        // A link to another kernel's build: that kernel's check covers it.
        return Ok(None);
    }
    let says = format!("dkms says {name} {version} is installed for kernel {kernel}");
    if entry.built_differs_from_installed {
        return Ok(Some(format!(
            "{says} but reports that the installed module differs from the one it built"
        )));
    }
    let build = Build {
        name,
        version,
        kernel,
        modules,
        signing: None,
    };
    for b in build.built(host)? {
        let resolved = Resolved::read(host, kernel, &b.module, Lookup::Modinfo)?;
        if resolved.sha256() == Some(sha256_hex(&b.data).as_str()) {
            continue;
        }
        let what = match &resolved.file {
            Some(f) if f.sha256.is_none() => "which is missing",
            Some(_) => "not the module dkms built",
            None => "not a file",
        };
        return Ok(Some(format!(
            "{says} but the kernel resolves {} to {}, {what}",
            b.module,
            resolved.describe()
        )));
    }
    Ok(None)
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

/// Where `version` stands for the kernel of `entry`: installed-weak
/// counts as installed; without an entry, added or absent.
fn state_of(entry: Option<&dkms::Entry>, added: bool) -> Dkms {
    match entry.map(|e| &e.state) {
        Some(Dkms::InstalledWeak) => Dkms::Installed,
        Some(other) => other.clone(),
        None if added => Dkms::Added,
        None => Dkms::Absent,
    }
}

/// The kernels to work on: `all` means the installed kernels with headers;
/// building needs each kernel installed with its headers.
fn select_kernels(host: &Host, wanted: &[KernelSpec], state: State) -> Result<Vec<String>> {
    let installed = kernel::installed(host)?;
    let has_headers = |k: &str| host.is_dir(&kernel::modules_dir(k).join("build"));
    let out = kernel::select(host, wanted, &installed, has_headers)?;
    if state == State::Absent {
        return Ok(out);
    }
    kernel::require_installed(&out, &installed)?;
    let redhat = host.exists(Path::new("/etc/redhat-release"));
    if let Some(k) = out.iter().find(|k| !has_headers(k)) {
        let package = if redhat {
            format!("kernel-devel-{k}")
        } else {
            format!("linux-headers-{k}")
        };
        bail!("kernel {k} has no headers (/lib/modules/{k}/build is missing): install {package}");
    }
    if out.is_empty() {
        bail!("no kernel to build for: no installed kernel has headers");
    }
    Ok(out)
}
