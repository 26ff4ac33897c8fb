//! Property tests of the parsers of host text in this crate:
//! `/proc/self/mounts` and `df -Pk` (`mounts`), depmod.d (`depmod`), the
//! kernel log banner (`loaded`), kernel releases and the `kernels` option
//! (`kernel`), `modules.dep`/`modules.builtin` (`kmod`), and an initramfs
//! image's `modules.dep` and module copies (`initramfs`, over images built
//! with `formats::testing`).
//!
//! Random text checks that nothing panics (with `overflow-checks` on) and
//! that counts add up; generated text checks that what was written is
//! what is read back. Memory, case counts and regressions: see
//! `crates/formats/tests/harness/mod.rs` (shared by `#[path]`).

#[path = "../../formats/tests/harness/mod.rs"]
mod harness;

use std::cmp::Ordering;
use std::path::{Path, PathBuf};

use proptest::collection::vec;
use proptest::prelude::*;
use serde_json::{json, Map, Value};

use formats::cpio::Member;
use formats::modinfo::Resolution;
use formats::testing::{cpio, gzip, member};
use linux_host::depmod::{self, Config, Rule};
use linux_host::kernel::{self, KernelSpec};
use linux_host::{initramfs, kmod, loaded, mounts, Host, Script};

/// Text as hosts print it: mostly printable lines, sometimes anything.
fn host_text() -> impl Strategy<Value = String> {
    prop_oneof![
        "[ -~\t\n]{0,400}",
        ".{0,200}",
        "[ \t\n\\\\0-7a-z/#,]{0,200}"
    ]
}

// ---------------------------------------------------------------- mounts

/// A mount point and how `/proc/self/mounts` escapes it.
fn mount_point() -> impl Strategy<Value = (String, String)> {
    vec(
        prop_oneof![
            4 => "[a-z0-9._-]".prop_map(|c| (c.clone(), c)),
            1 => Just((" ".to_string(), "\\040".to_string())),
            1 => Just(("\t".to_string(), "\\011".to_string())),
            1 => Just(("\n".to_string(), "\\012".to_string())),
            1 => Just(("\\".to_string(), "\\134".to_string())),
            1 => Just(("/".to_string(), "/".to_string())),
        ],
        0..16,
    )
    .prop_map(|parts| {
        let (plain, escaped): (Vec<String>, Vec<String>) = parts.into_iter().unzip();
        (
            format!("/{}", plain.concat()),
            format!("/{}", escaped.concat()),
        )
    })
}

fn mount_options() -> impl Strategy<Value = Vec<String>> {
    vec(
        prop_oneof![
            Just("ro".to_string()),
            Just("rw".to_string()),
            "[a-z]{1,8}(=[a-z0-9/]{1,6})?",
        ],
        1..5,
    )
}

proptest! {
    #![proptest_config(harness::config(2000))]

    #[test]
    fn mounts_round_trip(table in vec(("[a-z/0-9]{1,10}", mount_point(), "[a-z0-9]{2,8}", mount_options()), 0..8)) {
        let text: String = table
            .iter()
            .map(|(dev, (_, escaped), fs, options)| format!("{dev} {escaped} {fs} {} 0 0\n", options.join(",")))
            .collect();
        let parsed = mounts::parse(&text);
        prop_assert_eq!(parsed.len(), table.len());
        for (m, (_, (plain, _), _, options)) in parsed.iter().zip(&table) {
            prop_assert_eq!(&m.point, &PathBuf::from(plain));
            prop_assert_eq!(m.read_only, options.iter().any(|o| o == "ro"));
        }
    }

    #[test]
    fn mounts_random_text(text in host_text()) {
        prop_assert!(mounts::parse(&text).len() <= text.lines().count());
    }

    #[test]
    fn df_available_any_number(kib in prop_oneof![any::<u64>(), 0u64..1 << 40], junk in host_text()) {
        let out = format!("Filesystem 1024-blocks Used Available Capacity Mounted on\n/dev/x 1 2 {kib} 3% /boot\n");
        prop_assert_eq!(mounts::parse_df_available(&out), kib.checked_mul(1024));
        let _ = mounts::parse_df_available(&junk);
    }
}

