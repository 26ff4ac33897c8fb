//! Unit tests of planning over a scripted host with small gzip images;
//! the system tests run real dracut and mkinitramfs in the lab.

use std::path::PathBuf;

use super::*;
use ansible_protocol::testing::options;
use ansible_protocol::CommandFailed;
use formats::testing::{cpio, fake_module, gzip};
use linux_host::testing::root_with;
use linux_host::Script;
use serde_json::json;

ansible_protocol::sidecar_test!(InitramfsRegen, "../initramfs_regen.yml");

const K: &str = "6.1.0-56-amd64";
const OLD: &str = "6.1.0-55-amd64";

fn module(version: &str) -> Vec<u8> {
    fake_module(&[("version", version), ("name", "aacraid")])
}

fn image(kver: &str, relative: &str, data: &[u8]) -> Vec<u8> {
    gzip(&cpio(&[(
        &format!("usr/lib/modules/{kver}/{relative}"),
        data,
    )]))
}

const INTREE: &str = "kernel/drivers/scsi/aacraid/aacraid.ko";
const UPDATES: &str = "updates/aacraid.ko";

/// Kernel K resolves `updates/aacraid.ko` (new), OLD the in-tree file;
/// `extra` adds files and `script` more answers.
fn host(extra: &[(String, Vec<u8>)], script: Script) -> (tempfile::TempDir, Host) {
    let mut files: Vec<(String, Vec<u8>)> = vec![
        ("/etc/debian_version".into(), b"12.8\n".to_vec()),
        (format!("/lib/modules/{K}/modules.order"), vec![]),
        (format!("/lib/modules/{OLD}/modules.order"), vec![]),
        (format!("/lib/modules/{K}/{INTREE}"), module("old")),
        (format!("/lib/modules/{K}/{UPDATES}"), module("new")),
        (format!("/lib/modules/{OLD}/{INTREE}"), module("old")),
    ];
    files.extend(extra.iter().cloned());
    let dir = root_with(&files);
    let script = script
        .answer(
            &["modinfo", "-k", K, "-n", "megaraid_sas"],
            1,
            "",
            "modinfo: ERROR: Module megaraid_sas not found.\n",
        )
        .answer(&["modinfo", "-k", K, "-n", "aacraid"], 0, &format!("/lib/modules/{K}/{UPDATES}\n"), "")
        .answer(&["modinfo", "-k", OLD, "-n", "aacraid"], 0, &format!("/lib/modules/{OLD}/{INTREE}\n"), "")
        .answer(
            &["df", "-Pk", "/boot"],
            0,
            "Filesystem 1024-blocks Used Available Capacity Mounted on\n/dev/sda1 1000000 1000 999000 1% /boot\n",
            "",
        );
    let host = Host::scripted(dir.path(), script);
    (dir, host)
}

fn dracut() -> Script {
    Script::new().answer(&["dracut", "--version"], 0, "", "")
}

fn images(k_image: &[u8], old_image: &[u8]) -> Vec<(String, Vec<u8>)> {
    vec![
        (format!("/boot/initrd.img-{K}"), k_image.to_vec()),
        (format!("/boot/initrd.img-{OLD}"), old_image.to_vec()),
    ]
}

#[test]
fn only_the_stale_image_is_planned_and_no_tool_runs() -> Result<()> {
    let stale = image(K, INTREE, &module("old"));
    let current = image(OLD, INTREE, &module("old"));
    let (_dir, host) = host(&images(&stale, &current), dracut());
    let plan = InitramfsRegen::plan(options(json!({})), &Context::default(), &host)?;
    assert_eq!(plan.tool, Tool::Dracut);
    let verdicts: Vec<(&str, bool, &str)> = plan
        .kernels
        .iter()
        .map(|k| (k.kernel.as_str(), k.rebuild, k.reason.as_str()))
        .collect();
    assert_eq!(
        verdicts,
        [
            (K, true, "the image holds kernel/drivers/scsi/aacraid/aacraid.ko (old), the kernel resolves updates/aacraid.ko (new)"),
            (OLD, false, "current"),
        ]
    );
    let preview = InitramfsRegen::preview(plan, &Context::default());
    assert!(preview.changed);
    assert_eq!(
        preview.values.kernels[0].modules[0].path.as_deref(),
        Some(UPDATES)
    );
    let diff = preview.diff.expect("diff");
    assert!(diff.before.contains(INTREE));
    assert!(diff.after.contains(UPDATES));
    assert!(
        host.calls()
            .iter()
            .all(|c| c[0] == "modinfo" || c[0] == "df"),
        "{:?}",
        host.calls()
    );
    Ok(())
}

