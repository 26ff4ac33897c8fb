//! Snapshot tests of the parsers over real captured outputs
//! (`tests/fixtures/`, sources in `SOURCES.md`). CI runs with
//! `INSTA_UPDATE=no`: a changed parse fails instead of rewriting the snapshot.

use linux_host::{arcconf, dkms};

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