// ---------------------------------------------------------------- depmod.d

fn depmod_dir() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("built-in".to_string()),
        Just("updates".to_string()),
        "/?[a-z-]{1,10}(/[a-z]{1,6})?/?",
    ]
}

#[derive(Clone, Debug)]
enum Line {
    Search(Vec<String>),
    Override(String, String, String),
    Other(String),
}

fn depmod_line() -> impl Strategy<Value = Line> {
    prop_oneof![
        vec(depmod_dir(), 1..5).prop_map(Line::Search),
        (
            "[a-z][a-z0-9_-]{0,10}",
            prop_oneof![Just("*".to_string()), "[0-9][0-9a-z.-]{0,12}"],
            depmod_dir()
        )
            .prop_map(|(m, k, d)| Line::Override(m, k, d)),
        prop_oneof![
            Just("# search nothing".to_string()),
            Just("include /etc/x".to_string()),
            Just("external 6.1 /opt".to_string()),
            Just("search".to_string()),
            Just("override a b".to_string()),
            "[ -~]{0,30}".prop_map(|s| format!("#{s}")),
        ]
        .prop_map(Line::Other),
    ]
}

proptest! {
    #![proptest_config(harness::config(2000))]

    #[test]
    fn depmod_round_trips(lines in vec(depmod_line(), 0..8), comment in "( # [ -~]{0,10})?") {
        let text: String = lines
            .iter()
            .map(|l| match l {
                Line::Search(dirs) => format!("search {}{comment}\n", dirs.join(" ")),
                Line::Override(m, k, d) => format!("  override {m}\t{k} {d}{comment}\n"),
                Line::Other(s) => format!("{s}\n"),
            })
            .collect();
        let file = Path::new("/etc/depmod.d/fuzz.conf");
        let parsed = depmod::parse(file, &text);
        let expected: Vec<Rule> = lines
            .iter()
            .filter_map(|l| match l {
                Line::Search(dirs) => Some(Rule::Search(
                    dirs.iter().map(|d| d.trim_matches('/').to_string()).collect(),
                )),
                Line::Override(m, k, d) => Some(Rule::Override {
                    module: m.replace('-', "_"),
                    kernel: k.clone(),
                    dir: d.trim_matches('/').to_string(),
                }),
                Line::Other(_) => None,
            })
            .collect();
        let rules: Vec<Rule> = parsed.iter().map(|d| d.rule.clone()).collect();
        prop_assert_eq!(&rules, &expected);
        prop_assert!(parsed.iter().all(|d| d.file == file && !d.line.contains('#')));

        let config = Config { directives: parsed };
        let order = config.search_order();
        prop_assert!(!order.is_empty());
        for path in ["updates/aacraid.ko", "kernel/drivers/scsi/aacraid/aacraid.ko", "extra/a.ko", ""] {
            prop_assert!(config.rank(Path::new(path)) <= order.len());
        }
        let said = config.explain(
            "aacraid",
            "6.1.0-56-amd64",
            Path::new("updates/aacraid.ko"),
            Path::new("kernel/drivers/scsi/aacraid/aacraid.ko"),
        );
        prop_assert!(!said.is_empty());
    }

    #[test]
    fn depmod_random_text(text in host_text(), wanted in ".{0,20}", winner in ".{0,20}") {
        let parsed = depmod::parse(Path::new("x.conf"), &text);
        prop_assert!(parsed.len() <= text.lines().count());
        let config = Config { directives: parsed };
        let _ = config.explain("aacraid", "k", Path::new(&wanted), Path::new(&winner));
    }
}

// ---------------------------------------------------------------- kernel log

