//! What the next boot will load, and whether a reboot is due: the loaded
//! module compared with the running kernel's initramfs copy, or else with
//! the file its module tree resolves.

use formats::modinfo::Resolution;
use linux_host::loaded;

use crate::schema::{KernelFacts, NextBoot};

/// The next boot's copy of the module for the running kernel `k`.
pub fn next_boot(k: &KernelFacts) -> Option<NextBoot> {
    if let Some(module) = k.initramfs.as_ref().and_then(|i| i.module.as_ref()) {
        return Some(NextBoot {
            kernel: k.release.clone(),
            source: "initramfs",
            path: Some(module.path.clone()),
            version: module.info.version.clone(),
            srcversion: module.info.srcversion.clone(),
        });
    }
    let resolved = &k.resolved.as_ref()?.resolved;
    let info = resolved.info();
    Some(NextBoot {
        kernel: k.release.clone(),
        source: if resolved.resolution == Resolution::Builtin {
            "builtin"
        } else {
            "modules"
        },
        path: resolved.path().map(|p| p.display().to_string()),
        version: info.version,
        srcversion: info.srcversion,
    })
}

/// Whether the loaded module differs from the next boot's, and why.
pub fn reboot(
    loaded: Option<&loaded::Loaded>,
    next: Option<&NextBoot>,
    running: Option<&str>,
    images_read: bool,
) -> (bool, String) {
    let Some(loaded) = loaded else {
        return (false, "the module is not loaded".into());
    };
    let Some(next) = next else {
        let running = running.unwrap_or("unknown");
        return (
            false,
            format!("the running kernel {running} has no module tree here: next boot unknown"),
        );
    };
    let source = match (next.source, images_read) {
        ("initramfs", _) => "the initramfs",
        ("builtin", _) => "the kernel image",
        (_, true) => "the module tree (the initramfs lacks it)",
        (_, false) => "the module tree",
    };
    // srcversion tells builds apart even when the version string is reused.
    let pairs = [
        ("srcversion", &loaded.srcversion, &next.srcversion),
        ("version", &loaded.version, &next.version),
    ];
    let Some((what, Some(now), Some(then))) = pairs
        .into_iter()
        .find(|(_, a, b)| a.is_some() && b.is_some())
    else {
        return (
            false,
            "neither srcversion nor version can be compared".into(),
        );
    };
    if now == then {
        (false, format!("the loaded module matches {source}"))
    } else {
        (
            true,
            format!("loaded {what} {now} differs from {then} in {source}"),
        )
    }
}