#[test]
fn current_images_need_nothing_unless_forced() -> Result<()> {
    let current = image(K, UPDATES, &module("new"));
    let old = image(OLD, INTREE, &module("old"));
    let (_dir, host) = host(&images(&current, &old), dracut());
    let plan = InitramfsRegen::plan(options(json!({})), &Context::default(), &host)?;
    assert!(plan.kernels.iter().all(|k| !k.rebuild));
    let done = InitramfsRegen::apply(plan, &Context::default(), &host)?;
    assert!(!done.changed);
    assert!(
        host.calls().iter().all(|c| c[0] == "modinfo"),
        "no tool, no df: {:?}",
        host.calls()
    );
    let forced = InitramfsRegen::plan(
        options(json!({"force": true, "kernels": [OLD]})),
        &Context::default(),
        &host,
    )?;
    assert_eq!(
        forced.kernels[0].reason,
        "current, rebuilt because force is set"
    );
    Ok(())
}

#[test]
fn a_missing_image_or_module_is_stale() -> Result<()> {
    let without = gzip(&cpio(&[(
        "usr/lib/modules/6.1.0-55-amd64/kernel/x.ko",
        b"x",
    )]));
    let (_dir, host) = host(&[(format!("/boot/initrd.img-{OLD}"), without)], dracut());
    let plan = InitramfsRegen::plan(options(json!({})), &Context::default(), &host)?;
    assert_eq!(plan.kernels[0].reason, "no image");
    assert_eq!(
        plan.kernels[0].image,
        PathBuf::from(format!("/boot/initrd.img-{K}"))
    );
    assert_eq!(
        plan.kernels[1].reason,
        "the image lacks aacraid; the kernel resolves kernel/drivers/scsi/aacraid/aacraid.ko (old)"
    );
    Ok(())
}

#[test]
fn refusals_before_anything() {
    let stale = image(K, INTREE, &module("old"));
    let (_dir, plain) = host(&images(&stale, &stale), dracut());
    let (_dir2, toolless) = host(&images(&stale, &stale), Script::new());
    let tiny = Script::new().answer(
        &["df", "-Pk", "/boot"],
        0,
        "Filesystem 1024-blocks Used Available Capacity Mounted on\ntmpfs 100 100 0 100% /boot\n",
        "",
    );
    let (_dir3, full) = host(&images(&stale, &stale), tiny.answer(&["dracut"], 0, "", ""));
    let cases = [
        (
            &plain,
            json!({"kernels": ["5.10.0-9-amd64"]}),
            "kernel 5.10.0-9-amd64 is not installed",
        ),
        (
            &plain,
            json!({"modules": ["megaraid_sas"]}),
            "kernel 6.1.0-56-amd64 has no module megaraid_sas",
        ),
        (
            &plain,
            json!({"tool": "initramfs-tools"}),
            "tool initramfs-tools is not installed (mkinitramfs was not found)",
        ),
        (
            &toolless,
            json!({}),
            "no initramfs tool is installed: neither dracut nor mkinitramfs",
        ),
        (
            &full,
            json!({"kernels": [K]}),
            "not enough room in /boot: 0.0 MiB free, rebuilding 1 image(s) needs about",
        ),
    ];
    for (host, opts, expected) in cases {
        let err = InitramfsRegen::plan(options(opts.clone()), &Context::default(), host)
            .err()
            .map(|e| format!("{e:#}"))
            .unwrap_or_default();
        assert!(err.contains(expected), "{opts}: {err:?}");
        assert!(host
            .calls()
            .iter()
            .all(|c| c[0] == "modinfo" || c[0] == "df"));
    }
}

