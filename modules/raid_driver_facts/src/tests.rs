//! Unit tests of option handling and fact gathering over a scripted host: a
//! temporary root with two kernels, module files, images and sysfs, and
//! canned answers for the commands.

use super::*;
use ansible_protocol::testing::options;
use formats::testing::{cpio, fake_module, gzip};
use linux_host::Script;
use serde_json::Value;
use std::fs;
use std::os::unix::fs::FileExt;
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
    // What the image cache keys its entries by, besides the image.
    write(root, "/proc/self/exe", b"build one");
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

/// The facts, warnings and `changed` of a real run (`check`: false) or a
/// check-mode run.
fn run(host: &Host, opts: Value, check: bool) -> Result<(Value, Vec<String>)> {
    let plan = RaidDriverFacts::plan(options(opts), &Context::default(), host)?;
    let response = if check {
        RaidDriverFacts::preview(plan, &Context::default())
    } else {
        RaidDriverFacts::apply(plan, &Context::default(), host)?
    };
    assert!(!response.changed);
    Ok((
        serde_json::to_value(&response.values.ansible_facts.raid_driver)?,
        response.warnings,
    ))
}

const CACHE: &str = "var/cache/aacraid-modules/facts";

/// Every kernel's `initramfs` facts, `from_cache` set aside, and whether
/// each came from the cache.
fn images(facts: &Value) -> (Vec<Value>, Vec<bool>) {
    each_kernel(facts, |k| {
        let mut image = k["initramfs"].clone();
        let cached = image["from_cache"].as_bool().expect("from_cache is a bool");
        image["from_cache"] = Value::Null;
        (image, cached)
    })
}

/// `each` of both kernels' facts, unzipped.
fn each_kernel(facts: &Value, each: impl Fn(&Value) -> (Value, bool)) -> (Vec<Value>, Vec<bool>) {
    let kernels = facts["kernels"].as_array().cloned().unwrap_or_default();
    assert_eq!(kernels.len(), 2, "{facts}");
    kernels.iter().map(each).unzip()
}

/// The cache is used only by a run as root.
fn require_root() {
    assert_eq!(
        linux_host::host::process_uid(),
        0,
        "the facts cache is root's: run the unit tests as root"
    );
}

/// The image entries of the cache.
fn entries(root: &Path) -> Vec<String> {
    let mut names = linux_host::testing::names_in(&root.join(CACHE));
    names.retain(|n| {
        n.ends_with(".json")
            && !["tree-", "answer-", "file-"]
                .iter()
                .any(|p| n.starts_with(p))
    });
    names
}

/// The cache's entries whose file name starts with `prefix`.
fn kept(root: &Path, prefix: &str) -> Vec<String> {
    let mut names = linux_host::testing::names_in(&root.join(CACHE));
    names.retain(|n| n.starts_with(prefix));
    names
}

/// The module-tree entries of the cache.
fn trees(root: &Path) -> Vec<String> {
    kept(root, "tree-")
}

/// Every kernel's copies (paths), and whether each list came from the cache.
fn copies(facts: &Value) -> (Vec<Value>, Vec<bool>) {
    each_kernel(facts, |k| {
        let paths: Vec<Value> = k["copies"]
            .as_array()
            .expect("copies")
            .iter()
            .map(|c| c["path"].clone())
            .collect();
        let cached = k["copies_from_cache"].as_bool().expect("a bool");
        (Value::Array(paths), cached)
    })
}

#[test]
fn the_copies_cache_serves_an_unchanged_tree_and_misses_a_changed_one() -> Result<()> {
    require_root();
    let dir = lab();
    let root = dir.path();
    let host = Host::scripted(root, script());
    let modules = serde_json::json!({"gather_subset": ["modules"]});

    // Trees changed in the last seconds are walked, and the walks not kept:
    // a change in the same tick would not show in the folders' times.
    let (walked, cached) = copies(&run(&host, modules.clone(), false)?.0);
    assert_eq!(cached, [false, false]);
    assert!(trees(root).is_empty(), "{:?}", trees(root));

    std::thread::sleep(std::time::Duration::from_secs(3));
    let before = linux_host::testing::names_in(&root.join(CACHE));
    let (_, cached) = copies(&run(&host, modules.clone(), true)?.0);
    assert_eq!(cached, [false, false]);
    assert_eq!(
        linux_host::testing::names_in(&root.join(CACHE)),
        before,
        "check mode keeps nothing"
    );
    run(&host, modules.clone(), false)?;
    assert_eq!(trees(root).len(), 2);
    let (served, cached) = copies(&run(&host, modules.clone(), false)?.0);
    assert_eq!(cached, [true, true]);
    assert_eq!(served, walked);

    // A copy dropped into a folder of the newer tree: that tree is walked
    // again and the copy found; the other is still served.
    write(
        root,
        &format!("/lib/modules/{NEW}/kernel/drivers/scsi/aacraid.ko"),
        b"stray",
    );
    let (after, cached) = copies(&run(&host, modules.clone(), false)?.0);
    assert_eq!(cached, [false, true]);
    assert!(
        after[0]
            .to_string()
            .contains("kernel/drivers/scsi/aacraid.ko"),
        "{}",
        after[0]
    );
    // A copy removed: its folder changed too.
    fs::remove_file(root.join(format!(
        "lib/modules/{OLD}/kernel/drivers/scsi/aacraid/aacraid.ko"
    )))?;
    let (after, cached) = copies(&run(&host, modules.clone(), false)?.0);
    assert_eq!(cached, [false, false]);
    assert_ne!(after[1], walked[1]);

    // A removed kernel's entry goes at the next real run.
    std::thread::sleep(std::time::Duration::from_secs(3));
    run(&host, modules.clone(), false)?;
    assert_eq!(trees(root).len(), 2);
    fs::remove_dir_all(root.join(format!("lib/modules/{OLD}")))?;
    run(
        &host,
        serde_json::json!({"gather_subset": ["modules"], "kernels": [NEW]}),
        false,
    )?;
    assert_eq!(trees(root).len(), 1, "{:?}", trees(root));
    Ok(())
}

