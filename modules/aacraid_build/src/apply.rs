//! Carrying the plan out: leftover staging folders removed, DKMS's builds
//! of a replaced tree discarded, the source tree into `/usr/src`, `dkms
//! add`, then per kernel `build`, `install` or a repairing reinstall
//! (checked: DKMS may skip the copy and still say it installed),
//! `remove`, and the artifacts.

use std::path::{Path, PathBuf};

use ansible_protocol::last_lines;
use anyhow::{bail, Context as _, Result};
use formats::dkms;
use formats::modinfo::{sha256_hex, Resolution};
use linux_host::kmod::{Lookup, ModuleFile, Resolved};
use linux_host::{Cmd, Host};

use crate::artifact;
use crate::options::State;
use crate::plan::{KernelPlan, Plan, Write};
use crate::report::{Artifact, KernelResult, ModuleNow};
use crate::tree::{self, LIST, STAGING};

/// Runs every planned step; returns each kernel's result.
pub fn apply(plan: &Plan, host: &Host) -> Result<Vec<KernelResult>> {
    for dir in &plan.leftovers {
        tree::remove_leftover(host, dir)?;
    }
    for file in &plan.artifact_leftovers {
        artifact::remove_leftover(host, file, &plan.name)?;
    }
    let base = |action: &str| {
        Cmd::new("dkms")
            .arg(action)
            .arg("-m")
            .arg(&plan.name)
            .arg("-v")
            .arg(&plan.version)
    };
    // Before the tree: a run killed in between then finds a tree that
    // differs and no build of it, and does both again.
    if plan.discard {
        host.run_ok(&base("remove").arg("--all"))?;
    }
    if let Some(t) = &plan.tree {
        put_source(host, &t.write, &t.shown.path)?;
    }
    if plan.add {
        let cmd = base("add");
        let out = host.run(&cmd)?;
        // Exit 3: the tree already holds this version (not an error).
        if !out.success() && out.rc != 3 {
            return Err(out.failure(&cmd).into());
        }
    }
    let mut results = Vec::new();
    for KernelPlan { steps: k, artifact } in &plan.kernels {
        if k.build {
            build(
                host,
                base("build").arg("-k").arg(&k.kernel),
                plan,
                &k.kernel,
            )?;
        }
        if k.install {
            if k.repair.is_some() {
                host.run_ok(&base("uninstall").arg("-k").arg(&k.kernel))?;
            }
            let mut cmd = base("install").arg("-k").arg(&k.kernel);
            if plan.force {
                cmd = cmd.arg("--force");
            }
            host.run_ok(&cmd).with_context(|| {
                format!(
                    "dkms could not install {} {} for kernel {}",
                    plan.name, plan.version, k.kernel
                )
            })?;
            verify_installed(host, plan, &k.kernel)?;
        }
        if k.remove {
            host.run_ok(&base("remove").arg("-k").arg(&k.kernel))?;
        }
        let artifact = match (&plan.artifacts_dir, artifact) {
            (Some(dir), Some(_)) => {
                Some(Artifact::Written(plan.build(&k.kernel).write(host, dir)?))
            }
            _ => None,
        };
        let module = (plan.state != State::Absent).then(|| module_now(host, &plan.name, &k.kernel));
        results.push(KernelResult {
            steps: k.clone(),
            artifact,
            module,
        });
    }
    if plan.remove_all {
        host.run_ok(&base("remove").arg("--all"))?;
    }
    if plan.mkrpm {
        let out = host.run_ok(&base("mkrpm"))?;
        let said = format!("{}{}", out.stdout, out.stderr);
        if said.contains("Unknown action") {
            bail!(
                "this dkms has no mkrpm (removed in dkms 3.0; it printed {:?}): use artifacts_dir to get one \
                 archive per kernel for kmod_update instead",
                said.trim()
            );
        }
    }
    Ok(results)
}

