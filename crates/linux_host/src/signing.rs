//! Will a kernel load a module file? The host's signature enforcement
//! (Secure Boot, lockdown, `module.sig_enforce`, the keys the running
//! kernel holds), each kernel's build configuration, and from them a
//! verdict per kernel and per module copy. A source that cannot be read
//! makes the answer unknown, never a guess that the module loads.

use std::path::Path;

use formats::modsig::Signature;
use formats::signing::{self, KernelConfig, Key};
use serde::Serialize;

use crate::host::{Host, Runner};

const EFI: &str = "/sys/firmware/efi";
const EFIVARS: &str = "/sys/firmware/efi/efivars";
const GLOBAL_GUID: &str = "8be4df61-93ca-11d2-aa0d-00e098032b8c";
const SHIM_GUID: &str = "605dab50-e046-4300-abb6-3dd810dd8b23";
/// `/proc/keys` of a host with a full distribution keyring is a few KB.
const KEYS_MAX: u64 = 4 << 20;
/// A kernel's `.config` is about 250 KB.
const CONFIG_MAX: u64 = 16 << 20;

/// The host-wide state that decides whether signatures are enforced.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct HostSigning {
    /// Whether the firmware booted with Secure Boot in force: the EFI
    /// `SecureBoot` variable is 1, the firmware is not in setup mode and
    /// shim's validation is not turned off (`MokSBStateRT`). False when the
    /// host did not boot through EFI; null when the variables cannot be read.
    pub secure_boot: Option<bool>,
    /// The running kernel's lockdown mode (`none`, `integrity`,
    /// `confidentiality`); null when `/sys/kernel/security/lockdown` is absent.
    pub lockdown: Option<String>,
    /// The running kernel's `module.sig_enforce`; null when the kernel has
    /// no such parameter (built without module signatures) or it cannot be read.
    pub sig_enforce: Option<bool>,
    /// `module.sig_enforce` as the running kernel's command line sets it.
    pub cmdline_sig_enforce: Option<bool>,
    /// The asymmetric keys root sees in `/proc/keys` (the kernel's builtin,
    /// secondary, machine (MOK) and platform keys), each with its keyring
    /// when `keyctl` can read them; null when `/proc/keys` is unreadable.
    /// Module signatures count only keys of [`signing::MODULE_KEYRINGS`], or
    /// of an unknown keyring.
    pub trusted_keys: Option<Vec<Key>>,
}

impl HostSigning {
    /// Reads the state from `/sys`, `/proc` and the EFI variables.
    pub fn read(host: &Host) -> HostSigning {
        let text = |path: &str| host.read_text(Path::new(path)).ok();
        HostSigning {
            secure_boot: secure_boot(host),
            lockdown: text("/sys/kernel/security/lockdown").and_then(|t| signing::lockdown(&t)),
            sig_enforce: text("/sys/module/module/parameters/sig_enforce").and_then(|t| {
                match t.trim() {
                    "Y" | "1" => Some(true),
                    "N" | "0" => Some(false),
                    _ => None,
                }
            }),
            cmdline_sig_enforce: text("/proc/cmdline")
                .and_then(|t| signing::cmdline_sig_enforce(&t)),
            trusted_keys: host
                .read_input(Path::new("/proc/keys"), KEYS_MAX)
                .ok()
                .map(|data| {
                    let listing = String::from_utf8_lossy(&data);
                    let mut keys = signing::keys(&listing);
                    let rings = signing::keyrings(&listing);
                    place_in_keyrings(&mut keys, &rings, |serial| keyring_members(host, serial));
                    keys
                }),
        }
    }
}

/// Sets each key's `keyring` from the members `read` gives for each
/// keyring (none: left unknown).
fn place_in_keyrings(
    keys: &mut [Key],
    keyrings: &[(String, u32)],
    read: impl Fn(u32) -> Option<Vec<u32>>,
) {
    for (name, serial) in keyrings {
        let Some(members) = read(*serial) else {
            continue;
        };
        for key in keys.iter_mut().filter(|k| members.contains(&k.serial)) {
            key.keyring = Some(name.clone());
        }
    }
}

