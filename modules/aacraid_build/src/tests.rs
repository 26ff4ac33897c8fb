//! Unit tests of planning over a scripted host; the system tests run real
//! DKMS in the lab containers.

use super::*;
use crate::tree::{Action, LIST};
use ansible_protocol::testing::options;
use formats::dkms::State as Dkms;
use formats::limits::ARCHIVE_MAX;
use linux_host::testing::root_with;
use linux_host::Script;
use serde_json::{json, Value};

ansible_protocol::sidecar_test!(AacraidBuild, "../aacraid_build.yml");

fn host_with(files: &[(&str, &[u8])], script: Script) -> (tempfile::TempDir, Host) {
    let dir = root_with(files);
    std::fs::create_dir_all(dir.path().join("usr/src")).unwrap_or_else(|e| panic!("usr/src: {e}"));
    let host = Host::scripted(dir.path(), script);
    (dir, host)
}

const K: &str = "6.1.0-56-amd64";

/// The whole error chain of a plan that must fail, or `None`.
fn plan_error(host: &Host, opts: Value) -> Option<String> {
    let Value::Object(map) = opts else {
        panic!("options must be an object")
    };
    match ansible_protocol::options::from_value::<Options>(map) {
        Ok(o) => AacraidBuild::plan(o, &Context::default(), host)
            .err()
            .map(|e| format!("{e:#}")),
        Err(e) => Some(e.to_string()),
    }
}

fn dkms(status: &str) -> Script {
    Script::new().answer(
        &["dkms", "status", "-m", "aacraid", "-v", "1.0"],
        0,
        status,
        "",
    )
}

fn base_files() -> Vec<(&'static str, &'static [u8])> {
    vec![
        ("/lib/modules/6.1.0-56-amd64/modules.order", b""),
        ("/lib/modules/6.1.0-56-amd64/build/Makefile", b""),
        (
            "/src/dkms.conf",
            b"PACKAGE_NAME=aacraid\nPACKAGE_VERSION=1.0\n",
        ),
        ("/src/aacraid.c", b"/* source */"),
    ]
}

#[test]
fn fresh_host_plans_every_step() -> Result<()> {
    let (_dir, host) = host_with(&base_files(), dkms(""));
    let plan = AacraidBuild::plan(
        options(json!({"src": "/src", "kernels": [K]})),
        &Context::default(),
        &host,
    )?;
    assert!(plan.add && !plan.discard && plan.changed());
    let tree = plan.tree.as_ref().map(|t| t.shown.action);
    assert_eq!(tree, Some(Action::Installed));
    let k = &plan.kernels[0].steps;
    assert_eq!(
        (&k.before, &k.after, k.build, k.install),
        (&Dkms::Absent, &Dkms::Installed, true, true)
    );
    assert_eq!(
        host.calls(),
        [["dkms", "status", "-m", "aacraid", "-v", "1.0"]]
    );
    Ok(())
}

const CONF: &[u8] = b"PACKAGE_NAME=aacraid\nPACKAGE_VERSION=1.0\n";
const BUILT: &str = "/var/lib/dkms/aacraid/1.0/6.1.0-56-amd64/x86_64/module/aacraid.ko";
const INSTALLED: &str = "/lib/modules/6.1.0-56-amd64/updates/dkms/aacraid.ko";

/// The checksum list of the source `base_files` puts in /src.
fn list_of_src() -> Vec<u8> {
    let member = |path: &str, data: &[u8]| formats::cpio::Member {
        path: path.into(),
        mode: 0o644,
        regular: true,
        data: data.to_vec(),
    };
    tree::render(&tree::listing(&[
        member("aacraid.c", b"/* source */"),
        member("dkms.conf", CONF),
    ]))
}

/// A host where DKMS installed the source of `base_files` for K: the tree
/// in /usr/src as `tree` gives it (path, bytes), the build, and the file
/// that `modinfo` resolves, holding `resolved`.
fn installed_host(
    status: &str,
    tree: &[(&str, &[u8])],
    resolved: Option<&[u8]>,
) -> (tempfile::TempDir, Host) {
    let module = formats::testing::fake_module(&[("name", "aacraid"), ("version", "1.0")]);
    let mut files = base_files();
    files.extend_from_slice(tree);
    files.push((BUILT, &module));
    let installed;
    if let Some(bytes) = resolved {
        installed = bytes.to_vec();
        files.push((INSTALLED, &installed));
    }
    let script = dkms(status).answer(
        &["modinfo", "-k", K, "-n", "aacraid"],
        0,
        &format!("{INSTALLED}\n"),
        "",
    );
    host_with(&files, script)
}