#[test]
fn a_failing_tool_leaves_the_image_and_reports_its_output() -> Result<()> {
    let stale = image(K, INTREE, &module("old"));
    let stage = format!("/var/tmp/.initramfs_regen-{}-0", std::process::id());
    let output = format!("{stage}/initramfs.img");
    let script = Script::new().answer(
        &["dracut", "--force", "--tmpdir", &stage, &output, K],
        1,
        "",
        "dracut: installing kernel modules\ndracut: FAILED: no space\n",
    );
    let (dir, host) = host(&images(&stale, &stale), script);
    std::fs::create_dir_all(dir.path().join("var/tmp"))?;
    let plan = InitramfsRegen::plan(options(json!({"kernels": [K]})), &Context::default(), &host)?;
    let err = InitramfsRegen::apply(plan, &Context::default(), &host).expect_err("fails");
    let msg = format!("{err:#}");
    assert!(
        msg.contains("dracut failed for kernel 6.1.0-56-amd64 (rc 1)"),
        "{msg}"
    );
    assert!(msg.contains("dracut: FAILED: no space"), "{msg}");
    assert!(msg.contains("no image was changed"), "{msg}");
    assert!(err
        .chain()
        .any(|c| c.downcast_ref::<CommandFailed>().is_some()));
    assert_eq!(
        std::fs::read(dir.path().join(format!("boot/initrd.img-{K}")))?,
        stale
    );
    assert!(
        !dir.path().join(stage.trim_start_matches('/')).exists(),
        "the private folder is removed"
    );
    assert_eq!(names(&dir, "var/tmp"), Vec::<String>::new());
    Ok(())
}

fn names(dir: &tempfile::TempDir, folder: &str) -> Vec<String> {
    linux_host::testing::names_in(&dir.path().join(folder))
}

/// A killed run leaves its temporary image in /boot and the tool's private
/// folder in /var/tmp: planned (only our own names), predicted by check
/// mode, removed first by a real run (a link as a link), then gone.
#[test]
fn leftovers_of_killed_runs_are_planned_reported_and_removed() -> Result<()> {
    let current = image(K, UPDATES, &module("new"));
    let old = image(OLD, INTREE, &module("old"));
    let mut files = images(&current, &old);
    let pid_tmp = format!("/boot/.initrd.img-{K}.tmp4242.0");
    let fixed_tmp = format!("/boot/.initrd.img-{K}.initramfs_regen");
    let stage = "/var/tmp/.initramfs_regen-4242-0";
    for (path, data) in [
        (pid_tmp.clone(), vec![7u8; 100_000]),
        (fixed_tmp.clone(), vec![7u8; 10]),
        (format!("/boot/.initrd.img-{K}.tmpx"), b"theirs".to_vec()),
        (
            "/boot/.vmlinuz-6.1.0-56-amd64.tmp1.0".into(),
            b"theirs".to_vec(),
        ),
        (format!("{stage}/dracut.Ab12/initramfs/x"), b"work".to_vec()),
        (
            "/var/tmp/.aacraid_build-4242-0/x.rpm".into(),
            b"theirs".to_vec(),
        ),
        (
            format!("/boot/.initrd.img-{OLD}.tmp1.1/x"),
            b"a folder".to_vec(),
        ),
    ] {
        files.push((path, data));
    }
    let (dir, host) = host(&files, dracut());
    let foreign = dir.path().join("var/tmp/.initramfs_regen-4242-1");
    if linux_host::host::process_uid() == 0 {
        std::fs::create_dir(&foreign)?;
        std::os::unix::fs::chown(&foreign, Some(1000), Some(1000))?;
    }
    let link = format!("/boot/.initrd.img-{OLD}.tmp1.2");
    std::os::unix::fs::symlink(
        dir.path().join("etc/debian_version"),
        host.real_path(std::path::Path::new(&link)),
    )?;
    let plan = InitramfsRegen::plan(options(json!({})), &Context::default(), &host)?;
    let expected: Vec<PathBuf> = [&link, &fixed_tmp, &pid_tmp]
        .into_iter()
        .chain([&stage.to_string()])
        .map(PathBuf::from)
        .collect();
    let planned: Vec<&PathBuf> = plan.leftovers.iter().map(|l| &l.path).collect();
    assert_eq!(planned, expected.iter().collect::<Vec<_>>());
    let blocks = |p: &str| {
        std::os::unix::fs::MetadataExt::blocks(
            &std::fs::metadata(host.real_path(std::path::Path::new(p))).expect(p),
        ) * 512
    };
    let frees: Vec<u64> = plan.leftovers.iter().map(|l| l.frees).collect();
    assert_eq!(frees, [0, blocks(&fixed_tmp), blocks(&pid_tmp), 0]);
    assert!(frees[2] >= 100_000, "{frees:?}");
    let preview = InitramfsRegen::preview(plan, &Context::default());
    assert!(preview.changed, "check mode predicts the removal");
    assert_eq!(preview.values.removed_leftovers, expected);
    let msg = preview.msg.unwrap_or_default();
    assert!(
        msg.starts_with(&format!("would remove what killed runs left: {link}, ")),
        "{msg}"
    );
    assert!(msg.ends_with("; every image is current"), "{msg}");
    for path in &expected {
        assert!(
            host.exists(path),
            "check mode removes nothing: {}",
            path.display()
        );
    }

    let plan = InitramfsRegen::plan(options(json!({})), &Context::default(), &host)?;
    let done = InitramfsRegen::apply(plan, &Context::default(), &host)?;
    assert!(done.changed);
    assert_eq!(done.values.removed_leftovers, expected);
    assert_eq!(
        names(&dir, "boot"),
        [
            format!(".initrd.img-{OLD}.tmp1.1"),
            format!(".initrd.img-{K}.tmpx"),
            ".vmlinuz-6.1.0-56-amd64.tmp1.0".to_string(),
            format!("initrd.img-{OLD}"),
            format!("initrd.img-{K}"),
        ]
    );
    let mut kept = vec![".aacraid_build-4242-0"];
    if foreign.exists() {
        kept.push(".initramfs_regen-4242-1");
    }
    assert_eq!(
        names(&dir, "var/tmp"),
        kept,
        "another user's folder is kept"
    );
    assert_eq!(
        std::fs::read(dir.path().join("etc/debian_version"))?,
        b"12.8\n",
        "the link was removed, not followed"
    );
    assert!(
        host.calls().iter().all(|c| c[0] == "modinfo"),
        "{:?}",
        host.calls()
    );

    let again = InitramfsRegen::plan(options(json!({})), &Context::default(), &host)?;
    let second = InitramfsRegen::apply(again, &Context::default(), &host)?;
    assert!(!second.changed);
    assert!(second.values.removed_leftovers.is_empty());
    Ok(())
}

