//! Unit tests of source checks and planning over a scripted host (fake
//! module files); the system tests install real modules with real depmod.

use std::path::{Path, PathBuf};

use super::*;
use ansible_protocol::testing::options;
use formats::archive;
use formats::limits::MODULE_MAX;
use formats::modinfo::sha256_hex;
use formats::testing::fake_module;
use linux_host::testing::root_with;
use linux_host::Script;
use serde_json::{json, Value};

ansible_protocol::sidecar_test!(KmodUpdate, "../kmod_update.yml");

const K: &str = "6.1.0-56-amd64";
const OLD: &str = "6.1.0-55-amd64";
const VERMAGIC: &str = "6.1.0-56-amd64 SMP preempt mod_unload modversions";
const INTREE: &str = "/lib/modules/6.1.0-56-amd64/kernel/drivers/scsi/aacraid/aacraid.ko";

fn module(name: &str, version: &str, vermagic: &str) -> Vec<u8> {
    fake_module(&[
        ("version", version),
        ("srcversion", "ABCDEF0123456789ABCDEF0"),
        ("name", name),
        ("vermagic", vermagic),
    ])
}

/// A host with kernel K (its in-tree aacraid resolved by modinfo) and
/// kernel OLD, plus `files`.
fn host_with(files: &[(&str, Vec<u8>)], resolves: &str) -> (tempfile::TempDir, Host) {
    host_answering(files, resolves, Script::new())
}

/// [`host_with`] whose `script` also answers other commands.
fn host_answering(
    files: &[(&str, Vec<u8>)],
    resolves: &str,
    script: Script,
) -> (tempfile::TempDir, Host) {
    let mut all: Vec<(String, Vec<u8>)> = vec![
        (format!("/lib/modules/{K}/modules.order"), vec![]),
        (format!("/lib/modules/{OLD}/modules.order"), vec![]),
        (
            format!("/lib/modules/{K}/modules.dep"),
            b"kernel/drivers/scsi/aacraid/aacraid.ko:\n".to_vec(),
        ),
        (
            INTREE.into(),
            module("aacraid", "1.2.1[50983]-custom", VERMAGIC),
        ),
    ];
    all.extend(files.iter().map(|(p, d)| (p.to_string(), d.clone())));
    let dir = root_with(&all);
    std::fs::create_dir_all(dir.path().join("var/lib")).expect("/var/lib");
    let script = script
        .answer(
            &["modinfo", "-k", K, "-n", "aacraid"],
            0,
            &format!("{resolves}\n"),
            "",
        )
        .answer(&["depmod", "-a", K], 0, "", "");
    let host = Host::scripted(dir.path(), script);
    (dir, host)
}

fn plan(host: &Host, opts: Value) -> Result<Plan> {
    KmodUpdate::plan(options(opts), &Context::default(), host)
}

fn plan_error(host: &Host, opts: Value) -> String {
    match plan(host, opts) {
        Ok(_) => panic!("the plan must fail"),
        Err(e) => format!("{e:#}"),
    }
}

fn artifact(manifest: Value, files: &[(&str, &[u8])]) -> Vec<u8> {
    let manifest = serde_json::to_vec(&manifest).expect("json");
    let mut entries: Vec<(&str, u32, &[u8])> = vec![("manifest.json", 0o644, &manifest)];
    entries.extend(files.iter().map(|(n, d)| (*n, 0o644, *d)));
    archive::write_tar_gz(&entries).expect("tar")
}

fn manifest_for(data: &[u8], kernel: &str) -> Value {
    json!({"format": 1, "name": "aacraid", "version": "1.2.1.41024", "kernel": kernel, "arch": "x86_64",
           "files": [{"file": "aacraid.ko", "module": "aacraid", "size": data.len(),
                      "sha256": sha256_hex(data)}]})
}

