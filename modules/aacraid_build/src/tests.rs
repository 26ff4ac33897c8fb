//! Unit tests of planning over a scripted host; the system tests run real
//! DKMS in the lab containers.

use super::*;
use ansible_protocol::testing::options;
use formats::dkms::State as Dkms;
use linux_host::testing::root_with;
use linux_host::Script;
use serde_json::{json, Value};

ansible_protocol::sidecar_test!(AacraidBuild, "../aacraid_build.yml");

fn host_with(files: &[(&str, &[u8])], script: Script) -> (tempfile::TempDir, Host) {
    let dir = root_with(files);
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
    assert!(plan.add && plan.install_source.is_some() && plan.changed());
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

#[test]
fn done_work_is_not_planned_again_in_either_status_format() -> Result<()> {
    for status in [
        format!("aacraid/1.0, {K}, x86_64: installed\n"),
        format!("aacraid, 1.0, {K}, x86_64: installed (original_module exists)\n"),
    ] {
        let mut files = base_files();
        files.push((
            "/usr/src/aacraid-1.0/dkms.conf",
            b"PACKAGE_NAME=aacraid\nPACKAGE_VERSION=1.0\n",
        ));
        let (_dir, host) = host_with(&files, dkms(&status));
        let plan = AacraidBuild::plan(
            options(json!({"src": "/src", "kernels": [K]})),
            &Context::default(),
            &host,
        )?;
        assert!(!plan.changed(), "{status}");
        assert_eq!(plan.kernels[0].steps.before, Dkms::Installed);
    }
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
    let plan = AacraidBuild::plan(
        options(json!({"src": "/src", "kernels": [K]})),
        &Context::default(),
        &host,
    )?;
    let err = match AacraidBuild::apply(plan, &Context::default(), &host) {
        Ok(_) => panic!("the run must fail"),
        Err(e) => format!("{e:#}"),
    };
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
