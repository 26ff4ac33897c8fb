//! The result of a run (or of check mode's prediction): per kernel whether
//! its image was rebuilt, why, and the named modules inside it before and
//! after, plus the diff.

use std::collections::BTreeMap;
use std::path::PathBuf;

use ansible_protocol::{Diff, Response};
use serde::Serialize;

use crate::append::Appended;
use crate::options::{Method, Tool};
use crate::plan::{Inside, KernelPlan, Plan};

/// The module's return values (documented in the sidecar's RETURN).
#[derive(Debug, Serialize)]
pub struct Return {
    pub tool: Tool,
    pub method: Method,
    pub modules: Vec<String>,
    pub kernels: Vec<KernelResult>,
    /// Files and folders of killed runs removed (or that would be).
    pub removed_leftovers: Vec<PathBuf>,
}

/// One kernel's part of the result.
#[derive(Debug, Serialize)]
pub struct KernelResult {
    pub kernel: String,
    pub image: PathBuf,
    pub rebuilt: bool,
    pub reason: String,
    /// The named modules in the image after the run.
    pub modules: Vec<Inside>,
    /// The named modules in the image before the run.
    pub before: Vec<Inside>,
    pub backup_file: Option<PathBuf>,
    /// How long the rebuild took.
    pub seconds: Option<f64>,
    /// With `method: append`, the segment appended (null in check mode).
    pub appended: Option<Appended>,
}

impl KernelResult {
    /// The result for `k`, whose image now holds `modules`.
    pub fn new(
        k: &KernelPlan,
        rebuilt: bool,
        modules: Vec<Inside>,
        backup_file: Option<PathBuf>,
        seconds: Option<f64>,
        appended: Option<Appended>,
    ) -> KernelResult {
        KernelResult {
            kernel: k.kernel.clone(),
            image: k.image.clone(),
            rebuilt,
            reason: k.reason.clone(),
            modules,
            before: k.before.clone(),
            backup_file,
            seconds: seconds.map(|s| (s * 100.0).round() / 100.0),
            appended,
        }
    }
}

/// `image → {module → {path, version}}`, one side of the diff.
fn side(kernels: &[KernelResult], pick: fn(&KernelResult) -> &[Inside]) -> impl Serialize + '_ {
    #[derive(Serialize)]
    struct Shown<'a> {
        path: &'a Option<String>,
        version: &'a Option<String>,
    }
    kernels
        .iter()
        .map(|r| {
            let modules: BTreeMap<&str, Shown> = pick(r)
                .iter()
                .map(|m| {
                    (
                        m.name.as_str(),
                        Shown {
                            path: &m.path,
                            version: &m.version,
                        },
                    )
                })
                .collect();
            (r.image.display().to_string(), modules)
        })
        .collect::<BTreeMap<_, _>>()
}

/// The response for `plan` with its kernels' results, of a real run or of
/// check mode (`check`).
pub fn report(plan: Plan, kernels: Vec<KernelResult>, check: bool) -> Response<Return> {
    let removed = if check { "would remove" } else { "removed" };
    let done = match (plan.method, check) {
        (Method::Rebuild, false) => format!("rebuilt with {}", plan.tool.program()),
        (Method::Rebuild, true) => format!("would rebuild with {}", plan.tool.program()),
        (Method::Append, false) => "updated by appending a segment".to_string(),
        (Method::Append, true) => "would update by appending a segment".to_string(),
    };
    let rebuilt: Vec<String> = kernels
        .iter()
        .filter(|k| k.rebuilt)
        .map(|k| k.image.display().to_string())
        .collect();
    let header = "modules inside each image";
    let diff = Diff::json(
        header,
        &side(&kernels, |r| &r.before),
        &side(&kernels, |r| &r.modules),
    );
    let leftovers: Vec<PathBuf> = plan.leftovers.into_iter().map(|l| l.path).collect();
    let mut said = Vec::new();
    if !leftovers.is_empty() {
        let shown: Vec<String> = leftovers.iter().map(|p| p.display().to_string()).collect();
        said.push(format!(
            "{removed} what killed runs left: {}",
            shown.join(", ")
        ));
    }
    said.push(if rebuilt.is_empty() {
        "every image is current".into()
    } else {
        format!("{done}: {}", rebuilt.join(", "))
    });
    Response {
        changed: !rebuilt.is_empty() || !leftovers.is_empty(),
        msg: Some(said.join("; ")),
        diff: Some(diff),
        warnings: plan.warnings,
        values: Return {
            tool: plan.tool,
            method: plan.method,
            modules: plan.modules,
            kernels,
            removed_leftovers: leftovers,
        },
    }
}