#[test]
fn the_image_cache_serves_an_unchanged_image_and_misses_a_changed_one() -> Result<()> {
    use std::os::unix::fs::PermissionsExt;
    require_root();
    let dir = lab();
    let root = dir.path();
    let host = Host::scripted(root, script());
    let all = serde_json::json!({});

    // Check mode reads images but keeps nothing.
    let (first, _) = run(&host, all.clone(), true)?;
    assert!(!root.join(CACHE).exists());
    let (decoded, cached) = images(&first);
    assert_eq!(cached, [false, false]);

    // A real run keeps one entry per image, in a folder only root may enter.
    let (_, warnings) = run(&host, all.clone(), false)?;
    assert_eq!(warnings, ["arcconf is not installed: its facts are null"]);
    assert_eq!(entries(root).len(), 2);
    for folder in [CACHE, "var/cache/aacraid-modules"] {
        assert_eq!(
            fs::metadata(root.join(folder))?.permissions().mode() & 0o777,
            0o700,
            "{folder}"
        );
    }
    for entry in entries(root) {
        let mode = fs::metadata(root.join(CACHE).join(&entry))?
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600, "{entry}");
    }

    // The next gather reads both images from the cache and reports the same facts.
    let (second, _) = run(&host, all.clone(), false)?;
    let (from_cache, cached) = images(&second);
    assert_eq!(cached, [true, true]);
    assert_eq!(from_cache, decoded);

    // The newer image rewritten in place (same size): that one is decoded again.
    let old_image = fs::read(root.join(format!("boot/initrd.img-{OLD}")))?;
    let image = root.join(format!("boot/initrd.img-{NEW}"));
    let mut bytes = fs::read(&image)?;
    let old_size = bytes.len();
    let vendor = fs::read(root.join(format!("lib/modules/{NEW}/updates/aacraid.ko")))?;
    bytes = cpio(&[(
        &format!("usr/lib/modules/{NEW}/updates/aacraid.ko"),
        &vendor,
    )]);
    bytes.resize(old_size.max(bytes.len()), 0);
    fs::write(&image, &bytes)?;
    let (third, _) = run(&host, all.clone(), false)?;
    let (after, cached) = images(&third);
    assert_eq!(cached, [false, true]);
    assert_eq!(after[0]["matches_resolved"], true, "{}", after[0]);
    assert_eq!(after[0]["module"]["srcversion"], "VENDOR56");
    assert_eq!(
        entries(root).len(),
        2,
        "the changed image's entry is replaced"
    );
    let (_, cached) = images(&run(&host, all.clone(), false)?.0);
    assert_eq!(cached, [true, true]);

    // Another build of the module decodes every image again.
    write(root, "/proc/self/exe", b"build two");
    let (_, cached) = images(&run(&host, all.clone(), true)?.0);
    assert_eq!(cached, [false, false]);

    // A writer killed before its rename leaves a temporary file; the next
    // write removes it, but not one of a writer still running.
    write(root, "/proc/self/exe", b"build one");
    let name = &entries(root)[0];
    let killed = format!(".{name}.tmp4194305.0");
    let running = format!(".{name}.tmp{}.0", std::process::id());
    for leftover in [&killed, &running] {
        fs::write(root.join(CACHE).join(leftover), b"half")?;
    }
    write(root, &format!("/boot/initrd.img-{OLD}"), &old_image);
    let (_, cached) = images(&run(&host, all.clone(), false)?.0);
    assert_eq!(cached, [true, false], "the older image was written again");
    fs::remove_file(root.join(CACHE).join(&running))?;
    assert_eq!(entries(root).len(), 2, "{:?}", entries(root));

    // An image that cannot be read is never kept: it is tried each time.
    write(root, &format!("/boot/initrd.img-{OLD}"), b"not an image");
    for _ in 0..2 {
        let (facts, _) = run(&host, all.clone(), false)?;
        assert_eq!(images(&facts).1, [true, false]);
        assert!(facts["kernels"][1]["initramfs"]["error"].is_string());
    }
    write(root, &format!("/boot/initrd.img-{OLD}"), &old_image);

    // A damaged entry is a miss, and a real run replaces it.
    for entry in entries(root) {
        fs::write(root.join(CACHE).join(entry), b"{\"key\": 1")?;
    }
    let (_, cached) = images(&run(&host, all.clone(), false)?.0);
    assert_eq!(cached, [false, false]);
    let (_, cached) = images(&run(&host, all.clone(), false)?.0);
    assert_eq!(cached, [true, true]);

    // A removed image's entry goes at the next real run, not in check mode,
    // even when that run has nothing new to keep.
    fs::remove_file(root.join(format!("boot/initrd.img-{OLD}")))?;
    run(&host, all.clone(), true)?;
    assert_eq!(entries(root).len(), 2, "check mode removes nothing");
    run(&host, all, false)?;
    let [kept] = &entries(root)[..] else {
        panic!("{:?}", entries(root))
    };
    let kept = fs::read_to_string(root.join(CACHE).join(kept))?;
    assert!(kept.contains(&format!("initrd.img-{NEW}")), "{kept}");
    Ok(())
}

