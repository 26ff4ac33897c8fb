//! The result of a run (or of check mode's prediction): per kernel what
//! was done and what the kernel resolves before and after, plus the diff.

use std::collections::BTreeMap;
use std::path::PathBuf;

use ansible_protocol::{Diff, Response};
use linux_host::kmod::Resolved;
use serde::Serialize;

use crate::apply::Outcome;
use crate::options::State;
use crate::plan::{Action, KernelPlan, Plan, Recovered};

/// The module's return values (documented in the sidecar's RETURN).
#[derive(Debug, Serialize)]
pub struct Return {
    pub name: String,
    pub state: State,
    /// Where the installed module came from.
    pub source: Option<String>,
    pub kernels: Vec<KernelResult>,
    /// Kernels where a killed run was rolled back (or its finished journal
    /// removed) before this run's work.
    pub recovered: Vec<Recovered>,
}

/// One kernel's part of the result.
#[derive(Debug, Serialize)]
pub struct KernelResult {
    pub kernel: String,
    pub action: Action,
    pub reason: String,
    pub path: Option<PathBuf>,
    pub version: Option<String>,
    pub srcversion: Option<String>,
    pub sha256: Option<String>,
    /// The file the kernel resolves after the run, `(builtin)` or `(none)`.
    pub resolved: String,
    pub backup_file: Option<PathBuf>,
    pub before: Resolved,
    pub after: Resolved,
}

/// The response for `plan`, each kernel paired with what it resolves after
/// the run and the backup made for it.
pub fn report(plan: Plan, outcomes: Vec<Outcome>, warnings: Vec<String>) -> Response<Return> {
    let changed = plan.changed();
    let header = format!("module {} as resolved per kernel", plan.name);
    let before: BTreeMap<&str, &Resolved> = plan
        .kernels
        .iter()
        .map(|k| (k.kernel.as_str(), &k.before))
        .collect();
    let after: BTreeMap<&str, &Resolved> = plan
        .kernels
        .iter()
        .zip(&outcomes)
        .map(|(k, o)| (k.kernel.as_str(), &o.now))
        .collect();
    let diff = Diff::json(&header, &before, &after);
    let changes: Vec<String> = plan
        .kernels
        .iter()
        .filter(|k| k.action != Action::None)
        .map(|k| format!("{} {}", k.action.as_str(), k.kernel))
        .collect();
    let mut changes = changes;
    changes.splice(
        0..0,
        plan.recovered.iter().map(|r| match r.rolled_back {
            true => format!("roll back the interrupted run on {}", r.kernel),
            false => format!("remove the finished journal of {}", r.kernel),
        }),
    );
    let msg = if changes.is_empty() {
        format!("{}: nothing to do", plan.name)
    } else {
        format!("{}: {}", plan.name, changes.join(", "))
    };
    let installed = plan.source.as_ref();
    let kernels = plan
        .kernels
        .into_iter()
        .zip(outcomes)
        .map(|(k, o)| kernel_result(k, installed, o))
        .collect();
    let mut all_warnings = plan.warnings;
    all_warnings.extend(warnings);
    Response {
        changed,
        msg: Some(msg),
        diff: Some(diff),
        warnings: all_warnings,
        values: Return {
            name: plan.name,
            state: plan.state,
            source: plan.source.as_ref().map(|s| s.described.clone()),
            kernels,
            recovered: plan.recovered,
        },
    }
}

fn kernel_result(
    k: KernelPlan,
    installed: Option<&crate::source::Source>,
    Outcome { now, backup }: Outcome,
) -> KernelResult {
    KernelResult {
        kernel: k.kernel,
        action: k.action,
        reason: k.reason,
        path: k.path,
        version: installed.and_then(|s| s.info.version.clone()),
        srcversion: installed.and_then(|s| s.info.srcversion.clone()),
        sha256: installed.map(|s| s.sha256.clone()),
        resolved: now.describe(),
        backup_file: backup,
        before: k.before,
        after: now,
    }
}