proptest! {
    #![proptest_config(harness::config(2000))]

    #[test]
    fn banner_is_found_in_any_log(log in host_text(), banner in prop_oneof![Just("Adaptec aacraid driver".to_string()), ".{1,6}"]) {
        match loaded::find_banner(&log, &banner) {
            Some(found) => {
                // The line as logged, less trailing blanks.
                prop_assert!(log.lines().any(|l| l.trim_end() == found.line && l.contains(&banner)));
            }
            None => prop_assert!(!log.contains(&banner) || banner.contains('\n')),
        }
    }

    #[test]
    fn banner_version_is_the_next_word(
        before in "[ -~]{0,20}",
        version in "[!-~]{1,20}",
        noise in vec("[ -~]{0,30}", 0..4),
    ) {
        let banner = "Adaptec aacraid driver";
        let mut log = String::new();
        log.push_str(&format!("[    1.0] {banner} 0.0.0-old\n"));
        for n in &noise {
            log.push_str(&n.replace(banner, ""));
            log.push('\n');
        }
        log.push_str(&format!("{before}{banner} {version}\n"));
        let found = loaded::find_banner(&log, banner).expect("present");
        prop_assert_eq!(found.version, Some(version));
    }
}

// ---------------------------------------------------------------- kernels

fn release() -> impl Strategy<Value = String> {
    prop_oneof![
        "[0-9]{1,3}(\\.[0-9]{1,3}){0,3}(-[0-9a-z_+~.]{1,10})?",
        "[ -~]{0,12}"
    ]
}

proptest! {
    #![proptest_config(harness::config(2000))]

    #[test]
    fn releases_are_validated_by_their_characters(text in prop_oneof![release(), ".{0,12}"]) {
        let allowed = !text.is_empty()
            && text != "."
            && text != ".."
            && text.chars().all(|c| c.is_ascii_alphanumeric() || "._+-~".contains(c));
        prop_assert_eq!(kernel::validate_release(&text).is_ok(), allowed);
        match KernelSpec::parse(&text) {
            Ok(spec) => prop_assert_eq!(spec.as_str(), text.as_str()),
            Err(_) => prop_assert!(!allowed),
        }
    }

    #[test]
    fn release_order_is_a_total_order(a in release(), b in release(), c in release()) {
        let ab = kernel::compare_releases(&a, &b);
        prop_assert_eq!(kernel::compare_releases(&b, &a), ab.reverse());
        prop_assert_eq!(kernel::compare_releases(&a, &a), Ordering::Equal);
        let bc = kernel::compare_releases(&b, &c);
        if ab != Ordering::Greater && bc != Ordering::Greater {
            prop_assert_ne!(kernel::compare_releases(&a, &c), Ordering::Greater);
        }
    }

    #[test]
    fn release_numbers_compare_as_numbers(x in any::<u64>(), y in any::<u64>(), zeros in "0{0,3}") {
        let a = format!("6.1.{zeros}{x}-amd64");
        let b = format!("6.1.{y}-amd64");
        prop_assert_eq!(kernel::compare_releases(&a, &b), x.cmp(&y));
    }

    #[test]
    fn kernels_option_from_any_json(value in prop_oneof![
        vec(prop_oneof![release().prop_map(Value::String), any::<i64>().prop_map(|n| json!(n)), Just(Value::Null)], 0..4)
            .prop_map(Value::Array),
        release().prop_map(Value::String),
        any::<bool>().prop_map(Value::Bool),
    ]) {
        #[derive(serde::Deserialize)]
        struct Options {
            kernels: Vec<KernelSpec>,
        }
        let mut map = Map::new();
        map.insert("kernels".into(), value);
        if let Ok(options) = ansible_protocol::options::from_value::<Options>(map) {
            for spec in &options.kernels {
                if let KernelSpec::Release(r) = spec {
                    prop_assert!(kernel::validate_release(r).is_ok());
                }
            }
        }
    }
}

// ---------------------------------------------------------------- modules.dep

const KVER: &str = "6.1.0-56-amd64";

fn dep_path() -> impl Strategy<Value = String> {
    prop_oneof![
        "(kernel|updates|extra)(/[a-z]{1,6}){0,2}/[a-z_-]{1,8}\\.ko(\\.xz|\\.gz|\\.zst)?",
        Just("updates/aacraid.ko".to_string()),
        Just("kernel/drivers/scsi/aacraid/aacraid.ko.xz".to_string()),
        Just(format!("/lib/modules/{KVER}/extra/aacraid.ko")),
        "[ -~]{0,20}",
    ]
}