#[test]
fn an_image_cache_others_could_write_is_not_used() -> Result<()> {
    use std::os::unix::fs::PermissionsExt;
    require_root();
    type Layout = fn(&Path) -> std::io::Result<()>;
    let unsafe_layouts: [(&str, Layout); 3] = [
        ("a folder above it others may write", |root| {
            fs::create_dir_all(root.join(CACHE))?;
            fs::set_permissions(root.join(CACHE), fs::Permissions::from_mode(0o700))?;
            fs::set_permissions(root.join("var/cache"), fs::Permissions::from_mode(0o777))
        }),
        ("the folder open to others", |root| {
            fs::create_dir_all(root.join(CACHE))?;
            fs::set_permissions(root.join(CACHE), fs::Permissions::from_mode(0o755))
        }),
        ("the folder a link", |root| {
            fs::create_dir_all(root.join("elsewhere"))?;
            fs::set_permissions(root.join("elsewhere"), fs::Permissions::from_mode(0o700))?;
            fs::create_dir_all(root.join("var/cache/aacraid-modules"))?;
            std::os::unix::fs::symlink(root.join("elsewhere"), root.join(CACHE))
        }),
    ];
    for (what, make) in unsafe_layouts {
        let dir = lab();
        let root = dir.path();
        make(root)?;
        let host = Host::scripted(root, script());
        let (facts, warnings) = run(&host, serde_json::json!({}), false)?;
        assert_eq!(images(&facts).1, [false, false], "{what}");
        assert_eq!(warnings.len(), 2, "{what}: {warnings:?}");
        assert!(
            warnings[0]
                .starts_with("the image cache /var/cache/aacraid-modules/facts is not used: ")
                && warnings[0].contains("is not a real folder of root's"),
            "{what}: {warnings:?}"
        );
        assert_eq!(entries(root), Vec::<String>::new(), "{what}");
        assert_eq!(
            fs::read_dir(root.join("elsewhere"))
                .map(|d| d.count())
                .unwrap_or(0),
            0,
            "{what}"
        );
    }

    // Turned off, or a bad value.
    let dir = lab();
    let host = Host::scripted(dir.path(), script());
    let (facts, warnings) = run(&host, serde_json::json!({"image_cache": ""}), false)?;
    assert_eq!(images(&facts).1, [false, false]);
    assert_eq!(warnings, ["arcconf is not installed: its facts are null"]);
    assert!(!dir.path().join("var/cache").exists());
    for bad in ["cache", "/var/cache/../tmp"] {
        let refused = RaidDriverFacts::plan(
            options(serde_json::json!({"image_cache": bad})),
            &Context::default(),
            &host,
        );
        let msg = format!("{:#}", refused.err().expect("refused"));
        assert!(
            msg.starts_with("image_cache must be an absolute path"),
            "{msg}"
        );
    }
    Ok(())
}