/// `keyctl read` of a keyring: the serials of its members. `None` on a
/// scripted host, and where the call is refused (Docker's default seccomp
/// profile refuses `keyctl`).
#[allow(unsafe_code)]
fn keyring_members(host: &Host, serial: u32) -> Option<Vec<u32>> {
    const KEYCTL_READ: libc::c_long = 11;
    if !matches!(host.runner, Runner::Real { .. }) {
        return None;
    }
    let mut buf = vec![0u8; 4096];
    loop {
        // SAFETY: KEYCTL_READ writes at most `buf.len()` bytes to `buf` and
        // returns how many it would need; the key serial is an int.
        let needed = unsafe {
            libc::syscall(
                libc::SYS_keyctl,
                KEYCTL_READ,
                libc::c_long::from(serial as i32),
                buf.as_mut_ptr(),
                buf.len(),
            )
        };
        let needed = usize::try_from(needed).ok()?;
        if needed <= buf.len() {
            buf.truncate(needed);
            return Some(signing::members(&buf));
        }
        if needed > KEYS_MAX as usize {
            return None;
        }
        buf.resize(needed, 0);
    }
}

fn secure_boot(host: &Host) -> Option<bool> {
    if !host.is_dir(Path::new(EFI)) {
        return Some(false);
    }
    let var = |name: &str, guid: &str| {
        host.read(&Path::new(EFIVARS).join(format!("{name}-{guid}")))
            .ok()
            .and_then(|data| signing::efi_boolean(&data))
    };
    // An empty efivars folder is efivarfs not mounted, not a firmware
    // without Secure Boot.
    let mounted = host
        .read_dir(Path::new(EFIVARS))
        .is_ok_and(|e| !e.is_empty());
    if !mounted {
        return None;
    }
    Some(
        var("SecureBoot", GLOBAL_GUID) == Some(true)
            && var("SetupMode", GLOBAL_GUID) != Some(true)
            && var("MokSBStateRT", SHIM_GUID) != Some(true),
    )
}

/// The build configuration of kernel `release`: `/boot/config-<release>`,
/// else `/lib/modules/<release>/config`; `None` when neither can be read.
pub fn kernel_config(host: &Host, release: &str) -> Option<KernelConfig> {
    [
        format!("/boot/config-{release}"),
        format!("/lib/modules/{release}/config"),
    ]
    .iter()
    .find_map(|path| host.read_input(Path::new(path), CONFIG_MAX).ok())
    .map(|data| signing::kernel_config(&String::from_utf8_lossy(&data)))
}

/// Whether a kernel refuses modules without a trusted signature, and why.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Enforcement {
    /// True: it refuses them; false: it loads them (an unsigned one taints
    /// it); null: not known.
    pub enforced: Option<bool>,
    /// What the answer rests on.
    pub reason: String,
}

impl Enforcement {
    fn new(enforced: Option<bool>, reason: impl Into<String>) -> Enforcement {
        Enforcement {
            enforced,
            reason: reason.into(),
        }
    }
}

/// Whether a kernel enforces module signatures: from its configuration,
/// and for the running kernel from what it reports; for another kernel,
/// what its next boot will do under the host's Secure Boot state and the
/// running kernel's command line.
pub fn enforcement(
    host: &HostSigning,
    config: Option<&KernelConfig>,
    running: bool,
) -> Enforcement {
    if let Some(c) = config {
        if !c.module_sig {
            return Enforcement::new(
                Some(false),
                "built without CONFIG_MODULE_SIG: it checks no signature",
            );
        }
        if c.sig_force {
            return Enforcement::new(Some(true), "built with CONFIG_MODULE_SIG_FORCE");
        }
    }
    if running {
        if host.sig_enforce == Some(true) {
            return Enforcement::new(Some(true), "module.sig_enforce is on");
        }
        if let Some(mode) = host.lockdown.as_deref().filter(|m| *m != "none") {
            return Enforcement::new(Some(true), format!("the kernel is locked down ({mode})"));
        }
        if host.sig_enforce == Some(false)
            && (host.lockdown.is_some() || host.secure_boot == Some(false))
        {
            return Enforcement::new(
                Some(false),
                "module.sig_enforce is off and the kernel is not locked down",
            );
        }
    }
    if host.cmdline_sig_enforce == Some(true) {
        return Enforcement::new(
            Some(true),
            "the running kernel's command line sets module.sig_enforce (assumed for this kernel's boot)",
        );
    }
    let Some(c) = config else {
        return Enforcement::new(None, "its build configuration cannot be read (neither /boot/config-<release> nor /lib/modules/<release>/config)");
    };
    match (host.secure_boot, c.lockdown_in_secure_boot) {
        (Some(true), true) => Enforcement::new(
            Some(true),
            "Secure Boot is on, and the kernel locks itself down under it",
        ),
        (Some(true), false) => Enforcement::new(
            None,
            "Secure Boot is on; the kernel's configuration does not say whether it enforces signatures then",
        ),
        (None, true) => Enforcement::new(
            None,
            "the kernel locks itself down under Secure Boot, and the Secure Boot state cannot be read",
        ),
        (Some(false), _) | (None, false) => Enforcement::new(
            Some(false),
            "neither CONFIG_MODULE_SIG_FORCE, module.sig_enforce nor a Secure Boot lockdown applies",
        ),
    }
}

