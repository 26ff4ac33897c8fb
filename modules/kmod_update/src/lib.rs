//! `kmod_update`: the server's half of the procedure. Installs one kernel
//! module (a `.ko` file or an `aacraid_build` artifact already on the host)
//! into `/lib/modules/<kver>/<dest>/` for the kernels asked for, runs
//! `depmod -a <kver>` only where something changed, and proves that the
//! kernel now resolves the module to that file. `state: absent` removes
//! what it installed and puts back what it replaced (see [`record`]).
//!
//! Everything is checked before the first write ([`plan`]); every change
//! is journaled before it is made ([`journal`]), so any failure (including
//! a resolution check that another file wins) undoes every change of the
//! run and reruns `depmod`, and a run killed at any point is rolled back by
//! the next run, which then does its own work. Options are documented in `kmod_update.yml`.

mod apply;
mod files;
mod journal;
mod options;
mod plan;
mod record;
mod report;
mod source;
mod vermagic;

use ansible_protocol::{Context, Module, Response};
use anyhow::Result;
use linux_host::Host;

use apply::Outcome;
pub use options::{Options, State};
pub use plan::{Action, Plan};
use report::{report, Return};

/// The module.
pub struct KmodUpdate;

impl Module for KmodUpdate {
    const NAME: &'static str = "kmod_update";
    type Host = Host;
    type Options = Options;
    type Plan = Plan;
    type Return = Return;

    fn plan(o: Options, _ctx: &Context, host: &Host) -> Result<Plan> {
        plan::plan(o, host)
    }

    fn preview(plan: Plan, _ctx: &Context) -> Response<Return> {
        let predicted = plan
            .kernels
            .iter()
            .map(|k| Outcome {
                now: k.after.clone(),
                backup: None,
            })
            .collect();
        report(plan, predicted, Vec::new())
    }

    fn apply(mut plan: Plan, _ctx: &Context, host: &Host) -> Result<Response<Return>> {
        let (outcomes, warnings) = apply::apply(&mut plan, host)?;
        Ok(report(plan, outcomes, warnings))
    }
}

#[cfg(test)]
mod tests;