/// A small /boot that a killed run filled: the leftover's room counts, so
/// the run that removes it does not refuse; a second name of the leftover
/// (a hard link) frees nothing and does not count.
#[test]
fn the_space_check_counts_what_leftovers_free() -> Result<()> {
    let stale = image(K, INTREE, &module("old"));
    let tmp = format!("/boot/.initrd.img-{K}.tmp4242.0");
    let full = || {
        dracut().answer(
            &["df", "-Pk", "/boot"],
            0,
            "Filesystem 1024-blocks Used Available Capacity Mounted on\ntmpfs 100 100 0 100% /boot\n",
            "",
        )
    };
    let mut files = images(&stale, &stale);
    files.push((tmp.clone(), vec![0u8; stale.len() * 2]));
    let (_dir, host) = self::host(&files, full());
    let plan = InitramfsRegen::plan(options(json!({"kernels": [K]})), &Context::default(), &host)?;
    assert!(plan.kernels[0].rebuild);

    let (_dir, small) = self::host(&files, full());
    small.hard_link(
        std::path::Path::new(&tmp),
        std::path::Path::new("/boot/kept"),
    )?;
    let err = InitramfsRegen::plan(
        options(json!({"kernels": [K]})),
        &Context::default(),
        &small,
    )
    .err()
    .map(|e| format!("{e:#}"))
    .unwrap_or_default();
    assert!(
        err.contains("not enough room in /boot: 0.0 MiB free,"),
        "{err}"
    );

    let (_dir, none) = self::host(&images(&stale, &stale), full());
    let err = InitramfsRegen::plan(options(json!({"kernels": [K]})), &Context::default(), &none)
        .err()
        .map(|e| format!("{e:#}"))
        .unwrap_or_default();
    assert!(
        err.contains("not enough room in /boot: 0.0 MiB free,"),
        "{err}"
    );
    Ok(())
}

/// Attack (or accident): `/boot/initrd.img-<k>` is a link to the file the
/// bootloader reads. Renaming a new image over the link leaves that file
/// old while every later run reads the new link target and says current.
#[test]
fn a_stale_image_behind_a_link_is_refused_a_current_one_is_read() -> Result<()> {
    let stale = image(K, INTREE, &module("old"));
    let current = image(K, UPDATES, &module("new"));
    let old = image(OLD, INTREE, &module("old"));
    for (target, refused) in [(&stale, true), (&current, false)] {
        let (dir, host) = host(
            &[
                ("/boot/real-image".to_string(), target.clone()),
                (format!("/boot/initrd.img-{OLD}"), old.clone()),
            ],
            dracut(),
        );
        std::os::unix::fs::symlink(
            "real-image",
            dir.path().join(format!("boot/initrd.img-{K}")),
        )?;
        let planned =
            InitramfsRegen::plan(options(json!({"kernels": [K]})), &Context::default(), &host);
        match planned {
            Err(e) if refused => {
                let msg = format!("{e:#}");
                assert!(
                    msg.contains(&format!(
                        "/boot/initrd.img-{K} is a symbolic link (to real-image)"
                    )),
                    "{msg}"
                );
            }
            Ok(plan) if !refused => assert!(!plan.kernels[0].rebuild),
            other => panic!(
                "refused: {refused}, got {:?}",
                other.map(|p| p.kernels.len())
            ),
        }
    }
    Ok(())
}

