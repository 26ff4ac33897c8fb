//! Deciding what the run does: where the source comes from, whether the
//! version must be added, and per kernel which DKMS steps and artifact
//! writes are due. Nothing is written here.

use std::path::{Path, PathBuf};

use anyhow::{bail, Result};
use formats::dkms::{self, State as Dkms};
use formats::modinfo::validate_name;
use linux_host::kernel::{self, KernelSpec};
use linux_host::{Cmd, Host};
use serde::Serialize;

use crate::artifact::{self, Build};
use crate::options::{agree, Options, State};
use crate::source::{self, Install, Source};

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
}

/// One kernel's part of the plan.
#[derive(Debug)]
pub struct KernelPlan {
    pub steps: Steps,
    pub artifact: Option<artifact::Planned>,
}

/// Everything decided before the first change.
pub struct Plan {
    pub(crate) name: String,
    pub(crate) version: String,
    pub(crate) modules: Vec<String>,
    pub(crate) install_source: Option<Install>,
    pub(crate) source_described: Option<String>,
    pub(crate) add: bool,
    pub(crate) remove_all: bool,
    pub(crate) kernels: Vec<KernelPlan>,
    pub(crate) artifacts_dir: Option<PathBuf>,
    pub(crate) mkrpm: bool,
    pub(crate) force: bool,
    pub(crate) state: State,
}

impl Plan {
    /// The build of this package for `kernel`.
    pub fn build<'a>(&'a self, kernel: &'a str) -> Build<'a> {
        Build {
            name: &self.name,
            version: &self.version,
            kernel,
            modules: &self.modules,
        }
    }

    /// Whether the run changes anything.
    pub fn changed(&self) -> bool {
        self.install_source.is_some()
            || self.add
            || self.remove_all
            || self.mkrpm
            || self.kernels.iter().any(|k| {
                let s = &k.steps;
                s.build || s.install || s.remove || k.artifact.as_ref().is_some_and(|a| a.write)
            })
    }
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
    let artifacts_dir = options.artifacts_dir.as_ref().map(PathBuf::from);
    if let Some(dir) = &artifacts_dir {
        if !dir.is_absolute() {
            bail!(
                "artifacts_dir must be an absolute path, got {}",
                dir.display()
            );
        }
    }
    let mut plans = Vec::new();
    for k in &kernels {
        let before = state_of(&status, &version, k);
        let done = matches!(before, Dkms::Built | Dkms::Installed);
        let (build, install, remove) = match options.state {
            State::Absent => (false, false, !matches!(before, Dkms::Absent | Dkms::Added)),
            State::Built => (!done, false, false),
            State::Installed => (!done, before != Dkms::Installed, false),
        };
        let after = match options.state {
            State::Absent if before == Dkms::Absent => Dkms::Absent,
            State::Absent => Dkms::Added,
            State::Built if before == Dkms::Installed => Dkms::Installed,
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
            },
            artifact,
        });
    }
    // `dkms remove --all` covers every kernel at once.
    let remove_all = options.state == State::Absent && options.kernels.is_empty() && added;
    if remove_all {
        plans.iter_mut().for_each(|p| p.steps.remove = false);
    }
    let (install_source, source_described) = match source {
        Some(s) => {
            let install = match s.install {
                Install::Present => None,
                _ if options.state == State::Absent => None,
                other => Some(other),
            };
            (install, Some(s.described))
        }
        None => (None, None),
    };
    Ok(Plan {
        add: options.state != State::Absent && !added,
        name,
        version,
        modules,
        install_source,
        source_described,
        remove_all,
        kernels: plans,
        artifacts_dir,
        mkrpm: options.mkrpm && options.state != State::Absent,
        force: options.force,
        state: options.state,
    })
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

/// Where `version` stands for `kernel`: installed-weak counts as installed,
/// and an install DKMS itself flags as differing from the build (it
/// skipped the copy) counts as built.
fn state_of(status: &[dkms::Entry], version: &str, kernel: &str) -> Dkms {
    if let Some(e) = status.iter().find(|e| e.kernel.as_deref() == Some(kernel)) {
        return match &e.state {
            Dkms::Installed if e.built_differs_from_installed => Dkms::Built,
            Dkms::InstalledWeak => Dkms::Installed,
            other => other.clone(),
        };
    }
    if status.iter().any(|e| e.version == version) {
        Dkms::Added
    } else {
        Dkms::Absent
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
