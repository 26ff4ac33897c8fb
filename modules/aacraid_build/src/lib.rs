//! `aacraid_build`: the build host's half of the procedure. Puts the
//! vendor's DKMS source ([`source`]) in `/usr/src/<name>-<version>` whole,
//! and replaces it whenever it differs from the package ([`tree`]), runs
//! `dkms add`, `build` and `install` for exactly the kernels asked for
//! (nothing that is already done, see [`plan`]), and writes one artifact
//! per kernel for `kmod_update` ([`artifact`]). Options are documented in
//! `aacraid_build.yml`.

mod apply;
pub mod artifact;
mod options;
mod plan;
mod report;
mod source;
mod tree;

use ansible_protocol::{Context, Module, Response};
use anyhow::Result;
use linux_host::Host;

pub use options::{Options, State};
pub use plan::Plan;
use report::{report, KernelResult, Return};

/// The module.
pub struct AacraidBuild;

impl Module for AacraidBuild {
    const NAME: &'static str = "aacraid_build";
    type Host = Host;
    type Options = Options;
    type Plan = Plan;
    type Return = Return;

    fn plan(options: Options, _ctx: &Context, host: &Host) -> Result<Plan> {
        plan::plan(options, host)
    }

    fn preview(mut plan: Plan, _ctx: &Context) -> Response<Return> {
        let changed = plan.changed();
        let kernels = std::mem::take(&mut plan.kernels)
            .into_iter()
            .map(KernelResult::planned)
            .collect();
        report(&plan, kernels, changed)
    }

    fn apply(plan: Plan, _ctx: &Context, host: &Host) -> Result<Response<Return>> {
        let changed = plan.changed();
        let kernels = apply::apply(&plan, host)?;
        Ok(report(&plan, kernels, changed))
    }
}

#[cfg(test)]
mod tests;