fn plan_of(host: &Host) -> Result<Plan> {
    AacraidBuild::plan(
        options(json!({"src": "/src", "kernels": [K]})),
        &Context::default(),
        host,
    )
}

#[test]
fn done_work_is_not_planned_again_in_either_status_format() -> Result<()> {
    let module = formats::testing::fake_module(&[("name", "aacraid"), ("version", "1.0")]);
    let list = list_of_src();
    for status in [
        format!("aacraid/1.0, {K}, x86_64: installed\n"),
        format!("aacraid, 1.0, {K}, x86_64: installed (original_module exists)\n"),
    ] {
        let (_dir, host) = installed_host(
            &status,
            &[
                ("/usr/src/aacraid-1.0/dkms.conf", CONF),
                ("/usr/src/aacraid-1.0/aacraid.c", b"/* source */"),
                ("/usr/src/aacraid-1.0/.aacraid_build.sha256", &list),
            ],
            Some(&module),
        );
        let plan = plan_of(&host)?;
        assert!(!plan.changed(), "{status}");
        assert_eq!(plan.kernels[0].steps.before, Dkms::Installed);
        assert_eq!(plan.kernels[0].steps.repair, None);
    }
    Ok(())
}

/// A vendor respin (same version, other sources), a hand edit, or a copy
/// killed halfway under older releases: the tree is replaced whole and
/// DKMS's builds of it are discarded and made again.
#[test]
fn a_tree_that_differs_is_replaced_and_rebuilt() -> Result<()> {
    let module = formats::testing::fake_module(&[("name", "aacraid"), ("version", "1.0")]);
    let list = list_of_src();
    let status = format!("aacraid/1.0, {K}, x86_64: installed\n");
    let (_dir, host) = installed_host(
        &status,
        &[
            ("/usr/src/aacraid-1.0/dkms.conf", CONF),
            ("/usr/src/aacraid-1.0/aacraid.c", b"/* sour"),
            ("/usr/src/aacraid-1.0/.aacraid_build.sha256", &list),
        ],
        Some(&module),
    );
    let plan = plan_of(&host)?;
    let tree = plan.tree.as_ref().map(|t| &t.shown);
    assert_eq!(tree.map(|t| t.action), Some(Action::Replaced));
    assert_eq!(
        tree.map(|t| t.differences.clone()),
        Some(vec!["aacraid.c: content differs".to_string()])
    );
    assert!(plan.discard && plan.add && plan.changed());
    let k = &plan.kernels[0].steps;
    assert_eq!(
        (&k.before, &k.after, k.build, k.install),
        (&Dkms::Installed, &Dkms::Installed, true, true)
    );
    let shown = AacraidBuild::preview(plan, &Context::default());
    let msg = shown.msg.unwrap_or_default();
    assert!(
        msg.starts_with("source: replaced, the package's sources differ from /usr/src/aacraid-1.0 (aacraid.c: content differs); dkms remove --all"),
        "{msg}"
    );
    Ok(())
}

/// A tree that matches the package byte for byte but has no checksum list
/// (written by an older release) is adopted: the list is written, nothing
/// is rebuilt.
#[test]
fn a_matching_tree_without_its_list_is_adopted() -> Result<()> {
    let module = formats::testing::fake_module(&[("name", "aacraid"), ("version", "1.0")]);
    let status = format!("aacraid/1.0, {K}, x86_64: installed\n");
    let (dir, host) = installed_host(
        &status,
        &[
            ("/usr/src/aacraid-1.0/dkms.conf", CONF),
            ("/usr/src/aacraid-1.0/aacraid.c", b"/* source */"),
        ],
        Some(&module),
    );
    let plan = plan_of(&host)?;
    assert_eq!(
        plan.tree.as_ref().map(|t| t.shown.action),
        Some(Action::Adopted)
    );
    assert!(plan.changed() && !plan.discard && !plan.add);
    assert!(!plan.kernels[0].steps.build && !plan.kernels[0].steps.install);
    AacraidBuild::apply(plan, &Context::default(), &host)?;
    assert_eq!(
        std::fs::read(dir.path().join("usr/src/aacraid-1.0").join(LIST))?,
        list_of_src()
    );
    assert!(!plan_of(&host)?.changed());
    Ok(())
}

