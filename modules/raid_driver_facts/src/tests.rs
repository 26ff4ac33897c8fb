//! Unit tests of option handling and fact gathering over a scripted host: a
//! temporary root with two kernels, module files, images and sysfs, and
//! canned answers for the commands.

use super::*;
use ansible_protocol::testing::options;
use formats::testing::{cpio, fake_module, gzip};
use linux_host::Script;
use serde_json::Value;
use std::fs;
use std::path::Path;

ansible_protocol::sidecar_test!(RaidDriverFacts, "../raid_driver_facts.yml");

const NEW: &str = "6.1.0-56-amd64";
const OLD: &str = "6.1.0-55-amd64";

fn module(version: &str, srcversion: &str, kver: &str) -> Vec<u8> {
    fake_module(&[
        ("version", version),
        ("license", "GPL"),
        ("srcversion", srcversion),
        ("name", "aacraid"),
        (
            "vermagic",
            &format!("{kver} SMP preempt mod_unload modversions "),
        ),
    ])
}

fn write(root: &Path, path: &str, data: &[u8]) {
    let full = root.join(path.trim_start_matches('/'));
    fs::create_dir_all(full.parent().expect("absolute path")).expect("mkdir");
    fs::write(full, data).expect("write");
}

/// Two kernels. The newer (running) one has the vendor driver in `updates/`
/// and an image (early cpio + gzip) that still holds the in-tree driver;
/// the older one has only the in-tree driver and an image holding it.
fn lab() -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path();
    let intree_new = module("1.2.1[50983]-custom", "INTREE56", NEW);
    let vendor_new = module("1.2-1.41024dkms", "VENDOR56", NEW);
    let intree_old = module("1.2.1[50983]-custom", "INTREE55", OLD);
    for (k, intree) in [(NEW, &intree_new), (OLD, &intree_old)] {
        write(root, &format!("/lib/modules/{k}/modules.order"), b"");
        write(
            root,
            &format!("/lib/modules/{k}/kernel/drivers/scsi/aacraid/aacraid.ko"),
            intree,
        );
    }
    write(
        root,
        &format!("/lib/modules/{NEW}/updates/aacraid.ko"),
        &vendor_new,
    );
    write(
        root,
        &format!("/lib/modules/{NEW}/modules.dep"),
        b"updates/aacraid.ko:\n",
    );
    write(
        root,
        &format!("/lib/modules/{OLD}/modules.dep"),
        b"kernel/drivers/scsi/aacraid/aacraid.ko:\n",
    );
    write(
        root,
        "/proc/sys/kernel/osrelease",
        format!("{NEW}\n").as_bytes(),
    );
    write(root, "/etc/debian_version", b"12.12\n");

    let mut image = cpio(&[("kernel/x86/microcode/AuthenticAMD.bin", b"ucode")]);
    image.resize(1024, 0);
    image.extend(gzip(&cpio(&[
        (
            &format!("usr/lib/modules/{NEW}/kernel/drivers/scsi/aacraid/aacraid.ko"),
            &intree_new,
        ),
        ("usr/lib/systemd/systemd", b"\x7fELF..."),
    ])));
    write(root, &format!("/boot/initrd.img-{NEW}"), &image);
    let old_image = cpio(&[(
        &format!("lib/modules/{OLD}/kernel/drivers/scsi/aacraid/aacraid.ko"),
        &intree_old,
    )]);
    write(root, &format!("/boot/initrd.img-{OLD}"), &old_image);

    write(
        root,
        "/sys/module/aacraid/version",
        b"1.2.1[50983]-custom\n",
    );
    write(root, "/sys/module/aacraid/srcversion", b"INTREE56\n");
    write(root, "/sys/module/aacraid/initstate", b"live\n");
    write(root, "/sys/module/aacraid/taint", b"OE\n");
    dir
}

fn script() -> Script {
    Script::new()
        .answer(
            &["modinfo", "-k", NEW, "-n", "aacraid"],
            0,
            &format!("/lib/modules/{NEW}/updates/aacraid.ko\n"),
            "",
        )
        .answer(
            &["modinfo", "-k", OLD, "-n", "aacraid"],
            0,
            &format!("/lib/modules/{OLD}/kernel/drivers/scsi/aacraid/aacraid.ko\n"),
            "",
        )
        .answer(
            &["dkms", "status", "-m", "aacraid"],
            0,
            &format!("aacraid/1.2.1.41024, {NEW}, x86_64: installed (Original modules exist)\n"),
            "",
        )
        .answer(
            &["dmesg"],
            0,
            "[    5.253271] Adaptec aacraid driver 1.2.1[50983]-custom\n",
            "",
        )
}

/// The facts and warnings of one run, the facts as JSON.
fn gather_facts(host: &Host, opts: Options) -> Result<(Value, Vec<String>)> {
    let plan = RaidDriverFacts::plan(opts, &Context::default(), host)?;
    Ok((serde_json::to_value(&plan.facts)?, plan.warnings))
}