/// Whether a kernel will load one copy of a module, and why.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Verdict {
    /// True, false, or null when it cannot be known.
    pub will_load: Option<bool>,
    /// What the answer rests on: the signature and the kernel's enforcement.
    pub will_load_reason: String,
}

fn verdict(will_load: Option<bool>, reason: String) -> Verdict {
    Verdict {
        will_load,
        will_load_reason: reason,
    }
}

/// Whether kernel `release`, enforcing as `enforcement` says, loads a
/// module signed with `signature` (`None`: unsigned). A signature is
/// trusted when it is the one on the kernel's own in-tree modules (`own`),
/// or it names a key root sees in the running kernel's keyrings (`keys`).
pub fn will_load(
    release: &str,
    enforcement: &Enforcement,
    signature: Option<&Signature>,
    own: &[&Signature],
    keys: Option<&[Key]>,
) -> Verdict {
    let why = &enforcement.reason;
    let sig = match signature {
        Some(sig) if sig.error.is_none() => sig,
        other => {
            let what = match other.and_then(|s| s.error.as_deref()) {
                Some(error) => format!("its signature cannot be read ({error})"),
                None => "unsigned".to_string(),
            };
            return match enforcement.enforced {
                Some(true) => verdict(
                    Some(false),
                    format!("{what}, and kernel {release} refuses such modules: {why}"),
                ),
                Some(false) => verdict(
                    Some(true),
                    format!("{what}; kernel {release} loads it and marks itself tainted: {why}"),
                ),
                None => verdict(
                    None,
                    format!(
                        "{what}; whether kernel {release} enforces signatures is unknown: {why}"
                    ),
                ),
            };
        }
    };
    let signer = sig.signer.as_deref();
    let key_id = sig.key_id.as_deref();
    let by = format!(
        "signed by {} (key {})",
        signer.unwrap_or("an unnamed signer"),
        key_id.unwrap_or("unknown")
    );
    let trust = if own.iter().any(|o| {
        o.error.is_none() && o.signer.as_deref() == signer && o.key_id.as_deref() == key_id
    }) {
        Some(Ok(format!("the key of kernel {release}'s own modules")))
    } else {
        keys.map(|keys| {
            keys.iter()
                .filter(|k| {
                    k.keyring
                        .as_deref()
                        .is_none_or(|r| signing::MODULE_KEYRINGS.contains(&r))
                })
                .find(|k| signing::names_key(k, signer, key_id))
                .map(|k| match &k.keyring {
                    Some(ring) => format!("a key the running kernel holds ({}, in {ring})", k.name),
                    None => format!("a key the running kernel holds ({})", k.name),
                })
                .ok_or("no key the running kernel holds for modules has that name or identifier")
        })
    };
    match (trust, enforcement.enforced) {
        (Some(Ok(key)), _) => verdict(Some(true), format!("{by}, {key}")),
        (_, Some(false)) => verdict(
            Some(true),
            format!("{by}; kernel {release} does not enforce signatures: {why}"),
        ),
        (Some(Err(untrusted)), Some(true)) => verdict(
            Some(false),
            format!("{by}: {untrusted}, and kernel {release} refuses untrusted modules: {why}"),
        ),
        (Some(Err(untrusted)), None) => verdict(
            None,
            format!(
                "{by}: {untrusted}; whether kernel {release} enforces signatures is unknown: {why}"
            ),
        ),
        (None, _) => verdict(
            None,
            format!("{by}: the keys the kernel trusts cannot be read (/proc/keys): {why}"),
        ),
    }
}