/// DKMS says installed, but the file it installed is gone (or another one
/// is resolved): the run reinstalls and says why.
#[test]
fn an_install_the_kernel_does_not_resolve_is_repaired() -> Result<()> {
    let list = list_of_src();
    let tree: [(&str, &[u8]); 3] = [
        ("/usr/src/aacraid-1.0/dkms.conf", CONF),
        ("/usr/src/aacraid-1.0/aacraid.c", b"/* source */"),
        ("/usr/src/aacraid-1.0/.aacraid_build.sha256", &list),
    ];
    let status = format!("aacraid/1.0, {K}, x86_64: installed\n");
    let other = formats::testing::fake_module(&[("name", "aacraid"), ("version", "0.9")]);
    for (resolved, expected) in [
        (
            None,
            format!("the kernel resolves aacraid to {INSTALLED}, which is missing"),
        ),
        (
            Some(&other[..]),
            format!("the kernel resolves aacraid to {INSTALLED}, not the module dkms built"),
        ),
    ] {
        let (_dir, host) = installed_host(&status, &tree, resolved);
        let plan = plan_of(&host)?;
        let k = &plan.kernels[0].steps;
        assert!(!k.build && k.install && plan.changed());
        let why = k.repair.clone().unwrap_or_default();
        assert_eq!(
            why,
            format!("dkms says aacraid 1.0 is installed for kernel {K} but {expected}")
        );
    }
    let (_dir, host) = installed_host(
        &format!("aacraid/1.0, {K}, x86_64: installed (WARNING! Diff between built and installed module!)\n"),
        &tree,
        None,
    );
    let plan = plan_of(&host)?;
    let why = plan.kernels[0].steps.repair.clone().unwrap_or_default();
    assert!(
        why.ends_with("reports that the installed module differs from the one it built"),
        "{why}"
    );
    Ok(())
}

/// A killed run's temporary artifact (the full crash sweep found it left
/// for good) is found at plan time and removed; other files stay.
#[test]
fn leftover_temporary_artifacts_are_planned_for_removal() -> Result<()> {
    let mut files = base_files();
    let leftover = format!("/out/.aacraid-1.0-{K}.tgz.tmp4242.0");
    files.push((leftover.as_str(), b"half"));
    files.push(("/out/.other-1.0-x.tgz.tmp1.0", b""));
    files.push(("/out/.aacraid-1.0-x.tgz.tmpx.0", b""));
    files.push(("/out/aacraid-1.0-x.tgz", b""));
    let (dir, host) = host_with(&files, dkms(""));
    let plan = AacraidBuild::plan(
        options(json!({"src": "/src", "kernels": [K], "state": "built", "artifacts_dir": "/out"})),
        &Context::default(),
        &host,
    )?;
    assert_eq!(
        plan.artifact_leftovers,
        [std::path::PathBuf::from(&leftover)]
    );
    let msg = AacraidBuild::preview(plan, &Context::default())
        .msg
        .unwrap_or_default();
    assert!(
        msg.contains(&format!(
            "temporary artifacts left by killed runs are removed: {leftover}"
        )),
        "{msg}"
    );
    assert!(
        dir.path().join(&leftover[1..]).exists(),
        "check mode removes nothing"
    );
    Ok(())
}

/// Staging folders of a killed run are found at plan time and removed.
#[test]
fn leftover_staging_folders_are_planned_for_removal() -> Result<()> {
    let mut files = base_files();
    files.push(("/usr/src/.aacraid_build-4242-0/dkms.conf", b"half"));
    files.push(("/usr/src/.other-1-0/keep", b""));
    let (dir, host) = host_with(&files, dkms(""));
    let plan = plan_of(&host)?;
    assert_eq!(
        plan.leftovers,
        [std::path::PathBuf::from("/usr/src/.aacraid_build-4242-0")]
    );
    let msg = AacraidBuild::preview(plan, &Context::default())
        .msg
        .unwrap_or_default();
    assert_eq!(
        msg,
        "staging folders left by killed runs are removed: /usr/src/.aacraid_build-4242-0"
    );
    assert!(dir.path().join("usr/src/.aacraid_build-4242-0").exists());
    Ok(())
}

