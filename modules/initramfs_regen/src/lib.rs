//! `initramfs_regen`: rebuilds only the initramfs images that do not carry
//! the module files their kernel resolves, and never puts an unchecked
//! image in place. Per kernel the verdict comes from the image itself (the
//! cpio walk of `linux_host::initramfs`, see [`plan`]): each named module
//! must be in it at the path the kernel resolves, with the same bytes. A
//! stale image is regenerated in a private folder (dracut, or
//! initramfs-tools' `mkinitramfs`, each bounded by the `timeout` option),
//! the new image is read into memory and checked the same way, and exactly
//! those bytes replace the old one ([`apply`]). With `method: append` no
//! tool runs: one segment with the new files and the image's own module
//! indices is appended instead, checked and swapped in the same way
//! ([`append`]). What a killed run left ([`leftovers`]) is removed first.
//! Options are documented in `initramfs_regen.yml`.

mod append;
mod apply;
mod leftovers;
mod options;
mod plan;
mod report;
mod space;

use std::time::Instant;

use ansible_protocol::{Context, Module, Response};
use anyhow::{Context as _, Result};
use linux_host::Host;

pub use options::{Method, Options, Tool, ToolChoice};
pub use plan::Plan;
use report::{report, KernelResult, Return};

/// The module.
pub struct InitramfsRegen;

impl Module for InitramfsRegen {
    const NAME: &'static str = "initramfs_regen";
    type Host = Host;
    type Options = Options;
    type Plan = Plan;
    type Return = Return;

    fn plan(o: Options, _ctx: &Context, host: &Host) -> Result<Plan> {
        plan::plan(o, host)
    }

    fn preview(plan: Plan, _ctx: &Context) -> Response<Return> {
        let results = plan
            .kernels
            .iter()
            .map(|k| {
                let after = if k.rebuild {
                    k.wanted.clone()
                } else {
                    k.before.clone()
                };
                KernelResult::new(k, k.rebuild, after, None, None, None)
            })
            .collect();
        report(plan, results, true)
    }

    fn apply(plan: Plan, _ctx: &Context, host: &Host) -> Result<Response<Return>> {
        leftovers::remove(host, &plan.leftovers)?;
        let mut results: Vec<KernelResult> = Vec::new();
        for k in &plan.kernels {
            if !k.rebuild {
                results.push(KernelResult::new(
                    k,
                    false,
                    k.before.clone(),
                    None,
                    None,
                    None,
                ));
                continue;
            }
            let started = Instant::now();
            let replaced = |results: &[KernelResult]| {
                let done: Vec<String> = results
                    .iter()
                    .filter(|r| r.rebuilt)
                    .map(|r| r.image.display().to_string())
                    .collect();
                if done.is_empty() {
                    "no image was changed".to_string()
                } else {
                    format!(
                        "already replaced by checked new images: {}",
                        done.join(", ")
                    )
                }
            };
            let (inside, backup, appended) = match plan.method {
                Method::Rebuild => apply::rebuild(host, &plan, k).map(|(i, b)| (i, b, None)),
                Method::Append => append::run(host, &plan, k).map(|(i, b, a)| (i, b, Some(a))),
            }
            .with_context(|| replaced(&results))?;
            let seconds = started.elapsed().as_secs_f64();
            results.push(KernelResult::new(
                k,
                true,
                inside,
                backup,
                Some(seconds),
                appended,
            ));
            apply::post_update_hooks(host, &plan, k).with_context(|| replaced(&results))?;
        }
        Ok(report(plan, results, false))
    }
}

#[cfg(test)]
mod tests;