#[test]
fn plans_an_install_from_an_artifact_for_its_kernel() -> Result<()> {
    let ko = module("aacraid", "1.2-1.41024dkms", VERMAGIC);
    let tgz = artifact(
        manifest_for(&ko, K),
        &[("aacraid.ko", &ko), ("README", b"ignored")],
    );
    let (_dir, host) = host_with(&[("/root/a.tgz", tgz)], INTREE);
    let p = plan(&host, json!({"src": "/root/a.tgz"}))?;
    assert_eq!(p.kernels.len(), 1);
    let k = &p.kernels[0];
    assert_eq!((k.kernel.as_str(), k.action), (K, Action::Install));
    let target = PathBuf::from(format!("/lib/modules/{K}/updates/aacraid.ko"));
    assert_eq!(k.path.as_deref(), Some(target.as_path()));
    assert_eq!(
        k.new_dirs,
        [PathBuf::from(format!("/lib/modules/{K}/updates"))]
    );
    assert_eq!(k.before.describe(), INTREE);
    assert_eq!(k.after.info().version.as_deref(), Some("1.2-1.41024dkms"));
    let preview = KmodUpdate::preview(p, &Context::default());
    assert!(preview.changed);
    assert_eq!(
        preview.values.source.as_deref(),
        Some("/root/a.tgz:aacraid.ko")
    );
    assert_eq!(
        preview.values.kernels[0].resolved,
        target.display().to_string()
    );
    assert!(
        host.calls().iter().all(|c| c[0] == "modinfo"),
        "planning runs no depmod"
    );
    Ok(())
}

#[test]
fn identical_file_is_nothing_to_do_or_only_a_depmod_when_unresolved() -> Result<()> {
    let ko = module("aacraid", "1.2-1.41024dkms", VERMAGIC);
    let target = format!("/lib/modules/{K}/updates/aacraid.ko");
    for (resolves, action) in [(target.as_str(), Action::None), (INTREE, Action::Depmod)] {
        let (dir, host) = host_with(
            &[("/root/aacraid.ko", ko.clone()), (&target, ko.clone())],
            resolves,
        );
        let full = dir.path().join(target.trim_start_matches('/'));
        std::fs::set_permissions(&full, std::os::unix::fs::PermissionsExt::from_mode(0o644))?;
        let p = plan(&host, json!({"src": "/root/aacraid.ko"}))?;
        assert_eq!(p.kernels[0].action, action, "{}", p.kernels[0].reason);
        assert_eq!(p.changed(), action != Action::None);
    }
    Ok(())
}

#[test]
fn refuses_bad_sources_before_anything() {
    let good = module("aacraid", "1.2-1.41024dkms", VERMAGIC);
    let other_name = module("megaraid_sas", "1", VERMAGIC);
    let other_kernel = module(
        "aacraid",
        "1",
        "6.1.0-55-amd64 SMP preempt mod_unload modversions",
    );
    let mut bad_manifest = manifest_for(&good, K);
    bad_manifest["files"][0]["sha256"] = json!("00");
    let (_dir, host) = host_with(
        &[
            ("/root/text.ko", b"not an elf file".to_vec()),
            ("/root/other.ko", other_name),
            ("/root/old.ko", other_kernel),
            (
                "/root/bad.tgz",
                artifact(bad_manifest, &[("aacraid.ko", &good)]),
            ),
            ("/root/corrupt.tgz", vec![0x1f, 0x8b, 8, 0, 1, 2, 3]),
            ("/root/good.ko", good),
        ],
        INTREE,
    );
    // A link to a device and a pipe (each would be read for ever), and a
    // sparse file past the cap.
    let root = host.real_path(Path::new("/root"));
    std::os::unix::fs::symlink("/dev/zero", root.join("zero.ko")).expect("link");
    let made = std::process::Command::new("mkfifo")
        .arg(root.join("fifo.tgz"))
        .status()
        .expect("mkfifo");
    assert!(made.success());
    std::fs::File::create(root.join("huge.ko"))
        .and_then(|f| f.set_len(MODULE_MAX + 1))
        .expect("sparse file");
    let cases = [
        (json!({"src": "/root/missing.ko"}), "src /root/missing.ko does not exist"),
        (json!({"src": "/root/text.ko"}), "/root/text.ko is not an ELF kernel module"),
        (json!({"src": "/root/other.ko"}), "is the module \"megaraid_sas\", not \"aacraid\""),
        (
            json!({"src": "/root/old.ko", "kernels": [K]}),
            "was built for `6.1.0-55-amd64 SMP preempt mod_unload modversions`, but kernel 6.1.0-56-amd64's own modules",
        ),
        (json!({"src": "/root/bad.tgz"}), "checksum mismatch for aacraid.ko: manifest says sha256 00"),
        (json!({"src": "/root/corrupt.tgz"}), "corrupt gzip"),
        (json!({"src": "/root/good.ko", "kernels": ["6.1.0-9-amd64"]}), "kernel 6.1.0-9-amd64 is not installed"),
        (json!({"src": "/root/good.ko", "expected_version": "2.0"}), "but expected_version is \"2.0\""),
        (json!({"src": "/root/good.ko", "dest": "../../etc"}), "dest must be a relative folder"),
        (json!({"src": "/root/good.ko", "dest": "kernel/drivers"}), "inside the kernel package's own files"),
        (json!({}), "src is required when state is present"),
        (
            json!({"src": "/root/zero.ko"}),
            "cannot read src /root/zero.ko: not a regular file",
        ),
        (
            json!({"src": "/root/fifo.tgz"}),
            "cannot read src /root/fifo.tgz: not a regular file",
        ),
        (
            json!({"src": "/root/huge.ko"}),
            "cannot read src /root/huge.ko: larger than 64 MiB, the limit",
        ),
        (
            json!({"src": "/root/good.ko", "remote_src": false}),
            "carried out by this module's action plugin",
        ),
    ];
    for (opts, expected) in cases {
        let msg = plan_error(&host, opts.clone());
        assert!(msg.contains(expected), "{opts}: {msg}");
    }
    assert!(host.calls().iter().all(|c| c[0] == "modinfo"));
}