#[test]
fn refuses_to_carry_a_module_a_kernel_enforcing_signatures_would_reject() -> Result<()> {
    let stale = image(K, INTREE, &module("old"));
    let current = image(OLD, INTREE, &module("old"));
    let mut files = images(&stale, &current);
    files.push((
        format!("/boot/config-{K}"),
        b"CONFIG_MODULE_SIG=y\nCONFIG_MODULE_SIG_FORCE=y\n".to_vec(),
    ));
    let (_dir, enforcing) = host(&files, dracut());
    let error = match InitramfsRegen::plan(options(json!({})), &Context::default(), &enforcing) {
        Ok(_) => panic!("planned an image the kernel cannot use"),
        Err(e) => format!("{e:#}"),
    };
    assert_eq!(
        error,
        format!(
            "kernel {K} would not load /lib/modules/{K}/{UPDATES}: unsigned, and kernel {K} refuses such modules: \
             built with CONFIG_MODULE_SIG_FORCE; the new image would carry it: install a build signed with a key \
             the kernel trusts, or set force: true to rebuild anyway"
        )
    );
    assert!(
        enforcing
            .calls()
            .iter()
            .all(|c| c[0] == "modinfo" || c[0] == "dracut"),
        "{:?}",
        enforcing.calls()
    );

    let plan = InitramfsRegen::plan(
        options(json!({"force": true})),
        &Context::default(),
        &enforcing,
    )?;
    assert!(plan.kernels.iter().all(|k| k.rebuild));
    assert_eq!(plan.warnings.len(), 1, "{:?}", plan.warnings);
    assert!(plan.warnings[0].ends_with("the image is rebuilt anyway because force is set"));

    // A current image is left alone: nothing is rebuilt, nothing refused.
    let fresh = image(K, UPDATES, &module("new"));
    let mut files = images(&fresh, &current);
    files.push((
        format!("/boot/config-{K}"),
        b"CONFIG_MODULE_SIG=y\nCONFIG_MODULE_SIG_FORCE=y\n".to_vec(),
    ));
    let (_dir, current_host) = host(&files, dracut());
    let plan = InitramfsRegen::plan(options(json!({})), &Context::default(), &current_host)?;
    assert!(plan.kernels.iter().all(|k| !k.rebuild));
    Ok(())
}