fn modules_dep() -> impl Strategy<Value = (Vec<String>, String)> {
    vec((dep_path(), vec(dep_path(), 0..3)), 0..8).prop_map(|lines| {
        let paths: Vec<String> = lines.iter().map(|(p, _)| p.clone()).collect();
        let text = lines
            .iter()
            .map(|(p, deps)| format!("{p}: {}\n", deps.join(" ")))
            .collect();
        (paths, text)
    })
}

/// The module name a modules.dep path stands for, as kmod names it.
fn module_of(path: &str) -> Option<String> {
    Path::new(path.trim())
        .file_name()
        .and_then(|f| formats::modinfo::module_name_of_file(&f.to_string_lossy()))
}

proptest! {
    #![proptest_config(harness::config(500))]

    #[test]
    fn modules_dep_resolution((paths, dep) in modules_dep(), builtin in host_text(), name in prop_oneof![Just("aacraid".to_string()), "[a-z_-]{1,8}"]) {
        let root = harness::scratch("modules_dep_resolution");
        let dir = root.join("lib/modules").join(KVER);
        std::fs::create_dir_all(&dir).map_err(|e| TestCaseError::fail(e.to_string()))?;
        std::fs::write(dir.join("modules.dep"), &dep).map_err(|e| TestCaseError::fail(e.to_string()))?;
        std::fs::write(dir.join("modules.builtin"), &builtin).map_err(|e| TestCaseError::fail(e.to_string()))?;
        let host = Host::scripted(&root, Script::new());
        let wanted = name.replace('-', "_");
        let first = paths
            .iter()
            // The path is what comes before a line's first colon.
            .map(|p| p.split(':').next().unwrap_or_default().trim())
            .find(|p| module_of(p).as_deref() == Some(wanted.as_str()));
        let resolution = kmod::resolve(&host, KVER, &name).expect("modules.dep is readable");
        match (resolution, first) {
            (Resolution::File(path), Some(p)) => {
                let expected = if p.starts_with('/') { PathBuf::from(p) } else { Path::new("/lib/modules").join(KVER).join(p) };
                prop_assert_eq!(path, expected);
            }
            (Resolution::Builtin, None) => {
                prop_assert!(builtin.lines().any(|l| module_of(l).as_deref() == Some(wanted.as_str())));
            }
            (Resolution::NotFound, None) => {}
            (other, first) => prop_assert!(false, "{:?} for the first listed {:?}", other, first),
        }
    }

    #[test]
    fn modinfo_answer_from_a_scripted_host(rc in any::<i32>(), stdout in host_text(), stderr in host_text()) {
        let script = Script::new().answer(&["modinfo", "-k", KVER, "-n", "aacraid"], rc, &stdout, &stderr);
        let host = Host::scripted(harness::scratch("modinfo_answer"), script);
        let direct = formats::modinfo::parse_modinfo_n(rc, &stdout, &stderr).ok();
        prop_assert_eq!(kmod::resolve_with_modinfo(&host, KVER, "aacraid").ok(), direct);
    }
}

// ---------------------------------------------------------------- initramfs