#[test]
fn force_accepts_a_vermagic_mismatch_with_a_warning() -> Result<()> {
    let ko = module(
        "aacraid",
        "1",
        "6.1.0-55-amd64 SMP preempt mod_unload modversions",
    );
    let (_dir, host) = host_with(&[("/root/old.ko", ko)], INTREE);
    let p = plan(
        &host,
        json!({"src": "/root/old.ko", "kernels": [K], "force": true}),
    )?;
    assert_eq!(p.kernels[0].action, Action::Install);
    assert!(
        p.warnings[0].contains("installed anyway because force is set"),
        "{:?}",
        p.warnings
    );
    Ok(())
}

#[test]
fn refuses_a_second_copy_in_the_same_folder() {
    let ko = module("aacraid", "1", VERMAGIC);
    let (_dir, host) = host_with(
        &[
            ("/root/aacraid.ko", ko.clone()),
            (&format!("/lib/modules/{K}/updates/aacraid.ko.xz"), ko),
        ],
        INTREE,
    );
    let msg = plan_error(&host, json!({"src": "/root/aacraid.ko"}));
    assert!(
        msg.contains("updates/aacraid.ko.xz already exists beside"),
        "{msg}"
    );
}

/// A `.ko.gz` where kmod is built without zlib (Debian 12's): refused
/// before any write, naming what kmod reads; planned where kmod has zlib,
/// or does not say.
#[test]
fn refuses_a_compression_kmod_cannot_read() -> Result<()> {
    let gz = formats::testing::gzip(&module("aacraid", "1", VERMAGIC));
    let files = [("/root/aacraid.ko.gz", gz)];
    let without = "kmod version 30\n+ZSTD +XZ -ZLIB +LIBCRYPTO -EXPERIMENTAL\n";
    let (_dir, host) = host_answering(
        &files,
        INTREE,
        Script::new().answer(&["modinfo", "-V"], 0, without, ""),
    );
    let msg = plan_error(&host, json!({"src": "/root/aacraid.ko.gz"}));
    assert_eq!(
        msg,
        format!(
            "/root/aacraid.ko.gz is compressed with gzip, which this host's kmod cannot read \
             (kmod version 30: +ZSTD +XZ -ZLIB +LIBCRYPTO -EXPERIMENTAL): depmod would not index \
             /lib/modules/{K}/updates/aacraid.ko.gz; install the module as .ko, .ko.xz or .ko.zst"
        )
    );
    for version in ["kmod version 30\n+ZSTD +XZ +ZLIB\n", "kmod version 20\n"] {
        let (_dir, host) = host_answering(
            &files,
            INTREE,
            Script::new().answer(&["modinfo", "-V"], 0, version, ""),
        );
        let p = plan(&host, json!({"src": "/root/aacraid.ko.gz"}))?;
        assert_eq!(p.kernels[0].action, Action::Install, "{version}");
    }
    Ok(())
}

