//! `raid_driver_facts`: which driver each kernel will load, which one each
//! initramfs holds, which one runs, and what DKMS and the controller say.
//! Read-only: `changed` is always false and check mode is a normal run.
//! The options and the `ansible_facts.raid_driver` schema are documented
//! in the sidecar `raid_driver_facts.yml`.

mod boot;
mod gather;
mod options;
mod per_kernel;
mod schema;
mod tools;

use ansible_protocol::{Context, Module, Response};
use anyhow::{bail, Result};
use formats::modinfo::validate_name;
use linux_host::Host;

pub use options::Options;
use schema::{AnsibleFacts, RaidDriver, Return};

/// The module.
pub struct RaidDriverFacts;

/// The gathered facts and warnings, ready to report.
pub struct Plan {
    facts: RaidDriver,
    warnings: Vec<String>,
}

impl Module for RaidDriverFacts {
    const NAME: &'static str = "raid_driver_facts";
    type Host = Host;
    type Options = Options;
    type Plan = Plan;
    type Return = Return;

    fn plan(options: Options, _ctx: &Context, host: &Host) -> Result<Plan> {
        validate_name(&options.name)?;
        if let Some(path) = &options.arcconf_path {
            if !path.starts_with('/') {
                bail!("arcconf_path must be an absolute path, got {path:?}");
            }
        }
        let subset = options::parse_subset(&options.gather_subset)?;
        let request = gather::Request {
            name: &options.name,
            kernels: &options.kernels,
            subset,
            arcconf: options.arcconf_path.as_deref(),
            banner: &options.banner,
        };
        let mut notes = gather::Notes::default();
        let facts = gather::gather(host, &request, &mut notes)?;
        Ok(Plan {
            facts,
            warnings: notes.0,
        })
    }

    fn preview(plan: Plan, _ctx: &Context) -> Response<Return> {
        report(plan)
    }

    fn apply(plan: Plan, _ctx: &Context, _host: &Host) -> Result<Response<Return>> {
        Ok(report(plan))
    }
}

/// The facts gathered while planning: check mode and a real run report the
/// same, since nothing changes.
fn report(plan: Plan) -> Response<Return> {
    Response {
        changed: false,
        msg: None,
        diff: None,
        warnings: plan.warnings,
        values: Return {
            ansible_facts: AnsibleFacts {
                raid_driver: plan.facts,
            },
        },
    }
}

#[cfg(test)]
mod tests;