fn put_source(host: &Host, write: &Write, dir: &Path) -> Result<()> {
    match write {
        Write::Nothing => Ok(()),
        Write::List(list) => host.write_atomic_as_root(&dir.join(LIST), list, 0o644),
        Write::Files { files, list } => tree::put(host, dir, files, list),
        Write::Rpm { rpm, list } => {
            let parent = dir.parent().unwrap_or(Path::new(tree::SRC_ROOT));
            // rpm writes file by file: the old tree goes first, so that a
            // killed rpm leaves a tree without its list, replaced next run.
            if host.exists(dir) {
                let aside = host.private_dir(parent, STAGING)?;
                host.rename_durably(dir, &aside.path.join("old"))?;
            }
            // rpm runs the package's scriptlets as root: the file it reads
            // must be the one checked, in a folder no other user can enter.
            let staging = host.private_dir(parent, STAGING)?;
            let package = staging.path.join("package.rpm");
            host.write_atomic_as_root(&package, &rpm.bytes, 0o600)?;
            // --replacepkgs: the database may still list the package whose
            // tree was just moved aside.
            host.run_ok(&Cmd::new("rpm").arg("-i").arg("--replacepkgs").arg(&package))
                .with_context(|| format!("cannot install {} with rpm", rpm.file_name))?;
            host.write_atomic_as_root(&dir.join(LIST), list, 0o644)
        }
    }
}

/// Runs `dkms build`; a failure carries the tail of the build log.
fn build(host: &Host, cmd: Cmd, plan: &Plan, kernel: &str) -> Result<()> {
    let out = host.run(&cmd)?;
    if out.success() {
        return Ok(());
    }
    let failed = out.failure(&cmd);
    let said = format!("{}\n{}", failed.stdout, failed.stderr);
    // DKMS names its log after "Consult"; else the usual places.
    let named = said
        .split_whitespace()
        .skip_while(|w| *w != "Consult")
        .nth(1)
        .map(PathBuf::from);
    let tail = named
        .into_iter()
        .chain(dkms::make_logs(&plan.name, &plan.version, kernel))
        .find_map(|p| host.read_text(&p).ok().map(|t| (p, t)))
        .map(|(p, text)| format!("last lines of {}:\n{}", p.display(), last_lines(&text, 40)))
        .unwrap_or_else(|| format!("no make.log found; dkms said:\n{}", said.trim()));
    let context = format!(
        "dkms build of {} {} failed for kernel {kernel} (rc {}); {tail}",
        plan.name, plan.version, failed.rc
    );
    Err(anyhow::Error::new(failed).context(context))
}

/// DKMS 3.0.10 skips installing a module it deems not newer than the
/// kernel's own, yet exits 0 and calls it installed: check that the kernel
/// now resolves each module to the bytes DKMS built.
fn verify_installed(host: &Host, plan: &Plan, kernel: &str) -> Result<()> {
    for b in plan.build(kernel).built(host)? {
        let resolved = Resolved::read(host, kernel, &b.module, Lookup::Modinfo)?;
        let Resolution::File(path) = &resolved.resolution else {
            bail!(
                "after dkms install, kernel {kernel} resolves {} to {}",
                b.module,
                resolved.describe()
            );
        };
        if resolved.sha256() != Some(sha256_hex(&b.data).as_str()) {
            let theirs = ModuleFile::read(host, kernel, path);
            let hint = if plan.force {
                "something takes precedence over DKMS's copy (a depmod.d override or search order, or another \
                 copy of the module); raid_driver_facts shows every copy"
            } else {
                "dkms skips a module it does not consider newer than the kernel's own; set force: true to install \
                 it anyway"
            };
            bail!(
                "dkms install of {} {} for kernel {kernel} left {} in place (version {}), not the module it built \
                 (version {}): {hint}",
                plan.name,
                plan.version,
                path.display(),
                theirs.info.version.unwrap_or_default(),
                b.info.version.unwrap_or_default()
            );
        }
    }
    Ok(())
}

/// What the kernel now resolves for the module, after the run.
fn module_now(host: &Host, name: &str, kernel: &str) -> ModuleNow {
    match Resolved::read(host, kernel, name, Lookup::Modinfo) {
        Ok(now) => ModuleNow::Resolved {
            resolved: now.describe(),
            now: Box::new(now),
        },
        Err(e) => ModuleNow::Error {
            error: format!("{e:#}"),
        },
    }
}
