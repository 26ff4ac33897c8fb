//! The texts that say whether a kernel checks module signatures and which
//! keys it trusts: a kernel's build configuration (`/boot/config-<k>`), the
//! lockdown selector (`/sys/kernel/security/lockdown`), the EFI
//! `SecureBoot` variable as efivarfs shows it, the `module.sig_enforce`
//! switch on a kernel command line, and the asymmetric keys `/proc/keys`
//! lists.

use serde::Serialize;

/// What a kernel's build configuration says about module signatures.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct KernelConfig {
    /// `CONFIG_MODULE_SIG=y`: the kernel checks signatures at all.
    pub module_sig: bool,
    /// `CONFIG_MODULE_SIG_FORCE=y`: it refuses unsigned or untrusted modules
    /// whatever the command line says.
    pub sig_force: bool,
    /// The kernel locks itself down when booted with Secure Boot, and so
    /// enforces signatures then: `CONFIG_LOCK_DOWN_IN_EFI_SECURE_BOOT`
    /// (mainline since 5.4, Debian, Ubuntu, Fedora, RHEL 9) or
    /// `CONFIG_EFI_SECURE_BOOT_LOCK_DOWN` (the older distribution patch).
    pub lockdown_in_secure_boot: bool,
}

/// Reads the options of [`KernelConfig`] from a `.config` text; anything
/// else in it is ignored, and an option missing or `is not set` is off.
pub fn kernel_config(text: &str) -> KernelConfig {
    let mut config = KernelConfig::default();
    for line in text.lines() {
        let Some((name, value)) = line.trim().split_once('=') else {
            continue;
        };
        let on = value.trim() == "y";
        match name {
            "CONFIG_MODULE_SIG" => config.module_sig = on,
            "CONFIG_MODULE_SIG_FORCE" => config.sig_force = on,
            "CONFIG_LOCK_DOWN_IN_EFI_SECURE_BOOT" | "CONFIG_EFI_SECURE_BOOT_LOCK_DOWN" => {
                config.lockdown_in_secure_boot |= on
            }
            _ => {}
        }
    }
    config
}

/// The selected word of the lockdown file, `none [integrity]
/// confidentiality` → `integrity`; `None` when nothing is selected.
pub fn lockdown(text: &str) -> Option<String> {
    text.split_whitespace()
        .find_map(|w| w.strip_prefix('[')?.strip_suffix(']'))
        .filter(|w| !w.is_empty())
        .map(str::to_string)
}

/// The value of a boolean EFI variable as efivarfs shows it: four bytes of
/// attributes, then the value byte. `None` when the file is not that shape.
pub fn efi_boolean(data: &[u8]) -> Option<bool> {
    match data {
        [_, _, _, _, value] => Some(*value == 1),
        _ => None,
    }
}

/// What the command line sets `module.sig_enforce` to (the last setting
/// wins, as the kernel reads them); `None` when it does not set it.
pub fn cmdline_sig_enforce(cmdline: &str) -> Option<bool> {
    cmdline
        .split_whitespace()
        .take_while(|w| *w != "--")
        .filter_map(|w| match w.split_once('=') {
            Some(("module.sig_enforce", value)) => Some(value),
            None if w == "module.sig_enforce" => Some("1"),
            _ => None,
        })
        .last()
        .map(|value| matches!(value, "1" | "y" | "Y" | "on"))
}

/// An asymmetric key the kernel holds, as `/proc/keys` describes it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Key {
    /// The certificate's subject as the kernel names it: its common name,
    /// else its organisation, or `organisation: common name` when the
    /// common name does not start with the organisation.
    pub name: String,
    /// The certificate's subject key identifier (else its serial number), in
    /// lower-case hex without separators.
    pub id: String,
    /// The system keyring that holds it (`.builtin_trusted_keys`,
    /// `.secondary_trusted_keys`, `.machine`, `.platform`); null when that
    /// cannot be read.
    pub keyring: Option<String>,
    /// The key's serial number, how keyrings list their members.
    #[serde(skip)]
    pub serial: u32,
}

/// The keyrings whose keys the kernel accepts module signatures from.
pub const MODULE_KEYRINGS: &[&str] = &[
    ".builtin_trusted_keys",
    ".secondary_trusted_keys",
    ".machine",
];

/// The system keyrings (`.builtin_trusted_keys`, `.platform`, ...) of a
/// `/proc/keys` listing that root owns: name and serial number.
pub fn keyrings(listing: &str) -> Vec<(String, u32)> {
    listing
        .lines()
        .filter_map(|line| {
            let (serial, kind, rest) = root_entry(line)?;
            let name = rest.split(": ").next()?;
            (kind == "keyring" && name.starts_with('.')).then(|| (name.to_string(), serial))
        })
        .collect()
}

