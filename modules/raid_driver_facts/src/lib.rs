//! `raid_driver_facts`: which driver each kernel will load, which one each
//! initramfs holds, which one runs, and what DKMS and the controller say.
//! Read-only: `changed` is always false and check mode is a normal run.
//! The options and the `ansible_facts.raid_driver` schema are documented
//! in the sidecar `raid_driver_facts.yml`.

mod gather;

use ansible_protocol::{Context, Host, Module, Response};
use anyhow::{bail, Result};
use linux_host::{kernel, kmod};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// The module.
pub struct RaidDriverFacts;

/// Task options (see the sidecar for their documentation).
#[derive(Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Options {
    /// Kernel module name.
    #[serde(default = "default_name")]
    pub name: String,
    /// Kernel releases to report; empty means every installed kernel.
    #[serde(default)]
    pub kernels: Vec<String>,
    /// Parts to gather: `all`, part names, `!part` to leave one out.
    #[serde(default = "default_subset")]
    pub gather_subset: Vec<String>,
    /// Path of `arcconf`, when it is not in a usual place.
    #[serde(default)]
    pub arcconf_path: Option<String>,
    /// Text that starts the driver's line in the kernel log.
    #[serde(default = "default_banner")]
    pub banner: String,
}

fn default_name() -> String {
    "aacraid".into()
}

fn default_subset() -> Vec<String> {
    vec!["all".into()]
}

fn default_banner() -> String {
    "Adaptec aacraid driver".into()
}

/// The gathered facts and warnings, ready to report.
pub struct Plan {
    facts: Value,
    warnings: Vec<String>,
}

impl Module for RaidDriverFacts {
    const NAME: &'static str = "raid_driver_facts";
    type Options = Options;
    type Plan = Plan;

    fn plan(options: Options, _ctx: &Context, host: &Host) -> Result<Plan> {
        kmod::validate_name(&options.name)?;
        for k in options.kernels.iter().filter(|k| k.as_str() != "running") {
            kernel::validate_release(k)?;
        }
        if let Some(path) = &options.arcconf_path {
            if !path.starts_with('/') {
                bail!("arcconf_path must be an absolute path, got {path:?}");
            }
        }
        let subset = parse_subset(&options.gather_subset)?;
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
            facts: serde_json::to_value(facts)?,
            warnings: notes.0,
        })
    }

    fn preview(plan: &Plan, _ctx: &Context) -> Response {
        let mut facts = Map::new();
        facts.insert("raid_driver".into(), plan.facts.clone());
        Response {
            changed: false,
            facts,
            warnings: plan.warnings.clone(),
            ..Response::default()
        }
    }

    fn apply(plan: Plan, ctx: &Context, _host: &Host) -> Result<Response> {
        Ok(Self::preview(&plan, ctx))
    }
}

/// `gather_subset` the way `setup` reads it: `all`, names, `!name`.
fn parse_subset(items: &[String]) -> Result<gather::Subset> {
    let mut chosen: Vec<&str> = Vec::new();
    let mut excluded: Vec<&str> = Vec::new();
    for item in items.iter().map(|s| s.trim()) {
        let (negated, word) = match item.strip_prefix('!') {
            Some(rest) => (true, rest),
            None => (false, item),
        };
        let names: Vec<&str> = if word == "all" {
            gather::SUBSETS.to_vec()
        } else if let Some(known) = gather::SUBSETS.iter().find(|s| **s == word) {
            vec![known]
        } else {
            bail!(
                "gather_subset: unknown part {word:?}; choose from all, {}",
                gather::SUBSETS.join(", ")
            );
        };
        if negated {
            excluded.extend(names);
        } else {
            chosen.extend(names);
        }
    }
    if chosen.is_empty() {
        chosen = gather::SUBSETS.to_vec();
    }
    let on = |name: &str| chosen.contains(&name) && !excluded.contains(&name);
    Ok(gather::Subset {
        modules: on("modules"),
        initramfs: on("initramfs"),
        loaded: on("loaded"),
        dkms: on("dkms"),
        controllers: on("controllers"),
        kernel_log: on("kernel_log"),
    })
}

#[cfg(test)]
mod tests;