/// Installed, but modinfo still resolves the in-tree file: the run fails
/// naming the winner, and every change is undone.
#[test]
fn a_lost_resolution_undoes_every_change() -> Result<()> {
    let ko = module("aacraid", "1.2-1.41024dkms", VERMAGIC);
    let (dir, host) = host_with(&[("/root/aacraid.ko", ko)], INTREE);
    let snapshot = || -> Vec<String> {
        let mut out = Vec::new();
        let mut stack = vec![dir.path().to_path_buf()];
        while let Some(d) = stack.pop() {
            for e in std::fs::read_dir(&d).expect("list") {
                let path = e.expect("entry").path();
                if path.is_dir() {
                    stack.push(path.clone());
                    out.push(format!("{}/", path.display()));
                } else {
                    out.push(format!(
                        "{} {}",
                        path.display(),
                        sha256_hex(&std::fs::read(&path).expect("read"))
                    ));
                }
            }
        }
        out.sort();
        out
    };
    let before = snapshot();
    let p = plan(&host, json!({"src": "/root/aacraid.ko"}))?;
    let err = format!(
        "{:#}",
        KmodUpdate::apply(p, &Context::default(), &host).expect_err("lost")
    );
    assert!(
        err.contains(&format!(
            "resolves aacraid to {INTREE}, version 1.2.1[50983]-custom"
        )),
        "{err}"
    );
    assert!(err.contains("the host is as it was"), "{err}");
    assert_eq!(snapshot(), before);
    let depmods = host.calls().iter().filter(|c| c[0] == "depmod").count();
    assert_eq!(depmods, 2, "once for the install, once after undoing it");
    Ok(())
}

#[test]
fn backup_names_follow_ansible() {
    let p = Path::new("/lib/modules/k/updates/aacraid.ko");
    assert_eq!(
        apply::backup_path(p, 951_782_400),
        PathBuf::from("/lib/modules/k/updates/aacraid.ko.2000-02-29@00:00:00~")
    );
    assert_eq!(
        apply::backup_path(p, 1_795_622_399),
        PathBuf::from("/lib/modules/k/updates/aacraid.ko.2026-11-25@15:59:59~")
    );
}

/// Attack: `updates` (or a folder of a custom `dest`) is a link to `/etc`;
/// mkdir, the temporary file, the rename and the backup would all land
/// there.
#[test]
fn refuses_a_destination_reached_through_a_link() -> Result<()> {
    let ko = module("aacraid", "1", VERMAGIC);
    for (dest, link) in [("updates", "updates"), ("extra/vendor", "extra")] {
        let (dir, host) = host_with(
            &[("/root/aacraid.ko", ko.clone()), ("/etc/motd", vec![])],
            INTREE,
        );
        std::os::unix::fs::symlink(
            dir.path().join("etc"),
            dir.path().join(format!("lib/modules/{K}/{link}")),
        )?;
        let msg = plan_error(&host, json!({"src": "/root/aacraid.ko", "dest": dest}));
        assert!(
            msg.contains(&format!("/lib/modules/{K}/{link} is a symbolic link")),
            "{msg}"
        );
    }
    Ok(())
}

/// Attack: a record rewritten to name `/etc/passwd` (or `/etc` among the
/// folders it created), or a record folder that is a link, would make
/// `state: absent` remove files outside the kernel's tree.
#[test]
fn refuses_records_that_point_outside_their_kernel() -> Result<()> {
    let record = |path: &str, dirs: &[&str]| {
        serde_json::to_vec(&json!({"path": path, "sha256": "00", "version": null,
                                   "created_dirs": dirs, "replaced": null}))
        .expect("json")
    };
    let ours = format!("/lib/modules/{K}/updates/aacraid.ko");
    let at = format!("/var/lib/kmod_update/{K}/aacraid.json");
    for bad in [
        record("/etc/passwd", &[]),
        record(&ours, &["/etc"]),
        record(&format!("/lib/modules/{K}/../../../etc/passwd"), &[]),
    ] {
        let (_dir, host) = host_with(&[(&at, bad), ("/etc/passwd", b"root".to_vec())], INTREE);
        let msg = plan_error(&host, json!({"state": "absent"}));
        assert!(
            msg.contains("names a path kmod_update does not touch"),
            "{msg}"
        );
    }
    let (dir, host) = host_with(&[("/etc/aacraid.json", record(&ours, &[]))], INTREE);
    std::fs::create_dir_all(dir.path().join("var/lib/kmod_update"))?;
    std::os::unix::fs::symlink(
        dir.path().join("etc"),
        dir.path().join(format!("var/lib/kmod_update/{K}")),
    )?;
    let msg = plan_error(&host, json!({"state": "absent"}));
    assert!(
        msg.contains(&format!("/var/lib/kmod_update/{K} is a symbolic link")),
        "{msg}"
    );
    Ok(())
}

