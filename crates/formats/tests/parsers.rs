//! Snapshot tests of the parsers over real captured outputs
//! (`tests/fixtures/`, sources in `SOURCES.md`). CI runs with
//! `INSTA_UPDATE=no`: a changed parse fails instead of rewriting the snapshot.

use formats::{arcconf, dkms, modinfo};

fn fixture(name: &str) -> String {
    let path = format!("{}/tests/fixtures/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

#[test]
fn dkms_status_outputs() {
    for name in [
        "dkms_status_seed_centos7.txt",
        "dkms_status_2x.txt",
        "dkms_status_weak.txt",
        "dkms_status_3x.txt",
        "dkms_status_diff_warning.txt",
        "dkms_status_diff_warning_3x.txt",
    ] {
        let status = dkms::parse_status(&fixture(name));
        assert!(
            status.other_lines.is_empty(),
            "{name}: {:?}",
            status.other_lines
        );
        insta::assert_yaml_snapshot!(name, status);
    }
}

#[test]
fn arcconf_getversion_outputs() {
    for name in ["arcconf_getversion_1.txt", "arcconf_getversion_2.txt"] {
        insta::assert_yaml_snapshot!(name, arcconf::parse_getversion(&fixture(name)));
    }
}

#[test]
fn arcconf_getconfig_ad_outputs() {
    for name in ["arcconf_getconfig_ad_1.txt", "arcconf_getconfig_ad_2.txt"] {
        insta::assert_yaml_snapshot!(name, arcconf::parse_getconfig_ad(1, &fixture(name)));
    }
}

/// Our reading of a real module's `.modinfo` agrees with kmod's `modinfo`,
/// for the plain and the xz-compressed file.
#[test]
fn real_module_metadata_matches_modinfo() {
    let printed = fixture("modinfo_uio_pci_generic.txt");
    let field = |key: &str| {
        printed
            .lines()
            .find_map(|l| l.strip_prefix(&format!("{key}:")))
            .map(|v| v.trim().to_string())
    };
    for file in ["uio_pci_generic.ko", "uio_pci_generic.ko.xz"] {
        let bytes = std::fs::read(format!(
            "{}/tests/fixtures/{file}",
            env!("CARGO_MANIFEST_DIR")
        ))
        .expect("fixture module");
        let info = modinfo::ModInfo::from_bytes(bytes).expect("a kernel module");
        assert_eq!(info.name, field("name"), "{file}");
        assert_eq!(info.version, field("version"), "{file}");
        assert_eq!(info.srcversion, field("srcversion"), "{file}");
        assert_eq!(info.vermagic, field("vermagic"), "{file}");
        assert_eq!(info.vermagic_release(), Some("6.1.0-56-amd64"));
    }
}

#[test]
fn modinfo_n_outputs() {
    let captured = fixture("modinfo_n_outputs.txt");
    let lines: Vec<&str> = captured.lines().collect();
    let file = modinfo::parse_modinfo_n(0, lines[0], "").expect("a path");
    let builtin = modinfo::parse_modinfo_n(0, lines[1], "").expect("builtin");
    let missing = modinfo::parse_modinfo_n(1, "", lines[2]).expect("not found");
    insta::assert_debug_snapshot!((file, builtin, missing));
}

/// rpmbuild's output, read without rpm: header tags and payload files.
#[test]
fn rpm_packages_made_by_rpmbuild() {
    let read = |name: &str| {
        let bytes = std::fs::read(format!(
            "{}/tests/fixtures/{name}",
            env!("CARGO_MANIFEST_DIR")
        ))
        .expect("fixture rpm");
        formats::rpm::read(&bytes, |p| p.starts_with("usr/")).expect("an rpm")
    };
    let driver = read("aacraid-1.2.1.41024-dkms.noarch.rpm");
    assert_eq!(
        (
            driver.name.as_str(),
            driver.version.as_str(),
            driver.release.as_str()
        ),
        ("aacraid", "1.2.1.41024", "dkms")
    );
    let paths: Vec<&str> = driver.files.iter().map(|f| f.path.as_str()).collect();
    assert_eq!(
        paths,
        [
            "usr/src/aacraid-1.2.1.41024/Makefile",
            "usr/src/aacraid-1.2.1.41024/aacraid.c",
            "usr/src/aacraid-1.2.1.41024/dkms.conf",
        ]
    );
    let conf = dkms::parse_conf(&String::from_utf8_lossy(&driver.files[2].data));
    assert_eq!(conf.package_name.as_deref(), Some("aacraid"));
    assert_eq!(conf.built_modules, ["aacraid"]);
    let decoy = read("dkms-2.2.0.3-1.noarch.rpm");
    assert_eq!(decoy.name, "dkms");
    assert!(decoy.files.iter().all(|f| !f.path.ends_with("dkms.conf")));
    assert!(formats::rpm::identify(
        b"not an rpm at all, just text that is long enough to pass the lead size check........."
    )
    .is_none());
}