#[test]
fn facts_of_a_host_with_a_stale_image() -> Result<()> {
    let dir = lab();
    let host = Host::scripted(dir.path(), script());
    let (f, warnings) = gather_facts(&host, options(serde_json::json!({})))?;
    insta::assert_json_snapshot!("stale_image", f);
    assert_eq!(warnings, ["arcconf is not installed: its facts are null"]);

    assert_eq!(f["kernels"][0]["release"], NEW);
    assert_eq!(f["kernels"][0]["resolved"]["tree"], "updates");
    assert_eq!(f["kernels"][0]["initramfs"]["contains_module"], true);
    assert_eq!(f["kernels"][0]["initramfs"]["matches_resolved"], false);
    assert_eq!(f["kernels"][0]["initramfs"]["early_cpio"], true);
    assert_eq!(f["kernels"][1]["initramfs"]["matches_resolved"], true);
    assert_eq!(f["next_boot"]["source"], "initramfs");
    assert_eq!(f["loaded"]["taint"], "OE");
    assert_eq!(
        f["reboot_required"], false,
        "the image still holds the loaded driver"
    );
    Ok(())
}

#[test]
fn fresh_image_means_reboot_required() -> Result<()> {
    let dir = lab();
    let vendor = fs::read(
        dir.path()
            .join(format!("lib/modules/{NEW}/updates/aacraid.ko")),
    )?;
    let mut image = gzip(&cpio(&[(
        &format!("usr/lib/modules/{NEW}/updates/aacraid.ko"),
        &vendor,
    )]));
    // A segment appended after the main archive is not an early cpio.
    image.extend(cpio(&[("etc/motd", b"appended")]));
    write(dir.path(), &format!("/boot/initrd.img-{NEW}"), &image);
    let host = Host::scripted(dir.path(), script());
    let (f, _) = gather_facts(&host, options(serde_json::json!({"kernels": "running"})))?;
    assert_eq!(f["kernels"].as_array().map(Vec::len), Some(1));
    assert_eq!(f["kernels"][0]["initramfs"]["matches_resolved"], true);
    assert_eq!(f["kernels"][0]["initramfs"]["early_cpio"], false);
    assert_eq!(f["next_boot"]["version"], "1.2-1.41024dkms");
    assert_eq!(f["reboot_required"], true);
    assert_eq!(
        f["reboot_reason"],
        "loaded srcversion INTREE56 differs from VENDOR56 in the initramfs"
    );
    Ok(())
}

#[test]
fn missing_tools_and_sources_warn_but_do_not_fail() -> Result<()> {
    let dir = lab();
    fs::write(
        dir.path().join(format!("boot/initrd.img-{OLD}")),
        b"garbage",
    )?;
    let host = Host::scripted(dir.path(), Script::new());
    let (f, warnings) = gather_facts(
        &host,
        options(serde_json::json!({"kernels": [OLD, "5.10.0-9-amd64"]})),
    )?;
    assert_eq!(f["kernels"][0]["resolved_by"], "modules.dep");
    assert_eq!(f["kernels"][0]["resolved"]["tree"], "kernel");
    assert_eq!(f["kernels"][0]["initramfs"]["contains_module"], Value::Null);
    assert_eq!(f["kernels"][1]["installed"], false);
    assert_eq!(f["dkms"], Value::Null);
    assert_eq!(f["kernel_log"], Value::Null);
    let warnings = warnings.join("\n");
    for expected in [
        "kernel 5.10.0-9-amd64 is not installed",
        "modinfo (kmod) is not installed",
        "unrecognised data at byte 0",
        "dkms is not installed",
        "arcconf is not installed",
        "cannot read the kernel log",
    ] {
        assert!(
            warnings.contains(expected),
            "missing {expected:?} in:\n{warnings}"
        );
    }
    Ok(())
}

#[test]
fn subsets_limit_the_work() -> Result<()> {
    let dir = lab();
    let host = Host::scripted(dir.path(), script());
    let (f, warnings) = gather_facts(
        &host,
        options(
            serde_json::json!({"gather_subset": ["all", "!dkms", "!controllers", "!kernel_log", "!initramfs"]}),
        ),
    )?;
    assert_eq!(f["dkms"], Value::Null);
    assert_eq!(f["arcconf"], Value::Null);
    assert_eq!(f["kernels"][0]["initramfs"], Value::Null);
    assert!(warnings.is_empty(), "{warnings:?}");
    let ran: Vec<String> = host.calls().iter().map(|c| c[0].clone()).collect();
    assert_eq!(ran, ["modinfo", "modinfo"]);
    let err = options::parse_subset(&["modules".into(), "disks".into()]).expect_err("unknown part");
    assert!(
        err.to_string()
            .contains("unknown part \"disks\"; choose from all, modules"),
        "{err}"
    );
    Ok(())
}