/// The serial numbers a keyring's read gives (`keyctl read`): native-endian
/// 32-bit integers.
pub fn members(data: &[u8]) -> Vec<u32> {
    data.chunks_exact(4)
        .map(|c| u32::from_ne_bytes([c[0], c[1], c[2], c[3]]))
        .collect()
}

/// A live entry root owns: its serial, type and description. A user may
/// grant root the view of a key in their own keyring and name it anything;
/// only root's keys count.
fn root_entry(line: &str) -> Option<(u32, &str, &str)> {
    let mut fields = line.split_whitespace();
    let serial = u32::from_str_radix(fields.next()?, 16).ok()?;
    let flags = fields.next()?;
    let uid = fields.nth(3)?;
    if uid != "0" || !flags.starts_with('I') || flags.contains(['R', 'D', 'N', 'i']) {
        return None;
    }
    let rest = skip_fields(line, 7)?;
    let (kind, rest) = rest.split_once(char::is_whitespace)?;
    Some((serial, kind, rest.trim_start()))
}

/// The asymmetric keys of a `/proc/keys` listing. A line reads
/// `<serial> <flags> <usage> <expiry> <perm> <uid> <gid> <type>
/// <description>: <subtype>`, where the type is cut to nine characters
/// (`asymmetri`) and an X.509 key's description is `<name>: <id>`. Keys
/// not owned by root, and revoked, dead or negative ones, are left out.
pub fn keys(listing: &str) -> Vec<Key> {
    listing
        .lines()
        .filter_map(|line| {
            let (serial, kind, rest) = root_entry(line)?;
            if kind != "asymmetri" && kind != "asymmetric" {
                return None;
            }
            // `<name>: <id>: <subtype>`; the name itself may hold ": ".
            let mut parts: Vec<&str> = rest.split(": ").collect();
            if parts.len() < 3 {
                return None;
            }
            parts.pop();
            let id = parts.pop()?;
            if id.is_empty() || !id.bytes().all(|b| b.is_ascii_hexdigit()) {
                return None;
            }
            Some(Key {
                name: parts.join(": "),
                id: id.to_ascii_lowercase(),
                keyring: None,
                serial,
            })
        })
        .collect()
}

/// `line` after its first `n` whitespace-separated fields.
fn skip_fields(line: &str, n: usize) -> Option<&str> {
    let mut rest = line.trim_start();
    for _ in 0..n {
        rest = rest.split_once(char::is_whitespace)?.1.trim_start();
    }
    Some(rest)
}