#[test]
fn bad_input_fails_before_any_change() {
    let cases = [
        (
            json!({"src": "/nowhere.tgz", "kernels": [K]}),
            "cannot read the source /nowhere.tgz",
        ),
        (
            json!({"src": "/src/aacraid.c", "kernels": [K]}),
            "is not a vendor tarball (.tgz), an rpm package or a folder",
        ),
        (
            json!({"src": "/src", "name": "other", "kernels": [K]}),
            "name \"other\" disagrees with dkms.conf's PACKAGE_NAME \"aacraid\"",
        ),
        (
            json!({"src": "/src", "version": "2.0", "kernels": [K]}),
            "version \"2.0\" disagrees",
        ),
        (
            json!({"src": "/src", "kernels": ["6.1.0-9-amd64"]}),
            "kernel 6.1.0-9-amd64 is not installed",
        ),
        (
            json!({"src": "/src", "kernels": ["../x"]}),
            "invalid kernel release",
        ),
        (
            json!({"kernels": [K]}),
            "src is required unless state is absent",
        ),
        (
            json!({"src": "/src", "kernels": [K], "artifacts_dir": "out"}),
            "artifacts_dir must be an absolute path",
        ),
    ];
    for (opts, expected) in cases {
        let (_dir, host) = host_with(&base_files(), dkms(""));
        let err = plan_error(&host, opts);
        assert!(
            err.as_deref().unwrap_or("").contains(expected),
            "{err:?} / {expected}"
        );
    }
    let mut files = base_files();
    files.retain(|(p, _)| !p.ends_with("build/Makefile"));
    let (_dir, host) = host_with(&files, dkms(""));
    assert_eq!(
        plan_error(&host, json!({"src": "/src", "kernels": [K]})).as_deref(),
        Some("kernel 6.1.0-56-amd64 has no headers (/lib/modules/6.1.0-56-amd64/build is missing): install linux-headers-6.1.0-56-amd64")
    );
    let (_dir, host) = host_with(&base_files(), Script::new());
    let err = plan_error(&host, json!({"src": "/src", "kernels": [K]}));
    assert!(
        err.as_deref()
            .unwrap_or("")
            .starts_with("dkms is not installed on this host"),
        "{err:?}"
    );
}

/// A source that is a device or a pipe would be read for ever, one past the
/// cap would fill memory: each is refused by name, before any command.
#[test]
fn sources_that_are_no_regular_file_or_too_large_are_refused() -> Result<()> {
    let (dir, host) = host_with(&base_files(), dkms(""));
    std::os::unix::fs::symlink("/dev/zero", dir.path().join("zero.tgz"))?;
    let made = std::process::Command::new("mkfifo")
        .arg(dir.path().join("fifo.rpm"))
        .status()?;
    assert!(made.success());
    std::fs::File::create(dir.path().join("huge.tgz"))?.set_len(ARCHIVE_MAX + 1)?;
    std::fs::File::create(dir.path().join("src/huge.c"))?.set_len(ARCHIVE_MAX + 1)?;
    for (src, why) in [
        (
            "/zero.tgz",
            "cannot read the source /zero.tgz: not a regular file",
        ),
        (
            "/fifo.rpm",
            "cannot read the source /fifo.rpm: not a regular file",
        ),
        (
            "/huge.tgz",
            "cannot read the source /huge.tgz: larger than 256 MiB, the limit",
        ),
        (
            "/src",
            "cannot read /src/huge.c: larger than 256 MiB, the limit",
        ),
    ] {
        let err = plan_error(&host, json!({"src": src, "kernels": [K]}));
        assert!(
            err.as_deref().unwrap_or("").contains(why),
            "{err:?} / {why}"
        );
    }
    assert!(
        host.calls().iter().all(|c| c[0] == "dkms"),
        "{:?}",
        host.calls()
    );
    Ok(())
}