/// A run killed after writing the module and before its record: the next
/// run's plan sees the host as the rollback leaves it (check mode predicts
/// an install and the rollback), and the real run rolls back, installs,
/// writes the record and removes the journal.
#[test]
fn a_killed_install_is_rolled_back_and_redone() -> Result<()> {
    let ko = module("aacraid", "1.2-1.41024dkms", VERMAGIC);
    let target = format!("/lib/modules/{K}/updates/aacraid.ko");
    let (dir, host) = host_with(&[("/root/aacraid.ko", ko.clone())], &target);
    let before =
        linux_host::kmod::Resolved::read(&host, K, "aacraid", linux_host::kmod::Lookup::Auto)?;
    let mut killed = crate::journal::Journal::begin(&host, K, "aacraid", &before)?;
    killed.create_dirs(&host, &[PathBuf::from(format!("/lib/modules/{K}/updates"))])?;
    killed.write(&host, Path::new(&target), &ko, 0o644)?;
    std::fs::write(
        dir.path()
            .join(format!("lib/modules/{K}/updates/.aacraid.ko.tmp99.0")),
        b"half",
    )?;
    std::fs::write(
        dir.path()
            .join(format!("lib/modules/{K}/modules.dep.bin.99.12.34")),
        b"half",
    )?;
    drop(killed);

    let preview = KmodUpdate::preview(
        plan(&host, json!({"src": "/root/aacraid.ko"}))?,
        &Context::default(),
    );
    assert!(preview.changed);
    assert_eq!(preview.values.kernels[0].action, Action::Install);
    assert_eq!(preview.values.recovered.len(), 1);
    assert!(preview.values.recovered[0].rolled_back);

    let done = KmodUpdate::apply(
        plan(&host, json!({"src": "/root/aacraid.ko"}))?,
        &Context::default(),
        &host,
    )?;
    assert_eq!(done.values.kernels[0].action, Action::Install);
    assert_eq!(done.values.recovered.len(), 1);
    assert!(done.msg.as_deref().is_some_and(|m| m.starts_with(&format!(
        "aacraid: roll back the interrupted run on {K}, install {K}"
    ))));
    let root = dir.path();
    assert!(root
        .join(format!("var/lib/kmod_update/{K}/aacraid.json"))
        .exists());
    assert!(!root
        .join(format!("var/lib/kmod_update.journal.aacraid@{K}"))
        .exists());
    assert!(!root
        .join(format!("lib/modules/{K}/updates/.aacraid.ko.tmp99.0"))
        .exists());
    assert!(!root
        .join(format!("lib/modules/{K}/modules.dep.bin.99.12.34"))
        .exists());

    let again = KmodUpdate::preview(
        plan(&host, json!({"src": "/root/aacraid.ko"}))?,
        &Context::default(),
    );
    assert!(!again.changed, "{:?}", again.msg);
    Ok(())
}

#[test]
fn refuses_a_module_a_kernel_enforcing_signatures_would_reject() -> Result<()> {
    // Kernel K is built with CONFIG_MODULE_SIG_FORCE; its in-tree module
    // carries a real Debian signature tail, the new build none.
    let tail = std::fs::read(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../crates/formats/tests/fixtures/modsig/debian-aacraid-tail.bin"),
    )?;
    let mut signed = module("aacraid", "1.2.1[50983]-custom", VERMAGIC);
    signed.extend(&tail);
    let config = b"CONFIG_MODULE_SIG=y\nCONFIG_MODULE_SIG_FORCE=y\n".to_vec();
    let files = [
        ("/root/new.ko", module("aacraid", "2", VERMAGIC)),
        (INTREE, signed.clone()),
        ("/boot/config-6.1.0-56-amd64", config.clone()),
    ];
    let (dir, host) = host_with(&files, INTREE);
    let before = tree_listing(dir.path());
    let error = plan_error(&host, json!({"src": "/root/new.ko", "kernels": [K]}));
    assert_eq!(
        error,
        format!(
            "kernel {K} would not load /root/new.ko: unsigned, and kernel {K} refuses such modules: built with \
             CONFIG_MODULE_SIG_FORCE; sign it with a key the kernel trusts, or set force: true to install it anyway"
        )
    );
    assert_eq!(tree_listing(dir.path()), before, "nothing changed");

    let p = plan(
        &host,
        json!({"src": "/root/new.ko", "kernels": [K], "force": true}),
    )?;
    assert_eq!(p.kernels[0].action, Action::Install);
    assert!(
        p.warnings
            .iter()
            .any(|w| w.ends_with("installed anyway because force is set")
                && w.starts_with(&format!("kernel {K} would not load /root/new.ko: unsigned"))),
        "{:?}",
        p.warnings
    );

    // A build signed with the kernel's own key passes; so does any build
    // for a kernel that does not enforce.
    let (_dir, host) = host_with(
        &[
            ("/root/new.ko", signed.clone()),
            (INTREE, signed),
            ("/boot/config-6.1.0-56-amd64", config),
        ],
        INTREE,
    );
    assert!(plan(&host, json!({"src": "/root/new.ko", "kernels": [K]}))?
        .warnings
        .is_empty());
    let (_dir, host) = host_with(
        &[
            ("/root/new.ko", module("aacraid", "2", VERMAGIC)),
            (
                "/boot/config-6.1.0-56-amd64",
                b"CONFIG_MODULE_SIG=y\n".to_vec(),
            ),
        ],
        INTREE,
    );
    assert!(plan(&host, json!({"src": "/root/new.ko", "kernels": [K]}))?
        .warnings
        .is_empty());
    Ok(())
}