/// Whether `key` is the one a signature names: the signer is the issuer's
/// common name (else its organisation), which is the key's name or its part
/// after `organisation: `; or the signature's key identifier (upper-case
/// hex joined by `:`) is the key's own.
pub fn names_key(key: &Key, signer: Option<&str>, key_id: Option<&str>) -> bool {
    let by_id = key_id.is_some_and(|id| id.replace(':', "").eq_ignore_ascii_case(&key.id));
    let by_name = signer.is_some_and(|s| {
        !s.is_empty()
            && (key.name == s
                || key
                    .name
                    .strip_suffix(s)
                    .is_some_and(|org| org.ends_with(": ")))
    });
    by_id || by_name
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kernel_config_reads_the_three_switches() {
        let debian = "# CONFIG_MODULE_SIG_FORCE is not set\nCONFIG_MODULE_SIG=y\n\
                      CONFIG_MODULE_SIG_ALL=y\nCONFIG_LOCK_DOWN_IN_EFI_SECURE_BOOT=y\n";
        assert_eq!(
            kernel_config(debian),
            KernelConfig {
                module_sig: true,
                sig_force: false,
                lockdown_in_secure_boot: true
            }
        );
        let forced =
            "CONFIG_MODULE_SIG=y\nCONFIG_MODULE_SIG_FORCE=y\nCONFIG_EFI_SECURE_BOOT_LOCK_DOWN=y";
        assert_eq!(
            kernel_config(forced),
            KernelConfig {
                module_sig: true,
                sig_force: true,
                lockdown_in_secure_boot: true
            }
        );
        assert_eq!(
            kernel_config("CONFIG_MODULE_SIG=m\nCONFIG_MODULE_SIG_FORCEX=y"),
            KernelConfig::default()
        );
    }

    #[test]
    fn lockdown_reads_the_bracketed_mode() {
        assert_eq!(
            lockdown("[none] integrity confidentiality\n").as_deref(),
            Some("none")
        );
        assert_eq!(
            lockdown("none integrity [confidentiality]").as_deref(),
            Some("confidentiality")
        );
        assert_eq!(lockdown("none integrity"), None);
        assert_eq!(lockdown("[] x"), None);
    }

    #[test]
    fn efi_boolean_is_the_byte_after_the_attributes() {
        assert_eq!(efi_boolean(&[6, 0, 0, 0, 1]), Some(true));
        assert_eq!(efi_boolean(&[6, 0, 0, 0, 0]), Some(false));
        assert_eq!(efi_boolean(&[6, 0, 0, 0]), None);
        assert_eq!(efi_boolean(&[6, 0, 0, 0, 1, 0]), None);
    }

    #[test]
    fn cmdline_sig_enforce_takes_the_last_setting_before_init_arguments() {
        assert_eq!(cmdline_sig_enforce("ro quiet"), None);
        assert_eq!(cmdline_sig_enforce("ro module.sig_enforce=1"), Some(true));
        assert_eq!(cmdline_sig_enforce("module.sig_enforce"), Some(true));
        assert_eq!(
            cmdline_sig_enforce("module.sig_enforce=1 module.sig_enforce=0"),
            Some(false)
        );
        assert_eq!(cmdline_sig_enforce("ro -- module.sig_enforce=1"), None);
        assert_eq!(cmdline_sig_enforce("xmodule.sig_enforce=1"), None);
    }

    const PROC_KEYS: &str = "\
03bdbcb6 I------     1 perm 1f0b0000     0     0 keyring   .builtin_trusted_keys: 1
1d6c02e4 I------     1 perm 1f010000     0     0 asymmetri Debian Secure Boot CA: 6ccece7e4c6c0d1f6149f3dd27dfcc5cbb419ea1: X509.rsa 4c6c0d1f []
2a1b3c4d I------     1 perm 1f010000     0     0 asymmetri Magrathea: Build time autogenerated kernel key: 7A7DA6189167: X509.rsa 9167 []
2b1b3c4d I------     1 perm 1f010000     0     0 asymmetri broken: not-hex: X509.rsa 9167 []
2c1b3c4d I------     1 perm 1f010000     0     0 asymmetri no id
2d1b3c4d I------     1 perm 3f010001  1000  1000 asymmetri Debian Secure Boot CA: 6ccece7e: X509.rsa 6ccece7e []
2e1b3c4d I-D----     1 perm 1f010000     0     0 asymmetri Old key: 6ccece7e: X509.rsa 6ccece7e []
14172ec2 I------     1 perm 0f0b0000     0     0 blacklist bin:abcd
";

    #[test]
    fn keys_lists_the_asymmetric_keys_by_name_and_id() {
        assert_eq!(
            keys(PROC_KEYS),
            vec![
                Key {
                    name: "Debian Secure Boot CA".into(),
                    id: "6ccece7e4c6c0d1f6149f3dd27dfcc5cbb419ea1".into(),
                    keyring: None,
                    serial: 0x1d6c02e4,
                },
                Key {
                    name: "Magrathea: Build time autogenerated kernel key".into(),
                    id: "7a7da6189167".into(),
                    keyring: None,
                    serial: 0x2a1b3c4d,
                },
            ]
        );
        assert!(keys("").is_empty());
        assert!(keys("garbage\n\u{0} \n").is_empty());
    }

    #[test]
    fn keyrings_are_root_s_dot_named_keyrings_and_members_are_serials() {
        let listing = format!(
            "{PROC_KEYS}\
0a000001 I------     1 perm 1f0f0000     0     0 keyring   .platform: 3
0a000002 I------     1 perm 1f0f0000  1000  1000 keyring   .machine: 1
0a000003 I--Q---     1 perm 3f030000     0     0 keyring   _ses: 1
"
        );
        assert_eq!(
            keyrings(&listing),
            [
                (".builtin_trusted_keys".to_string(), 0x03bdbcb6),
                (".platform".to_string(), 0x0a000001)
            ]
        );
        let mut data = 0x1d6c02e4u32.to_ne_bytes().to_vec();
        data.extend(7u32.to_ne_bytes());
        data.push(1);
        assert_eq!(members(&data), [0x1d6c02e4, 7]);
    }

    #[test]
    fn names_key_matches_the_signer_or_the_key_identifier() {
        let [ca, build] = keys(PROC_KEYS).try_into().expect("two keys");
        assert!(names_key(&ca, Some("Debian Secure Boot CA"), Some("01")));
        assert!(names_key(
            &build,
            Some("Build time autogenerated kernel key"),
            None
        ));
        assert!(names_key(
            &build,
            Some("Magrathea: Build time autogenerated kernel key"),
            None
        ));
        assert!(!names_key(&build, Some("kernel key"), None));
        assert!(!names_key(&build, Some(""), None));
        assert!(names_key(&build, None, Some("7A:7D:A6:18:91:67")));
        assert!(!names_key(
            &ca,
            Some("DKMS module signing key"),
            Some("7A:7D")
        ));
    }
}
