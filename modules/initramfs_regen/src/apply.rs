//! Rebuilding one image: the tool runs in a private folder of its own
//! (its output and its work folder there, removed whatever happens), the
//! new image is read into memory and checked, and exactly those bytes are
//! written over the old image through an exclusive temporary file beside
//! it (after an optional `.bak` link). Whatever writes to the tool's output
//! after the check (an orphaned tool of a killed run cannot: it writes in
//! its own folder) does not reach `/boot`. An image made by initramfs-tools
//! is then handed to its post-update hooks, as `update-initramfs` does.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{bail, Context as _, Result};
use formats::cpio::Scan;
use formats::limits::IMAGE_MAX;
use linux_host::initramfs::module_files_in;
use linux_host::{Cmd, Host};

use crate::leftovers::{STAGE_PARENT, STAGE_PREFIX};
use crate::options::{bounded, Tool};
use crate::plan::{Inside, KernelPlan, Plan};

/// Regenerates `k`'s image, checks it, swaps it in; returns what the new
/// image holds and the backup's path.
pub fn rebuild(host: &Host, plan: &Plan, k: &KernelPlan) -> Result<(Vec<Inside>, Option<PathBuf>)> {
    let untouched = || format!("{} is untouched", k.image.display());
    // Dropped on every return: the tool's output and work files go with it.
    let stage = host.private_dir(Path::new(STAGE_PARENT), STAGE_PREFIX)?;
    let output = stage.path.join("initramfs.img");
    let cmd = plan
        .tool
        .command(&output, &k.kernel, &stage.path, plan.timeout);
    let out = host.run(&cmd).with_context(|| {
        format!(
            "{} did not finish for kernel {}; {}",
            plan.tool.program(),
            k.kernel,
            untouched()
        )
    })?;
    if !out.success() {
        let failed = out.failure(&cmd);
        let context = format!(
            "{} failed for kernel {} (rc {}); {}; last lines of its output:\n{}",
            plan.tool.program(),
            k.kernel,
            failed.rc,
            untouched(),
            failed.tail(20)
        );
        return Err(anyhow::Error::new(failed).context(context));
    }
    let (bytes, made_mode) = host.read_capped(&output, IMAGE_MAX).with_context(|| {
        format!(
            "the new image {} made for kernel {} is unreadable; {}",
            plan.tool.program(),
            k.kernel,
            untouched()
        )
    })?;
    let bytes = Shared(Arc::new(bytes));
    let made = format!(
        "the new image {} made for kernel {}",
        plan.tool.program(),
        k.kernel
    );
    let inside = check_new_image(plan, k, &bytes, &made)?;
    let backup = swap_in(
        host,
        plan,
        k,
        bytes.as_ref(),
        k.old_mode.unwrap_or(made_mode),
    )?;
    Ok((inside, backup))
}

/// Puts `bytes` in place of `k`'s image with permission bits `mode`, after
/// linking the old image to `<image>.bak` when `backup` is set; returns the
/// backup's path.
pub fn swap_in(
    host: &Host,
    plan: &Plan,
    k: &KernelPlan,
    bytes: &[u8],
    mode: u32,
) -> Result<Option<PathBuf>> {
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
    host.write_atomic_as_root(&k.image, bytes, mode)?;
    Ok(backup)
}

/// Where initramfs-tools keeps the hooks `update-initramfs` runs after it
/// writes an image (copies to an EFI system partition for systemd-boot, for
/// example).
pub const POST_UPDATE_HOOKS: &str = "/etc/initramfs/post-update.d";

/// After an image made by initramfs-tools is in place, runs its post-update
/// hooks as `update-initramfs` does (`run-parts --arg=<kver>
/// --arg=<image>`), under the tool's timeout. dracut has no such hooks.
pub fn post_update_hooks(host: &Host, plan: &Plan, k: &KernelPlan) -> Result<()> {
    let hooks = Path::new(POST_UPDATE_HOOKS);
    if plan.tool != Tool::InitramfsTools || !host.is_dir(hooks) {
        return Ok(());
    }
    let cmd = Cmd::new("run-parts")
        .arg(format!("--arg={}", k.kernel))
        .arg(format!("--arg={}", k.image.display()))
        .arg(hooks);
    run_step(host, plan, cmd, |why| {
        format!(
            "the new image {} of kernel {} is in place and was checked, but the hooks in {POST_UPDATE_HOOKS} \
             {why}; run them again (`run-parts --arg={} --arg={} {POST_UPDATE_HOOKS}`) or set force: true",
            k.image.display(),
            k.kernel,
            k.kernel,
            k.image.display()
        )
    })
}

/// Runs `cmd` under the `timeout` option. When it does not finish or fails,
/// the error's message is `failed(why)`, `why` saying which (with the exit
/// code and the last lines of the output), and the error carries the
/// command's failure (`cmd`, `rc`, `stdout`, `stderr` in the result).
pub fn run_step(
    host: &Host,
    plan: &Plan,
    cmd: Cmd,
    failed: impl Fn(String) -> String,
) -> Result<()> {
    let cmd = bounded(cmd, plan.timeout);
    let out = host
        .run(&cmd)
        .with_context(|| failed("did not finish".to_string()))?;
    if !out.success() {
        let error = out.failure(&cmd);
        let why = format!(
            "failed (rc {}); last lines of its output:\n{}",
            error.rc,
            error.tail(20)
        );
        return Err(anyhow::Error::new(error).context(failed(why)));
    }
    Ok(())
}

/// The new image (`made` says which, in messages) must hold every named
/// module at the resolved path with the bytes on disk.
pub fn check_new_image(
    plan: &Plan,
    k: &KernelPlan,
    bytes: &Shared,
    made: &str,
) -> Result<Vec<Inside>> {
    let reader = std::io::Cursor::new(bytes.clone());
    judge_new_image(
        plan,
        k,
        module_files_in(reader, &k.kernel, &plan.modules),
        made,
    )
}

/// [`check_new_image`]'s verdict on what the walk of the new image found.
pub fn judge_new_image(
    plan: &Plan,
    k: &KernelPlan,
    walked: Result<Scan>,
    made: &str,
) -> Result<Vec<Inside>> {
    let scan = walked
        .with_context(|| format!("{made} is unreadable; {} is untouched", k.image.display()))?;
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
                "{made} lacks {} with the bytes on disk: {held}; {} is untouched",
                w.shown(),
                k.image.display()
            );
        }
    }
    Ok(inside)
}

/// An image in memory, shared with the walk that reads it (which needs a
/// reader of its own) without a copy.
#[derive(Clone)]
pub struct Shared(pub Arc<Vec<u8>>);

impl AsRef<[u8]> for Shared {
    fn as_ref(&self) -> &[u8] {
        &self.0
    }
}