#[test]
fn bad_names_are_refused_before_any_command() {
    let host = Host::scripted("/nonexistent", script());
    for (json, expected) in [
        (
            serde_json::json!({"name": "../x"}),
            "invalid module name \"../x\"",
        ),
        (
            serde_json::json!({"name": "aacraid; rm -rf /"}),
            "invalid module name",
        ),
        (
            serde_json::json!({"arcconf_path": "arcconf"}),
            "arcconf_path must be an absolute path",
        ),
    ] {
        let err = gather_facts(&host, options(json))
            .err()
            .map(|e| e.to_string());
        assert!(err.as_deref().unwrap_or("").contains(expected), "{err:?}");
    }
    let Value::Object(bad_kernel) = serde_json::json!({"kernels": ["../../etc"]}) else {
        unreachable!()
    };
    let err = ansible_protocol::options::from_value::<Options>(bad_kernel)
        .err()
        .map(|e| e.to_string());
    assert!(
        err.as_deref()
            .unwrap_or("")
            .contains("invalid kernel release \"../../etc\""),
        "{err:?}"
    );
    assert!(host.calls().is_empty());
}

#[test]
fn signing_facts_predict_which_copies_an_enforcing_kernel_refuses() -> Result<()> {
    let dir = lab();
    // The running kernel enforces signatures; its in-tree module carries a
    // real Debian signature tail; the vendor build in updates/ is unsigned.
    // The older kernel has a configuration that does not force signatures,
    // and the host has no EFI: it loads anything.
    let tail = fs::read(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../crates/formats/tests/fixtures/modsig/debian-aacraid-tail.bin"),
    )?;
    let mut signed = module("1.2.1[50983]-custom", "INTREE56", NEW);
    signed.extend(&tail);
    write(
        dir.path(),
        &format!("/lib/modules/{NEW}/kernel/drivers/scsi/aacraid/aacraid.ko"),
        &signed,
    );
    write(
        dir.path(),
        &format!("/boot/config-{NEW}"),
        b"CONFIG_MODULE_SIG=y\n",
    );
    write(
        dir.path(),
        &format!("/boot/config-{OLD}"),
        b"CONFIG_MODULE_SIG=y\n# CONFIG_MODULE_SIG_FORCE is not set\n",
    );
    write(
        dir.path(),
        "/sys/module/module/parameters/sig_enforce",
        b"Y\n",
    );
    write(dir.path(), "/proc/keys", b"");
    let host = Host::scripted(dir.path(), script());
    let (f, _) = gather_facts(
        &host,
        options(serde_json::json!({"gather_subset": ["modules", "initramfs", "signing"]})),
    )?;

    assert_eq!(f["signing"]["sig_enforce"], true);
    assert_eq!(f["signing"]["secure_boot"], false);
    assert_eq!(f["signing"]["trusted_keys"], serde_json::json!([]));
    let [new, old] = [&f["kernels"][0], &f["kernels"][1]];
    assert_eq!(
        (&new["release"], &new["signing"]["enforced"]),
        (&Value::from(NEW), &Value::Bool(true))
    );
    assert_eq!(new["signing"]["reason"], "module.sig_enforce is on");
    assert_eq!(new["resolved"]["tree"], "updates");
    assert_eq!(new["resolved"]["will_load"], false);
    assert_eq!(
        new["resolved"]["will_load_reason"],
        format!("unsigned, and kernel {NEW} refuses such modules: module.sig_enforce is on")
    );
    let copies = new["copies"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default();
    assert_eq!(copies.len(), 2);
    assert_eq!(
        (&copies[0]["tree"], &copies[0]["will_load"]),
        (&Value::from("kernel"), &Value::Bool(true))
    );
    assert!(
        copies[0]["will_load_reason"].as_str().is_some_and(|r| r
            .starts_with("signed by Build time autogenerated kernel key (key ")
            && r.ends_with(&format!("the key of kernel {NEW}'s own modules"))),
        "{}",
        copies[0]
    );
    assert_eq!(
        (&copies[1]["tree"], &copies[1]["will_load"]),
        (&Value::from("updates"), &Value::Bool(false))
    );
    // The image still holds the in-tree build as it was, unsigned.
    assert_eq!(new["initramfs"]["module"]["signature"], Value::Null);
    assert_eq!(new["initramfs"]["module"]["will_load"], false);

    assert_eq!(old["signing"]["enforced"], false);
    assert_eq!(old["resolved"]["will_load"], true);
    assert!(old["resolved"]["will_load_reason"]
        .as_str()
        .is_some_and(|r| r.starts_with(&format!(
            "unsigned; kernel {OLD} loads it and marks itself tainted"
        ))));

    // Without the part, nothing is judged.
    let (f, _) = gather_facts(
        &host,
        options(serde_json::json!({"gather_subset": ["modules"]})),
    )?;
    assert_eq!(f["signing"], Value::Null);
    assert_eq!(f["kernels"][0]["signing"], Value::Null);
    assert_eq!(f["kernels"][0]["resolved"]["will_load"], Value::Null);
    assert_eq!(f["kernels"][0]["resolved"]["will_load_reason"], Value::Null);
    Ok(())
}