/// `method: append` refuses, at planning and naming why, an image it cannot
/// update: none, one whose compression cannot hold a stored segment, one
/// without a module tree, one that lacks a module the new file needs.
#[test]
fn append_refuses_what_it_cannot_update() -> Result<()> {
    let tree = |files: &[(&str, &[u8])]| -> Vec<u8> {
        let named: Vec<(String, &[u8])> = files
            .iter()
            .map(|(p, d)| (format!("usr/lib/modules/{K}/{p}"), *d))
            .collect();
        let refs: Vec<(&str, &[u8])> = named.iter().map(|(p, d)| (p.as_str(), *d)).collect();
        cpio(&refs)
    };
    let old = module("old");
    let dep = format!("{INTREE}:\n");
    let with_dep = tree(&[(INTREE, &old), ("modules.dep", dep.as_bytes())]);
    let old_image = image(OLD, INTREE, &old);
    let append = || options(json!({"kernels": [K], "method": "append"}));
    let refusal = |files: Vec<(String, Vec<u8>)>| -> String {
        let (_dir, host) = host(&files, dracut());
        match InitramfsRegen::plan(append(), &Context::default(), &host) {
            Ok(_) => "planned".into(),
            Err(e) => format!("{e:#}"),
        }
    };
    type Files = Vec<(String, Vec<u8>)>;
    let cases: Vec<(Files, &str)> = vec![
        (
            vec![(format!("/boot/initrd.img-{OLD}"), old_image.clone())],
            "there is no image to append to",
        ),
        (
            images(&formats::testing::lzma(&with_dep), &old_image),
            "it is lzma-compressed, and an appended segment is stored as gzip, zstd or uncompressed only",
        ),
        (
            images(&gzip(&tree(&[(INTREE, &old)])), &old_image),
            "it holds no modules.dep for kernel 6.1.0-56-amd64",
        ),
    ];
    for (files, why) in cases {
        let said = refusal(files);
        assert!(
            said.starts_with(&format!(
                "method append cannot update the image of kernel {K} (/boot/initrd.img-{K}): {why}"
            )) && said.ends_with("; use method: rebuild"),
            "{said}"
        );
    }
    // A module the kernel resolves outside its module folder.
    let mut files = images(&gzip(&with_dep), &old_image);
    files.push(("/opt/aacraid.ko".into(), module("new")));
    let script = Script::new()
        .answer(
            &["modinfo", "-k", K, "-n", "aacraid"],
            0,
            "/opt/aacraid.ko\n",
            "",
        )
        .answer(&["dracut", "--version"], 0, "", "");
    let (_dir, outside) = host(&files, script);
    let said = match InitramfsRegen::plan(append(), &Context::default(), &outside) {
        Ok(_) => "planned".into(),
        Err(e) => format!("{e:#}"),
    };
    assert!(
        said.contains("the kernel resolves aacraid to /opt/aacraid.ko, outside its module folder"),
        "{said}"
    );
    let needy = fake_module(&[
        ("version", "new"),
        ("name", "aacraid"),
        ("depends", "scsi_transport_sas,raid_class"),
    ]);
    let mut files = images(&gzip(&with_dep), &old_image);
    files.push((format!("/lib/modules/{K}/{UPDATES}"), needy));
    let said = refusal(files.clone());
    assert!(
        said.contains("the new aacraid needs module scsi_transport_sas, which the image lacks"),
        "{said}"
    );
    // With both modules it needs in the image, it is planned; check mode
    // says how the image would be updated.
    let raid_class = fake_module(&[("name", "raid_class")]);
    let transport = fake_module(&[("name", "scsi_transport_sas")]);
    let full = tree(&[
        (INTREE, &old),
        ("kernel/drivers/scsi/scsi_transport_sas.ko", &transport),
        ("kernel/drivers/scsi/raid_class.ko", &raid_class),
        ("modules.dep", dep.as_bytes()),
    ]);
    files[0].1 = gzip(&full);
    let (_dir, host) = host(&files, dracut());
    let plan = InitramfsRegen::plan(append(), &Context::default(), &host)?;
    assert!(plan.kernels[0].rebuild);
    let preview = InitramfsRegen::preview(plan, &Context::default());
    assert_eq!(
        preview.msg.as_deref(),
        Some(format!("would update by appending a segment: /boot/initrd.img-{K}").as_str())
    );
    assert_eq!(preview.values.method, Method::Append);
    assert!(preview.values.kernels[0].appended.is_none());

    // The free-space check counts what the segment adds: room for a
    // rebuild's estimate (the image plus 10%) is not room for an append.
    let room = dracut().answer(
        &["df", "-Pk", "/boot"],
        0,
        "Filesystem 1024-blocks Used Available Capacity Mounted on\n/dev/vda1 4096 3584 512 88% /boot\n",
        "",
    );
    let (_dir, cramped) = self::host(&files, room);
    let rebuild = options(json!({"kernels": [K], "method": "rebuild"}));
    assert!(InitramfsRegen::plan(rebuild, &Context::default(), &cramped)?.kernels[0].rebuild);
    let said = match InitramfsRegen::plan(append(), &Context::default(), &cramped) {
        Ok(_) => "planned".into(),
        Err(e) => format!("{e:#}"),
    };
    assert!(
        said.starts_with(
            "not enough room in /boot: 0.5 MiB free, appending to 1 image(s) needs about 1.0 MiB"
        ) && said.contains("each grows by the new module files and their indices"),
        "{said}"
    );
    Ok(())
}

#[test]
fn name_stands_for_modules_only_when_modules_is_not_given() {
    let wanted = |v: serde_json::Value| options::<Options>(v).wanted().expect("a module list");
    assert_eq!(wanted(json!({})), ["aacraid"]);
    assert_eq!(wanted(json!({"name": "smartpqi"})), ["smartpqi"]);
    assert_eq!(
        wanted(json!({"name": "smartpqi", "modules": ["mpt3sas", "raid_class"]})),
        ["mpt3sas", "raid_class"]
    );
}