/// Every file under `root` with its bytes, sorted.
fn tree_listing(root: &Path) -> Vec<(std::path::PathBuf, Vec<u8>)> {
    let mut found = Vec::new();
    let mut dirs = vec![root.to_path_buf()];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).expect("read_dir").flatten() {
            let path = entry.path();
            if path.is_dir() {
                dirs.push(path);
            } else {
                found.push((path.clone(), std::fs::read(&path).unwrap_or_default()));
            }
        }
    }
    found.sort();
    found
}

#[test]
fn expected_signer_and_the_manifest_s_signer_are_checked_before_anything() -> Result<()> {
    let tail = std::fs::read(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../crates/formats/tests/fixtures/modsig/debian-aacraid-tail.bin"),
    )?;
    let unsigned = module("aacraid", "2", VERMAGIC);
    let mut signed = unsigned.clone();
    signed.extend(&tail);
    let signer = "Build time autogenerated kernel key";
    let key = "7A:7D:A6:18:91:67:01:DB:FC:E1:EF:7C:E7:E5:26:14:31:FB:67:A3";
    let mut recorded = manifest_for(&signed, K);
    recorded["files"][0]["signer"] = json!(signer);
    recorded["files"][0]["key_id"] = json!(key);
    // Stripped of its signature after the manifest was written, the
    // checksum made again: the manifest's signer gives it away.
    let mut stripped = recorded.clone();
    stripped["files"][0]["size"] = json!(unsigned.len());
    stripped["files"][0]["sha256"] = json!(sha256_hex(&unsigned));
    let files = [
        ("/root/signed.ko", signed.clone()),
        ("/root/unsigned.ko", unsigned.clone()),
        (
            "/root/signed.tgz",
            artifact(recorded, &[("aacraid.ko", &signed)]),
        ),
        (
            "/root/stripped.tgz",
            artifact(stripped, &[("aacraid.ko", &unsigned)]),
        ),
    ];
    let (_dir, host) = host_with(&files, INTREE);

    assert_eq!(
        plan(
            &host,
            json!({"src": "/root/signed.ko", "expected_signer": signer})
        )?
        .kernels[0]
            .action,
        Action::Install
    );
    assert_eq!(
        plan(
            &host,
            json!({"src": "/root/signed.tgz", "expected_signer": signer})
        )?
        .kernels[0]
            .action,
        Action::Install
    );
    assert_eq!(
        plan_error(
            &host,
            json!({"src": "/root/unsigned.ko", "expected_signer": signer})
        ),
        format!("/root/unsigned.ko is unsigned, but expected_signer is {signer:?}")
    );
    assert_eq!(
        plan_error(&host, json!({"src": "/root/signed.ko", "expected_signer": "DKMS module signing key"})),
        format!("/root/signed.ko is signed by {signer:?} (key {key}), but expected_signer is \"DKMS module signing key\"")
    );
    assert_eq!(
        plan_error(&host, json!({"src": "/root/stripped.tgz"})),
        format!("/root/stripped.tgz: manifest says aacraid.ko is signed by {signer:?} (key {key}), the module carries no signature")
    );
    assert!(
        host.calls().iter().all(|c| c[0] == "modinfo"),
        "{:?}",
        host.calls()
    );
    Ok(())
}