/// Why kernel `release` would refuse a module carrying `signature`
/// (`None`: unsigned), as a sentence; `None` when it loads it, or when
/// that cannot be known. The kernel's own key is read from one of its own
/// modules ([`crate::kmod::own_module`], near what `before` resolves).
pub fn refusal(
    host: &Host,
    state: &HostSigning,
    release: &str,
    signature: Option<&Signature>,
    before: &crate::kmod::Resolved,
) -> Option<String> {
    let running = crate::kernel::running(host).is_ok_and(|r| r == release);
    let config = kernel_config(host, release);
    let enforcement = enforcement(state, config.as_ref(), running);
    let own = crate::kmod::own_module(host, release, before).and_then(|(_, info)| info.signature);
    let own: Vec<&Signature> = own.iter().collect();
    let verdict = will_load(
        release,
        &enforcement,
        signature,
        &own,
        state.trusted_keys.as_deref(),
    );
    (verdict.will_load == Some(false)).then_some(verdict.will_load_reason)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::root_with;
    use crate::Script;

    const SB: &str = "/sys/firmware/efi/efivars/SecureBoot-8be4df61-93ca-11d2-aa0d-00e098032b8c";
    const SETUP: &str = "/sys/firmware/efi/efivars/SetupMode-8be4df61-93ca-11d2-aa0d-00e098032b8c";
    const MOK: &str = "/sys/firmware/efi/efivars/MokSBStateRT-605dab50-e046-4300-abb6-3dd810dd8b23";
    const KEYS: &str = "\
1d6c02e4 I------     1 perm 1f010000     0     0 asymmetri Debian Secure Boot CA: 6ccece7e: X509.rsa 6ccece7e []
2a6c02e4 I------     1 perm 1f010000     0     0 asymmetri DKMS module signing key: 0a0b0c: X509.rsa 0a0b0c []
";

    fn read(files: &[(&str, &[u8])]) -> HostSigning {
        let root = root_with(files);
        HostSigning::read(&Host::scripted(root.path(), Script::default()))
    }

    #[test]
    fn host_state_is_read_from_sys_proc_and_the_efi_variables() {
        let on: &[u8] = &[6, 0, 0, 0, 1];
        let off: &[u8] = &[6, 0, 0, 0, 0];
        let state = read(&[
            (SB, on),
            (SETUP, off),
            (
                "/sys/kernel/security/lockdown",
                b"none [integrity] confidentiality\n",
            ),
            ("/sys/module/module/parameters/sig_enforce", b"Y\n"),
            ("/proc/cmdline", b"BOOT_IMAGE=/vmlinuz ro quiet\n"),
            ("/proc/keys", KEYS.as_bytes()),
        ]);
        assert_eq!(state.secure_boot, Some(true));
        assert_eq!(state.lockdown.as_deref(), Some("integrity"));
        assert_eq!(state.sig_enforce, Some(true));
        assert_eq!(state.cmdline_sig_enforce, None);
        let names: Vec<_> = state
            .trusted_keys
            .iter()
            .flatten()
            .map(|k| k.name.as_str())
            .collect();
        assert_eq!(names, ["Debian Secure Boot CA", "DKMS module signing key"]);

        // shim's validation off, or the firmware in setup mode: not in force.
        assert_eq!(read(&[(SB, on), (MOK, on)]).secure_boot, Some(false));
        assert_eq!(read(&[(SB, on), (SETUP, on)]).secure_boot, Some(false));
        assert_eq!(read(&[(SB, off)]).secure_boot, Some(false));
        // EFI without efivarfs mounted: unknown; no EFI at all: off.
        assert_eq!(
            read(&[("/sys/firmware/efi/fw_platform_size", b"64")]).secure_boot,
            None
        );
        let bare = read(&[("/proc/cmdline", b"module.sig_enforce=1")]);
        assert_eq!(bare.secure_boot, Some(false));
        assert_eq!(
            (bare.lockdown, bare.sig_enforce, bare.trusted_keys),
            (None, None, None)
        );
        assert_eq!(bare.cmdline_sig_enforce, Some(true));
    }

    #[test]
    fn kernel_config_is_read_from_boot_then_the_module_tree() {
        let root = root_with(&[
            (
                "/boot/config-6.1.0-56-amd64",
                "CONFIG_MODULE_SIG=y\nCONFIG_MODULE_SIG_FORCE=y\n",
            ),
            (
                "/lib/modules/6.1.0-55-amd64/config",
                "CONFIG_MODULE_SIG=y\n",
            ),
        ]);
        let host = Host::scripted(root.path(), Script::default());
        assert!(kernel_config(&host, "6.1.0-56-amd64").is_some_and(|c| c.sig_force));
        assert!(
            kernel_config(&host, "6.1.0-55-amd64").is_some_and(|c| c.module_sig && !c.sig_force)
        );
        assert_eq!(kernel_config(&host, "6.1.0-54-amd64"), None);
    }

    const DEBIAN: KernelConfig = KernelConfig {
        module_sig: true,
        sig_force: false,
        lockdown_in_secure_boot: true,
    };

    #[test]
    fn enforcement_follows_config_then_the_running_kernel_then_secure_boot() {
        let quiet = HostSigning {
            secure_boot: Some(false),
            ..HostSigning::default()
        };
        let forced = KernelConfig {
            sig_force: true,
            ..DEBIAN
        };
        let unsigned = KernelConfig {
            module_sig: false,
            ..DEBIAN
        };
        let sb = HostSigning {
            secure_boot: Some(true),
            ..HostSigning::default()
        };
        let enforced = |h: &HostSigning, c: Option<&KernelConfig>, running| {
            enforcement(h, c, running).enforced
        };
        assert_eq!(enforced(&quiet, Some(&forced), false), Some(true));
        assert_eq!(enforced(&sb, Some(&unsigned), true), Some(false));
        assert_eq!(enforced(&quiet, Some(&DEBIAN), false), Some(false));
        assert_eq!(enforced(&sb, Some(&DEBIAN), false), Some(true));
        assert_eq!(
            enforced(
                &sb,
                Some(&KernelConfig {
                    lockdown_in_secure_boot: false,
                    ..DEBIAN
                }),
                false
            ),
            None
        );
        assert_eq!(enforced(&quiet, None, false), None);
        let param = HostSigning {
            sig_enforce: Some(true),
            ..quiet.clone()
        };
        assert_eq!(enforced(&param, Some(&DEBIAN), true), Some(true));
        assert_eq!(
            enforced(&param, Some(&DEBIAN), false),
            Some(false),
            "the parameter is the running kernel's"
        );
        let cmdline = HostSigning {
            cmdline_sig_enforce: Some(true),
            ..quiet.clone()
        };
        assert_eq!(enforced(&cmdline, Some(&DEBIAN), false), Some(true));
        let locked = HostSigning {
            lockdown: Some("integrity".into()),
            sig_enforce: Some(false),
            ..quiet.clone()
        };
        assert_eq!(
            enforcement(&locked, Some(&DEBIAN), true).reason,
            "the kernel is locked down (integrity)"
        );
        let open = HostSigning {
            lockdown: Some("none".into()),
            sig_enforce: Some(false),
            ..sb.clone()
        };
        assert_eq!(enforced(&open, Some(&DEBIAN), true), Some(false));
        assert_eq!(
            enforced(&open, Some(&DEBIAN), false),
            Some(true),
            "another kernel boots locked down"
        );
        let unknown_sb = HostSigning::default();
        assert_eq!(enforced(&unknown_sb, Some(&DEBIAN), false), None);
        assert_eq!(
            enforced(
                &unknown_sb,
                Some(&KernelConfig {
                    lockdown_in_secure_boot: false,
                    ..DEBIAN
                }),
                false
            ),
            Some(false)
        );
    }

    #[test]
    fn keys_take_their_keyring_and_only_module_keyrings_are_trusted() {
        let listing = format!(
            "{KEYS}0a000001 I------     1 perm 1f0f0000     0     0 keyring   .platform: 1\n\
             0a000002 I------     1 perm 1f0f0000     0     0 keyring   .machine: 1\n"
        );
        let mut keys = formats::signing::keys(&listing);
        let rings = formats::signing::keyrings(&listing);
        // The CA sits in .platform (firmware db), the DKMS key in .machine (MOK).
        place_in_keyrings(&mut keys, &rings, |serial| match serial {
            0x0a000001 => Some(vec![0x1d6c02e4]),
            0x0a000002 => Some(vec![0x2a6c02e4]),
            _ => None,
        });
        let placed: Vec<_> = keys.iter().map(|k| k.keyring.as_deref()).collect();
        assert_eq!(placed, [Some(".platform"), Some(".machine")]);
        let on = Enforcement::new(Some(true), "module.sig_enforce is on");
        let ca = signed("Debian Secure Boot CA", "01");
        let v = will_load("k", &on, Some(&ca), &[], Some(&keys));
        assert_eq!(
            v.will_load,
            Some(false),
            "a firmware key does not sign modules: {v:?}"
        );
        let dkms = signed("DKMS module signing key", "02");
        let v = will_load("k", &on, Some(&dkms), &[], Some(&keys));
        assert_eq!(v.will_load, Some(true));
        assert!(
            v.will_load_reason
                .ends_with("(DKMS module signing key, in .machine)"),
            "{v:?}"
        );
        // Where the keyrings cannot be read, every key of root counts.
        let unplaced = formats::signing::keys(&listing);
        assert_eq!(
            will_load("k", &on, Some(&ca), &[], Some(&unplaced)).will_load,
            Some(true)
        );
    }

    fn signed(signer: &str, key_id: &str) -> Signature {
        Signature {
            id_type: Some("PKCS#7".into()),
            signer: Some(signer.into()),
            key_id: Some(key_id.into()),
            hash_algo: Some("sha256".into()),
            error: None,
        }
    }

    #[test]
    fn will_load_weighs_the_signature_against_the_kernel() {
        let on = Enforcement::new(Some(true), "module.sig_enforce is on");
        let off = Enforcement::new(Some(false), "neither applies");
        let unknown = Enforcement::new(None, "cannot tell");
        let keys = formats::signing::keys(KEYS);
        let intree = signed("Build time autogenerated kernel key", "11:22");
        let dkms = signed("DKMS module signing key", "7A:01");
        let stranger = signed("aacraid test signing key", "7A:02");
        let damaged = Signature {
            error: Some("truncated".into()),
            ..Signature::default()
        };
        let k = "6.1.0-56-amd64";
        let load = |e: &Enforcement, s: Option<&Signature>, keys: Option<&[Key]>| {
            will_load(k, e, s, &[&intree], keys)
        };

        let v = load(&on, None, Some(&keys));
        assert_eq!(v.will_load, Some(false));
        assert_eq!(
            v.will_load_reason,
            "unsigned, and kernel 6.1.0-56-amd64 refuses such modules: module.sig_enforce is on"
        );
        assert_eq!(load(&off, None, Some(&keys)).will_load, Some(true));
        assert_eq!(load(&unknown, None, Some(&keys)).will_load, None);
        assert_eq!(
            load(&on, Some(&damaged), Some(&keys)).will_load,
            Some(false)
        );
        assert!(load(&on, Some(&damaged), None)
            .will_load_reason
            .contains("truncated"));

        assert_eq!(
            load(&on, Some(&intree), None).will_load,
            Some(true),
            "the kernel's own key"
        );
        let v = load(&on, Some(&dkms), Some(&keys));
        assert_eq!(v.will_load, Some(true));
        assert!(
            v.will_load_reason
                .contains("a key the running kernel holds (DKMS module signing key)"),
            "{v:?}"
        );
        let v = load(&on, Some(&stranger), Some(&keys));
        assert_eq!(v.will_load, Some(false));
        assert!(
            v.will_load_reason
                .starts_with("signed by aacraid test signing key (key 7A:02): no key"),
            "{v:?}"
        );
        assert_eq!(
            load(&off, Some(&stranger), Some(&keys)).will_load,
            Some(true)
        );
        assert_eq!(load(&unknown, Some(&stranger), Some(&keys)).will_load, None);
        assert_eq!(
            load(&on, Some(&stranger), None).will_load,
            None,
            "keys unreadable"
        );
        assert_eq!(load(&off, Some(&stranger), None).will_load, Some(true));
        // The same signer name with another key is not the kernel's own.
        let other_build = signed("Build time autogenerated kernel key", "33:44");
        assert_eq!(
            load(&on, Some(&other_build), Some(&keys)).will_load,
            Some(false)
        );
    }
}