/// The tools a run of `opts` called (their program names), and its facts
/// with every `*from_cache` flag set aside.
fn tools_called(host: &Host, opts: &Value) -> Result<(Vec<String>, Value)> {
    let before = host.calls().len();
    let (mut facts, _) = run(host, opts.clone(), false)?;
    for kernel in facts["kernels"].as_array_mut().into_iter().flatten() {
        kernel["copies_from_cache"] = Value::Null;
        kernel["initramfs"]["from_cache"] = Value::Null;
    }
    let called = host.calls()[before..]
        .iter()
        .map(|argv| argv.iter().take(3).cloned().collect::<Vec<_>>().join(" "))
        .filter(|call| !call.starts_with("dmesg"))
        .collect();
    Ok((called, facts))
}

const SETTLE: std::time::Duration = std::time::Duration::from_secs(3);

#[test]
fn the_tools_answers_and_the_copies_facts_are_served_until_what_they_read_changes() -> Result<()> {
    require_root();
    let dir = lab();
    let root = dir.path();
    let host = Host::scripted(root, script());
    let all = serde_json::json!({});
    let both = ["modinfo -k 6.1.0-56-amd64", "modinfo -k 6.1.0-55-amd64"];
    let dkms = "dkms status -m";
    let sorted = |mut calls: Vec<String>| {
        calls.sort();
        calls
    };

    // Files changed in the last seconds: asked, and the answers not kept.
    let (called, asked) = tools_called(&host, &all)?;
    assert_eq!(sorted(called), [dkms, both[1], both[0]]);
    assert!(kept(root, "answer-").is_empty() && kept(root, "file-").is_empty());

    // Settled: asked once more and kept (not in check mode); then served.
    std::thread::sleep(SETTLE);
    run(&host, all.clone(), true)?;
    assert!(kept(root, "answer-").is_empty(), "check mode keeps nothing");
    let (called, _) = tools_called(&host, &all)?;
    assert_eq!(called.len(), 3, "{called:?}");
    assert_eq!(kept(root, "answer-").len(), 3);
    assert_eq!(
        kept(root, "file-").len(),
        3,
        "two copies of one kernel, one of the other"
    );
    let (called, served) = tools_called(&host, &all)?;
    assert!(called.is_empty(), "{called:?}");
    assert_eq!(served, asked);

    // kmod's configuration changed: both kernels' modinfo is asked again,
    // not dkms.
    write(
        root,
        "/etc/modprobe.d/aacraid.conf",
        b"alias scsi_hba aacraid\n",
    );
    let (called, _) = tools_called(&host, &all)?;
    assert_eq!(sorted(called), [both[1], both[0]]);

    // One kernel's indices rewritten: its modinfo is asked again, and dkms
    // (a new file changed a folder of that kernel's tree), not the other
    // kernel's modinfo.
    std::thread::sleep(SETTLE);
    tools_called(&host, &all)?;
    write(
        root,
        &format!("/lib/modules/{NEW}/modules.dep.bin"),
        b"index",
    );
    let (called, _) = tools_called(&host, &all)?;
    assert_eq!(sorted(called), [dkms, both[0]]);

    // A copy rewritten in place: read again (its new facts reported), and
    // dkms asked again (it compares its builds with the installed copies).
    std::thread::sleep(SETTLE);
    tools_called(&host, &all)?;
    let updates = root.join(format!("lib/modules/{NEW}/updates/aacraid.ko"));
    let rebuilt = module("1.2-1.41024dkms", "VENDOR57", NEW);
    assert_eq!(rebuilt.len() as u64, fs::metadata(&updates)?.len());
    fs::OpenOptions::new()
        .write(true)
        .open(&updates)?
        .write_all_at(&rebuilt, 0)?;
    let (called, facts) = tools_called(&host, &all)?;
    assert_eq!(called, [dkms]);
    assert_eq!(facts["kernels"][0]["resolved"]["srcversion"], "VENDOR57");

    // The DKMS tree changed: dkms asked again.
    std::thread::sleep(SETTLE);
    tools_called(&host, &all)?;
    write(
        root,
        "/var/lib/dkms/aacraid/1.2.1.41024/source/dkms.conf",
        b"PACKAGE_NAME=aacraid\n",
    );
    let (called, _) = tools_called(&host, &all)?;
    assert_eq!(called, [dkms]);

    // An override of the module's dkms.conf: dkms asked again.
    std::thread::sleep(SETTLE);
    tools_called(&host, &all)?;
    write(
        root,
        "/etc/dkms/aacraid.conf",
        b"BUILD_EXCLUSIVE_KERNEL=^6\n",
    );
    let (called, _) = tools_called(&host, &all)?;
    assert_eq!(called, [dkms]);

    // A configuration that moves DKMS's trees: dkms asked at every gather.
    write(root, "/etc/dkms/framework.conf", b"dkms_tree=/srv/dkms\n");
    std::thread::sleep(SETTLE);
    for _ in 0..2 {
        let (called, _) = tools_called(&host, &all)?;
        assert_eq!(called, [dkms]);
    }
    Ok(())
}
