//! The result of a run (or of check mode's prediction): the package, what
//! happened to its tree in `/usr/src` and to leftover staging folders, and
//! per kernel the DKMS state before and after, the steps, the artifact and
//! what the kernel resolves afterwards; plus the diff and a message for
//! anything repaired or replaced.

use std::collections::BTreeMap;
use std::path::PathBuf;

use ansible_protocol::{Diff, Response};
use formats::dkms::State as Dkms;
use linux_host::kmod::Resolved;
use serde::Serialize;

use crate::artifact::{Planned, Written};
use crate::plan::{KernelPlan, Plan, Steps};
use crate::tree::{Action, Shown};

/// The module's return values (documented in the sidecar's RETURN).
#[derive(Debug, Serialize)]
pub struct Return {
    pub name: String,
    pub version: String,
    /// What the source was.
    pub source: Option<String>,
    /// Whether the run put the source tree in `/usr/src`.
    pub source_installed: bool,
    /// The tree in `/usr/src` and what the run does with it.
    pub source_tree: Option<Shown>,
    /// Staging folders of killed runs that the run removes.
    pub staging_removed: Vec<PathBuf>,
    /// Whether the run removes every DKMS build of this version first
    /// (`dkms remove --all`) because it came from another tree.
    pub discarded: bool,
    /// Whether the run added the version to the DKMS tree.
    pub added: bool,
    pub kernels: Vec<KernelResult>,
}

/// One kernel's part of the result.
#[derive(Debug, Serialize)]
pub struct KernelResult {
    #[serde(flatten)]
    pub steps: Steps,
    /// The artifact as planned (check mode) or as written.
    pub artifact: Option<Artifact>,
    /// What the kernel resolves for the module after a real run.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub module: Option<ModuleNow>,
}

/// An artifact in a result.
#[derive(Debug, Serialize)]
#[serde(untagged)]
pub enum Artifact {
    /// What check mode expects.
    Planned(Planned),
    /// What the run wrote (or found current).
    Written(Written),
}

/// What a kernel resolves for the module after the run.
#[derive(Debug, Serialize)]
#[serde(untagged)]
pub enum ModuleNow {
    /// The resolution; `resolved` is the path, `(builtin)` or `(none)`.
    Resolved {
        resolved: String,
        #[serde(flatten)]
        now: Box<Resolved>,
    },
    /// Why it could not be told.
    Error { error: String },
}

impl KernelResult {
    /// The result of `k` as planned.
    pub fn planned(k: KernelPlan) -> KernelResult {
        KernelResult {
            steps: k.steps,
            artifact: k.artifact.map(Artifact::Planned),
            module: None,
        }
    }
}

/// The response for `plan` with its kernels' results.
pub fn report(plan: &Plan, kernels: Vec<KernelResult>, changed: bool) -> Response<Return> {
    let side = |pick: fn(&Steps) -> &Dkms| -> BTreeMap<&str, &Dkms> {
        kernels
            .iter()
            .map(|k| (k.steps.kernel.as_str(), pick(&k.steps)))
            .collect()
    };
    let header = format!("dkms {}/{}", plan.name, plan.version);
    let diff = Diff::json(&header, &side(|s| &s.before), &side(|s| &s.after));
    Response {
        changed,
        msg: message(plan, &kernels),
        diff: Some(diff),
        warnings: Vec::new(),
        values: Return {
            name: plan.name.clone(),
            version: plan.version.clone(),
            source: plan.source_described.clone(),
            source_installed: plan
                .tree
                .as_ref()
                .is_some_and(|t| matches!(t.shown.action, Action::Installed | Action::Replaced)),
            source_tree: plan.tree.as_ref().map(|t| t.shown.clone()),
            staging_removed: [&plan.leftovers[..], &plan.artifact_leftovers[..]].concat(),
            discarded: plan.discard,
            added: plan.add,
            kernels,
        },
    }
}

/// What a reader must know beyond the steps: a tree replaced or changed,
/// builds discarded, installs repaired, staging folders removed.
fn message(plan: &Plan, kernels: &[KernelResult]) -> Option<String> {
    let mut said = Vec::new();
    if let Some(t) = &plan.tree {
        let shown = t.shown.path.display();
        let why = t.shown.differences.join("; ");
        match t.shown.action {
            Action::Replaced => said.push(format!(
                "source: replaced, the package's sources differ from {shown} ({why})"
            )),
            Action::Changed => said.push(format!("source: changed in place, {why}")),
            Action::Installed if plan.discard => said.push(format!(
                "source: {shown} was missing while dkms knew the version"
            )),
            _ => {}
        }
    }
    if plan.discard {
        said.push(format!(
            "dkms remove --all discards every build of {} {} (every kernel), then it is built again for {}",
            plan.name,
            plan.version,
            kernels
                .iter()
                .map(|k| k.steps.kernel.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        ));
    }
    for k in kernels {
        if let Some(why) = &k.steps.repair {
            said.push(format!(
                "repair: {why}; reinstall (dkms uninstall, then install)"
            ));
        }
    }
    if !plan.artifact_leftovers.is_empty() {
        said.push(format!(
            "temporary artifacts left by killed runs are removed: {}",
            joined(&plan.artifact_leftovers)
        ));
    }
    if !plan.leftovers.is_empty() {
        said.push(format!(
            "staging folders left by killed runs are removed: {}",
            joined(&plan.leftovers)
        ));
    }
    (!said.is_empty()).then(|| said.join("; "))
}

/// Paths as a message lists them.
fn joined(paths: &[PathBuf]) -> String {
    paths
        .iter()
        .map(|p| p.display().to_string())
        .collect::<Vec<_>>()
        .join(", ")
}
