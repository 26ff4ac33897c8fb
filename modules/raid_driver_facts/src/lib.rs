//! `raid_driver_facts`: which driver each kernel will load, which one each
//! initramfs holds, which one runs, and what DKMS and the controller say.
//! Read-only: `changed` is always false and check mode reports the same
//! facts; only a real run keeps what it learnt from images in the image
//! cache ([`image_cache`]).
//! The options and the `ansible_facts.raid_driver` schema are documented
//! in the sidecar `raid_driver_facts.yml`.

mod answers_cache;
mod boot;
mod copies_cache;
mod files_cache;
mod gather;
mod image_cache;
mod options;
mod per_kernel;
mod schema;
mod stamp;
mod tools;

use ansible_protocol::{Context, Module, Response};
use anyhow::{bail, Result};
use formats::modinfo::validate_name;
use linux_host::host::is_plain_absolute;
use linux_host::Host;
use std::path::Path;

pub use options::Options;
use schema::{AnsibleFacts, RaidDriver, Return};

/// The module.
pub struct RaidDriverFacts;

/// The gathered facts and warnings, ready to report, and what was learnt
/// from images for the cache.
pub struct Plan {
    facts: RaidDriver,
    warnings: Vec<String>,
    cache: Option<image_cache::Cache>,
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
        if !options.image_cache.is_empty() && !is_plain_absolute(Path::new(&options.image_cache)) {
            bail!(
                "image_cache must be an absolute path without `.` or `..` (or empty, for no cache), got {:?}",
                options.image_cache
            );
        }
        let subset = options::parse_subset(&options.gather_subset)?;
        let mut notes = gather::Notes::default();
        let cache = if subset.initramfs || subset.modules || subset.dkms {
            image_cache::Cache::open(host, &options.image_cache).unwrap_or_else(|e| {
                notes.warn(format!(
                    "the image cache {} is not used: {e:#}",
                    options.image_cache
                ));
                None
            })
        } else {
            None
        };
        let request = gather::Request {
            name: &options.name,
            kernels: &options.kernels,
            subset,
            arcconf: options.arcconf_path.as_deref(),
            banner: &options.banner,
            cache: cache.as_ref(),
        };
        let facts = gather::gather(host, &request, &mut notes)?;
        Ok(Plan {
            facts,
            warnings: notes.0,
            cache,
        })
    }

    fn preview(plan: Plan, _ctx: &Context) -> Response<Return> {
        report(plan)
    }

    /// Check mode reports the same facts but keeps nothing in the cache.
    fn apply(mut plan: Plan, _ctx: &Context, host: &Host) -> Result<Response<Return>> {
        if let Some(cache) = plan.cache.take() {
            if let Err(e) = cache.write(host) {
                plan.warnings
                    .push(format!("the image cache was not written: {e:#}"));
            }
        }
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
