//! The free-space check before any image is rebuilt: a shortfall fails the
//! run with the numbers, before anything is written.

use std::path::Path;

use anyhow::{bail, Result};
use linux_host::{mounts, Host};

use crate::plan::KernelPlan;

/// New images are about as large as the ones they replace; allow 10% more.
/// Without a previous image, assume the largest image seen, or 64 MiB. An
/// image appended to takes what planning estimated (the image, the new
/// module files and the indices, stored uncompressed).
/// `freed` bytes (leftovers of killed runs, removed first) count as free.
pub fn check_space(
    host: &Host,
    plans: &[KernelPlan],
    backup: bool,
    freed: u64,
    warnings: &mut Vec<String>,
) -> Result<()> {
    let rebuilds: Vec<&KernelPlan> = plans.iter().filter(|p| p.rebuild).collect();
    let Some(first) = rebuilds.first() else {
        return Ok(());
    };
    let sizes: Vec<Option<u64>> = rebuilds
        .iter()
        .map(|p| host.file_size(&p.image).ok())
        .collect();
    let fallback = sizes.iter().flatten().max().copied().unwrap_or(64 << 20);
    let estimates: Vec<u64> = rebuilds
        .iter()
        .zip(&sizes)
        .map(|(p, s)| {
            p.append_estimate
                .unwrap_or_else(|| s.unwrap_or(fallback) / 10 * 11)
        })
        .collect();
    let appending = rebuilds.iter().any(|p| p.append_estimate.is_some());
    // Each new image exists beside its old one until the rename; with
    // backup the old ones stay.
    let needed = if backup {
        estimates.iter().sum()
    } else {
        estimates.iter().copied().max().unwrap_or(0)
    };
    let dir = first.image.parent().unwrap_or(Path::new("/boot"));
    let available = match mounts::available_bytes(host, dir) {
        Ok(bytes) => bytes.saturating_add(freed),
        Err(e) => {
            warnings.push(format!(
                "cannot tell the free space in {}: {e:#}",
                dir.display()
            ));
            return Ok(());
        }
    };
    if needed > available {
        // Tenths of a MiB, rounded, in integers: float formatting would
        // link about 9 KB more into the binary.
        let mib = |b: u64| {
            let tenths = (u128::from(b) * 10 + (1 << 19)) >> 20;
            format!("{}.{} MiB", tenths / 10, tenths % 10)
        };
        let current: Vec<String> = rebuilds
            .iter()
            .zip(&sizes)
            .map(|(p, s)| {
                format!(
                    "{} {}",
                    p.image.display(),
                    s.map(mib).unwrap_or_else(|| "missing".into())
                )
            })
            .collect();
        let leftovers = if freed > 0 {
            format!(
                " (leftovers of killed runs that are removed first included: {})",
                mib(freed)
            )
        } else {
            String::new()
        };
        bail!(
            "not enough room in {}: {} free{leftovers}, {} {} image(s) needs about {} (current images: {}; \
             {}{}); nothing was changed",
            dir.display(),
            mib(available),
            if appending { "appending to" } else { "rebuilding" },
            rebuilds.len(),
            mib(needed),
            current.join(", "),
            if appending {
                "each grows by the new module files and their indices, stored uncompressed"
            } else {
                "10% added for growth"
            },
            if backup {
                ", and the old images are kept as backups"
            } else {
                ""
            }
        );
    }
    Ok(())
}