proptest! {
    #![proptest_config(harness::config(1000))]

    #[test]
    fn member_for_follows_the_image_modules_dep(
        copies in vec(prop_oneof![
            Just("kernel/drivers/scsi/aacraid/aacraid.ko".to_string()),
            Just("updates/aacraid.ko".to_string()),
            Just("extra/aacraid.ko.xz".to_string()),
            Just("updates/other.ko".to_string()),
        ], 0..4),
        usr in any::<bool>(),
        (_, dep) in modules_dep(),
        listed in proptest::option::of(0usize..4),
    ) {
        let prefix = if usr { format!("usr/lib/modules/{KVER}/") } else { format!("lib/modules/{KVER}/") };
        let mut files: Vec<Member> = copies.iter().map(|c| member(&format!("{prefix}{c}"), c.as_bytes())).collect();
        let mut dep = dep;
        let chosen = listed.and_then(|i| copies.get(i)).filter(|c| module_of(c).as_deref() == Some("aacraid"));
        if let Some(c) = chosen {
            dep = format!("{c}: kernel/drivers/scsi/scsi_mod.ko\n{dep}");
        }
        files.push(member(&format!("{prefix}modules.dep"), dep.as_bytes()));
        let picked = initramfs::member_for(&files, KVER, "aacraid");
        let copies_of: Vec<&String> = copies.iter().filter(|c| module_of(c).as_deref() == Some("aacraid")).collect();
        match picked {
            None => prop_assert!(copies_of.is_empty()),
            Some(m) => {
                prop_assert!(module_of(&m.path).as_deref() == Some("aacraid"));
                if let Some(c) = chosen {
                    prop_assert_eq!(&m.data, &c.as_bytes().to_vec());
                }
            }
        }
        for f in &files {
            let relative = initramfs::relative_module_path(&f.path, KVER);
            prop_assert!(!relative.starts_with(&prefix));
        }
    }

    #[test]
    fn module_files_of_a_built_image(
        extra in vec(("[a-z]{1,8}(/[a-z]{1,8}){0,2}(\\.ko)?", vec(any::<u8>(), 0..64)), 0..4),
        ours in vec((proptest::sample::select(vec!["updates", "kernel/drivers/scsi/aacraid", "extra"]), vec(any::<u8>(), 0..64)), 0..3),
        usr in any::<bool>(),
        compressed in any::<bool>(),
    ) {
        let prefix = if usr { format!("usr/lib/modules/{KVER}/") } else { format!("lib/modules/{KVER}/") };
        let mut entries: Vec<(String, Vec<u8>)> = extra.clone();
        for (dir, data) in &ours {
            entries.push((format!("{prefix}{dir}/aacraid.ko"), data.clone()));
        }
        entries.push((format!("{prefix}modules.dep"), b"updates/aacraid.ko:\n".to_vec()));
        entries.push(("lib/modules/5.10.0-1-amd64/updates/aacraid.ko".to_string(), b"other kernel".to_vec()));
        let borrowed: Vec<(&str, &[u8])> = entries.iter().map(|(p, d)| (p.as_str(), d.as_slice())).collect();
        let mut image = cpio(&borrowed);
        if compressed {
            image = gzip(&image);
        }
        let root = harness::scratch("module_files_of_a_built_image");
        std::fs::create_dir_all(root.join("boot")).map_err(|e| TestCaseError::fail(e.to_string()))?;
        std::fs::write(root.join("boot/initrd.img-6.1.0-56-amd64"), image)
            .map_err(|e| TestCaseError::fail(e.to_string()))?;
        let host = Host::scripted(&root, Script::new());
        let scan = initramfs::module_files(
            &host,
            Path::new("/boot/initrd.img-6.1.0-56-amd64"),
            KVER,
            &["aacraid".to_string()],
        )
        .expect("a well-formed image");
        let got: Vec<(String, Vec<u8>)> = scan.files.iter().map(|m| (m.path.clone(), m.data.clone())).collect();
        let mut expected: Vec<(String, Vec<u8>)> = ours
            .iter()
            .map(|(dir, data)| (format!("{prefix}{dir}/aacraid.ko"), data.clone()))
            .collect();
        expected.push((format!("{prefix}modules.dep"), b"updates/aacraid.ko:\n".to_vec()));
        prop_assert_eq!(got, expected);
        let picked = initramfs::member_for(&scan.files, KVER, "aacraid");
        // The kernel unpacks every copy; the last one is what it keeps.
        let in_updates = ours.iter().rev().find(|(dir, _)| *dir == "updates");
        match (picked, in_updates) {
            (Some(m), Some((_, data))) => prop_assert_eq!(&m.data, data),
            (Some(_), None) => prop_assert!(!ours.is_empty()),
            (None, _) => prop_assert!(ours.is_empty()),
        }
    }
}

// ---------------------------------------------------------------- harness

limit_tests!();