/// Attack (or a leftover): `/usr/src/<name>-<version>` is a link to a
/// folder elsewhere; unpacking the source would write through it.
#[test]
fn source_tree_behind_a_link_is_refused_before_any_write() -> Result<()> {
    let (dir, host) = host_with(&base_files(), dkms(""));
    std::fs::create_dir_all(dir.path().join("etc"))?;
    std::fs::create_dir_all(dir.path().join("usr/src"))?;
    std::os::unix::fs::symlink(
        dir.path().join("etc"),
        dir.path().join("usr/src/aacraid-1.0"),
    )?;
    let err = plan_error(&host, json!({"src": "/src", "kernels": [K]})).unwrap_or_default();
    assert!(
        err.contains("/usr/src/aacraid-1.0 is a symbolic link"),
        "{err}"
    );
    assert_eq!(std::fs::read_dir(dir.path().join("etc"))?.count(), 0);
    Ok(())
}

/// A vendor tarball whose driver rpm is refused (here: not an rpm past
/// its lead) says which rpm and why, not only that no driver was found.
#[test]
fn an_unreadable_rpm_in_a_tarball_is_named_with_its_reason() -> Result<()> {
    let mut broken = vec![0xed, 0xab, 0xee, 0xdb];
    broken.extend([0u8; 200]);
    let tgz = formats::archive::write_tar_gz(&[
        ("readme.txt", 0o644, b"hello"),
        ("pkg/aacraid-1.0-dkms.noarch.rpm", 0o644, &broken),
    ])?;
    let (_dir, host) = host_with(
        &[
            ("/lib/modules/6.1.0-56-amd64/modules.order", b""),
            ("/v.tgz", &tgz),
        ],
        dkms(""),
    );
    let msg = plan_error(&host, json!({"src": "/v.tgz", "kernels": [K]})).expect("refused");
    assert!(
        msg.contains(
            "holds no DKMS driver rpm that can be used; refused: pkg/aacraid-1.0-dkms.noarch.rpm: "
        ),
        "{msg}"
    );
    Ok(())
}

/// The plan holds `/usr/src` (one run of this module at a time) and the
/// module folder of each kernel (as kmod_update and initramfs_regen lock
/// them) until it is dropped.
#[test]
fn the_plan_holds_the_source_and_kernel_locks() -> Result<()> {
    let (dir, host) = host_with(&base_files(), dkms(""));
    let plan = plan_of(&host)?;
    let other = Host::scripted(dir.path(), Script::new());
    let wait = std::time::Duration::from_millis(200);
    for held in ["/usr/src", "/lib/modules/6.1.0-56-amd64"] {
        let err = other
            .lock_dir_within(std::path::Path::new(held), wait)
            .expect_err(held);
        assert!(err.to_string().contains("is still locked by"), "{err}");
    }
    drop(plan);
    other.lock_dir_within(std::path::Path::new("/usr/src"), wait)?;
    Ok(())
}

/// `src` is the tree in /usr/src itself: without a list it is adopted;
/// with a list it no longer matches, it was edited in place and DKMS's
/// builds of it are discarded and made again.
#[test]
fn a_tree_given_as_src_is_checked_against_its_own_list() -> Result<()> {
    let status = format!("aacraid/1.0, {K}, x86_64: built\n");
    let in_place = |list: Option<&[u8]>| -> Result<Plan> {
        let mut files = base_files();
        files.push(("/usr/src/aacraid-1.0/dkms.conf", CONF));
        files.push(("/usr/src/aacraid-1.0/aacraid.c", b"/* edited */"));
        if let Some(list) = list {
            files.push(("/usr/src/aacraid-1.0/.aacraid_build.sha256", list));
        }
        let (_dir, host) = host_with(&files, dkms(&status));
        AacraidBuild::plan(
            options(json!({"src": "/usr/src/aacraid-1.0/", "kernels": [K], "state": "built"})),
            &Context::default(),
            &host,
        )
    };
    let adopted = in_place(None)?;
    assert_eq!(
        adopted.tree.as_ref().map(|t| t.shown.action),
        Some(Action::Adopted)
    );
    assert!(!adopted.discard && !adopted.kernels[0].steps.build);
    let changed = in_place(Some(&list_of_src()))?;
    assert_eq!(
        changed.tree.as_ref().map(|t| t.shown.action),
        Some(Action::Changed)
    );
    assert!(changed.discard && changed.add && changed.kernels[0].steps.build);
    Ok(())
}
