//! The result of a run (or of check mode's prediction): the package, and
//! per kernel the DKMS state before and after, the steps, the artifact and
//! what the kernel resolves afterwards; plus the diff.

use std::collections::BTreeMap;

use ansible_protocol::{Diff, Response};
use formats::dkms::State as Dkms;
use linux_host::kmod::Resolved;
use serde::Serialize;

use crate::artifact::{Planned, Written};
use crate::plan::{KernelPlan, Plan, Steps};

/// The module's return values (documented in the sidecar's RETURN).
#[derive(Debug, Serialize)]
pub struct Return {
    pub name: String,
    pub version: String,
    /// What the source was.
    pub source: Option<String>,
    /// Whether the run put the source tree in `/usr/src`.
    pub source_installed: bool,
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
        msg: None,
        diff: Some(diff),
        warnings: Vec::new(),
        values: Return {
            name: plan.name.clone(),
            version: plan.version.clone(),
            source: plan.source_described.clone(),
            source_installed: plan.install_source.is_some(),
            added: plan.add,
            kernels,
        },
    }
}
