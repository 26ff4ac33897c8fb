//! The vermagic policy: a module whose vermagic differs from the kernel's
//! own modules would be refused at load time, so it is refused at install
//! time unless forced.

use std::path::{Path, PathBuf};

use anyhow::{bail, Result};
use formats::modinfo::ModInfo;
use linux_host::kmod::Resolved;
use linux_host::{kernel, Host};

use crate::source::Source;

/// Refuses `s` for kernel `k` when its vermagic differs from the kernel's
/// own modules' (or, with none to compare, names another kernel); with
/// `force`, warns instead.
pub fn check_vermagic(
    host: &Host,
    k: &str,
    s: &Source,
    before: &Resolved,
    force: bool,
    warnings: &mut Vec<String>,
) -> Result<()> {
    let words = |v: &str| v.split_whitespace().collect::<Vec<_>>().join(" ");
    let theirs = words(s.info.vermagic.as_deref().unwrap_or(""));
    let problem = match reference_vermagic(host, k, before) {
        Some((reference, from)) if words(&reference) != theirs => Some(format!(
            "{} was built for `{theirs}`, but kernel {k}'s own modules have vermagic `{}` ({}): \
             the kernel would refuse to load it",
            s.described,
            words(&reference),
            from.display()
        )),
        Some(_) => None,
        None if s.info.vermagic_release() != Some(k) => Some(format!(
            "{} was built for `{theirs}`, not for kernel {k}",
            s.described
        )),
        None => None,
    };
    match problem {
        Some(p) if force => {
            warnings.push(format!("{p}; installed anyway because force is set"));
            Ok(())
        }
        Some(p) => bail!("{p}; set force: true to install it anyway"),
        None => Ok(()),
    }
}

/// The vermagic of one of the kernel's own modules: its in-tree copy of
/// the same module when it resolves to one, else the first in-tree module
/// `modules.dep` lists.
fn reference_vermagic(host: &Host, k: &str, before: &Resolved) -> Option<(String, PathBuf)> {
    let root = kernel::modules_dir(k);
    let vermagic = |path: &Path| {
        host.read(path)
            .ok()
            .and_then(|b| ModInfo::from_bytes(b).ok())
            .and_then(|i| i.vermagic)
            .map(|v| (v, path.to_path_buf()))
    };
    if let Some(found) = before
        .path()
        .filter(|f| f.strip_prefix(&root).is_ok_and(|r| r.starts_with("kernel")))
        .and_then(vermagic)
    {
        return Some(found);
    }
    let dep = host.read_text(&root.join("modules.dep")).ok()?;
    dep.lines()
        .filter_map(|l| l.split(':').next())
        .filter(|p| p.starts_with("kernel/"))
        .take(5)
        .find_map(|p| vermagic(&root.join(p)))
}
