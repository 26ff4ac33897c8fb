//! Rebuilding one image: the tool writes a temporary file beside the old
//! image, the new image is read back and checked, and only then renamed
//! over the old one (after an optional `.bak` link).

use std::path::{Path, PathBuf};

use anyhow::{bail, Context as _, Result};
use linux_host::initramfs::module_files;
use linux_host::Host;

use crate::plan::{Inside, KernelPlan, Plan};

/// Regenerates `k`'s image into a temporary file, checks it, swaps it in;
/// returns what the new image holds and the backup's path.
pub fn rebuild(host: &Host, plan: &Plan, k: &KernelPlan) -> Result<(Vec<Inside>, Option<PathBuf>)> {
    let file_name = k
        .image
        .file_name()
        .map(|f| f.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = k
        .image
        .with_file_name(format!(".{file_name}.initramfs_regen"));
    if host.exists(&tmp) {
        host.remove_file(&tmp)?;
    }
    let cmd = plan.tool.command(&tmp, &k.kernel);
    let out = host.run(&cmd)?;
    if !out.success() {
        let _ = host.remove_file(&tmp);
        let failed = out.failure(&cmd);
        let context = format!(
            "{} failed for kernel {} (rc {}); {} is untouched; last lines of its output:\n{}",
            plan.tool.program(),
            k.kernel,
            failed.rc,
            k.image.display(),
            failed.tail(20)
        );
        return Err(anyhow::Error::new(failed).context(context));
    }
    let inside = match check_new_image(host, plan, k, &tmp) {
        Ok(inside) => inside,
        Err(e) => {
            let _ = host.remove_file(&tmp);
            return Err(e);
        }
    };
    if let Some(mode) = k.old_mode {
        host.set_mode(&tmp, mode)?;
    }
    let mut backup = None;
    if plan.backup && k.exists {
        let mut name = k.image.as_os_str().to_os_string();
        name.push(".bak");
        let bak = PathBuf::from(name);
        if host.exists(&bak) {
            host.remove_file(&bak)?;
        }
        host.hard_link(&k.image, &bak)?;
        backup = Some(bak);
    }
    host.rename_durably(&tmp, &k.image)?;
    Ok((inside, backup))
}

/// The new image must hold every named module at the resolved path with
/// the bytes on disk.
fn check_new_image(host: &Host, plan: &Plan, k: &KernelPlan, tmp: &Path) -> Result<Vec<Inside>> {
    let scan = module_files(host, tmp, &k.kernel, &plan.modules).with_context(|| {
        format!(
            "the new image {} made for kernel {} is unreadable",
            plan.tool.program(),
            k.kernel
        )
    })?;
    let inside: Vec<Inside> = plan
        .modules
        .iter()
        .map(|name| Inside::of(&scan.files, &k.kernel, name))
        .collect();
    for w in &k.wanted {
        let found = inside.iter().find(|i| i.name == w.name);
        if !found.is_some_and(|i| i.is(w)) {
            let held = match found.filter(|i| i.path.is_some()) {
                Some(i) => format!("it holds {}", i.shown()),
                None => format!("it holds no {} module", w.name),
            };
            bail!(
                "the new image {} made for kernel {} lacks {} with the bytes on disk: {held}; {} is untouched",
                plan.tool.program(),
                k.kernel,
                w.shown(),
                k.image.display()
            );
        }
    }
    Ok(inside)
}
