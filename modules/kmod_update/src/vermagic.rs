//! The load policy: a module whose vermagic differs from the kernel's own
//! modules, or that a kernel enforcing signatures would reject, would be
//! refused at load time, so it is refused at install time unless forced.

use anyhow::{bail, Result};
use linux_host::kmod::{self, Resolved};
use linux_host::signing::{self, HostSigning};
use linux_host::Host;

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
    let reference =
        kmod::own_module(host, k, before).and_then(|(path, info)| Some((info.vermagic?, path)));
    let problem = match reference {
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

/// Refuses `s` for kernel `k` when `k` enforces module signatures and would
/// reject its signature (or its lack of one); with `force`, warns instead.
pub fn check_signature(
    host: &Host,
    k: &str,
    s: &Source,
    before: &Resolved,
    state: &HostSigning,
    force: bool,
    warnings: &mut Vec<String>,
) -> Result<()> {
    let Some(why) = signing::refusal(host, state, k, s.info.signature.as_ref(), before) else {
        return Ok(());
    };
    let problem = format!("kernel {k} would not load {}: {why}", s.described);
    if force {
        warnings.push(format!("{problem}; installed anyway because force is set"));
        Ok(())
    } else {
        bail!("{problem}; sign it with a key the kernel trusts, or set force: true to install it anyway")
    }
}
