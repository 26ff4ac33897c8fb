//! Property tests ("fuzzing" on stable Rust, with proptest) of every
//! decoder in this crate: ELF `.modinfo`, the decompressors, cpio walks,
//! rpm headers, tar.gz archives, dkms, arcconf and `modinfo -n` output,
//! manifests and calendar dates.
//!
//! Each decoder gets three kinds of input: raw random bytes (often behind
//! the right magic, so the first check passes), structure-aware inputs
//! built with the crate's own test-data builders (`formats::testing`) or
//! the small builders below and then mutated (header fields set to huge or
//! wrapping values, bytes flipped, cuts), and well-formed inputs that must
//! decode back to what was built. "No panic" is checked everywhere (with
//! `overflow-checks` on in the test profile); "no unbounded allocation"
//! by the address-space limit of `harness` (see `harness/mod.rs`), under
//! which a buffer sized by a forged header aborts the run. Case counts:
//! the number passed to `harness::config` (bounded run), times
//! `FUZZ_SCALE` in `make fuzz`.

mod harness;

use std::io::{Cursor, Read};

use proptest::collection::vec;
use proptest::prelude::*;
use proptest::sample::Index;

use formats::archive::{self, Kind, Links};
use formats::calendar::DateTime;
use formats::compress::{self, Compression};
use formats::manifest::{self, Manifest};
use formats::modinfo::{self, ModInfo, Resolution};
use formats::path::MODE_MASK;
use formats::testing::{cpio, fake_module, gzip, lz4_literals, lzma};
use formats::{arcconf, cpio as cpio_walk, dkms, elf, modsig, rpm};

// ---------------------------------------------------------------- helpers

/// Byte strings, mostly short, sometimes a few KiB.
fn bytes(max: usize) -> impl Strategy<Value = Vec<u8>> {
    vec(any::<u8>(), 0..max)
}

/// Numbers as a forged header writes them: small, at type boundaries, or
/// anything.
fn forged_u64() -> impl Strategy<Value = u64> {
    prop_oneof![
        0u64..256,
        Just(u64::from(u32::MAX)),
        Just(u64::from(u32::MAX) - 15),
        Just(u64::MAX),
        Just(u64::MAX - 63),
        Just(1 << 31),
        Just(1 << 40),
        any::<u64>(),
    ]
}

/// Overwrites `len` bytes at `at` (clamped to the buffer) with `value`.
fn put(buf: &mut [u8], at: usize, value: &[u8]) {
    for (i, b) in value.iter().enumerate() {
        if let Some(slot) = buf.get_mut(at + i) {
            *slot = *b;
        }
    }
}

/// Fails when a decoder ran out of memory. Under the address-space limit
/// an infallible allocation aborts the run, but a fallible one (the
/// reservations of `Read::read_to_end`) ends in an `OutOfMemory` error that
/// a decoder passes on like any other: the same bug, seen as an error.
fn no_oom<T>(result: anyhow::Result<T>) -> Result<(), TestCaseError> {
    if let Err(e) = &result {
        let oom = e.chain().any(|cause| {
            cause
                .downcast_ref::<std::io::Error>()
                .is_some_and(|io| io.kind() == std::io::ErrorKind::OutOfMemory)
        });
        prop_assert!(!oom, "out of memory: {:#}", e);
    }
    Ok(())
}

/// [`no_oom`] for the I/O results of the decompressors.
fn no_oom_io<T>(result: std::io::Result<T>) -> Result<(), TestCaseError> {
    if let Err(e) = &result {
        prop_assert!(
            e.kind() != std::io::ErrorKind::OutOfMemory,
            "out of memory: {}",
            e
        );
    }
    Ok(())
}

/// Random byte flips at random places.
fn flips() -> impl Strategy<Value = Vec<(Index, u8)>> {
    vec((any::<Index>(), any::<u8>()), 1..6)
}

fn apply_flips(buf: &mut [u8], flips: &[(Index, u8)]) {
    if buf.is_empty() {
        return;
    }
    for (at, b) in flips {
        let i = at.index(buf.len());
        buf[i] = *b;
    }
}

fn xz(data: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    lzma_rs::xz_compress(&mut Cursor::new(data), &mut out).expect("xz into a Vec");
    out
}

fn zstd(data: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    ruzstd::encoding::compress(
        Cursor::new(data.to_vec()),
        &mut out,
        ruzstd::encoding::CompressionLevel::Fastest,
    );
    out
}

/// Compresses with the format picked by `which` (0 none, 1 gzip, 2 xz, 3 zstd).
fn compressed(which: u8, data: &[u8]) -> Vec<u8> {
    match which % 6 {
        0 => data.to_vec(),
        1 => gzip(data),
        2 => xz(data),
        3 => zstd(data),
        4 => lzma(data),
        _ => lz4_literals(data),
    }
}

fn magic_prefixed() -> impl Strategy<Value = Vec<u8>> {
    let magics: Vec<&'static [u8]> = vec![
        b"\x1f\x8b",
        b"\x1f\x8b\x08\x00",
        b"\xfd7zXZ\x00",
        b"\x28\xb5\x2f\xfd",
        b"070701",
        b"BZh",
        b"\x02\x21\x4c\x18",
        b"\x5d\x00\x00",
    ];
    (proptest::sample::select(magics), bytes(600)).prop_map(|(m, rest)| {
        let mut v = m.to_vec();
        v.extend(rest);
        v
    })
}

// ---------------------------------------------------------------- ELF

/// `key=value` pairs as a `.modinfo` section holds them: keys without `=`
/// or NUL, values without NUL.
fn modinfo_pairs() -> impl Strategy<Value = Vec<(String, String)>> {
    vec(("[a-z_][a-z0-9_]{0,11}", "[^\u{0}]{0,40}"), 0..8)
}

/// An ELF relocatable object with a `.modinfo` section, in any of the four
/// class/byte-order combinations (`formats::testing::fake_module` writes
/// only little-endian ELF64), with `padding` bytes between the parts.
fn elf_object(pairs: &[(String, String)], class64: bool, little: bool, padding: usize) -> Vec<u8> {
    let mut info = Vec::new();
    for (k, v) in pairs {
        info.extend_from_slice(format!("{k}={v}").as_bytes());
        info.push(0);
    }
    let names = b"\0.shstrtab\0.modinfo\0.text\0";
    let ehsize = if class64 { 64 } else { 52 };
    let shentsize: usize = if class64 { 64 } else { 40 };
    let mut elf = vec![0u8; ehsize];
    elf[..4].copy_from_slice(b"\x7fELF");
    elf[4] = if class64 { 2 } else { 1 };
    elf[5] = if little { 1 } else { 2 };
    elf[6] = 1;
    elf.extend(std::iter::repeat_n(0xcc, padding));
    let names_off = elf.len();
    elf.extend_from_slice(names);
    let info_off = elf.len();
    elf.extend_from_slice(&info);
    while !elf.len().is_multiple_of(8) {
        elf.push(0);
    }
    let shoff = elf.len();
    let word = |v: u64, n: usize| -> Vec<u8> {
        let full = if little {
            v.to_le_bytes()
        } else {
            v.to_be_bytes()
        };
        if little {
            full[..n].to_vec()
        } else {
            full[8 - n..].to_vec()
        }
    };
    // Null section, .shstrtab, .text (empty), .modinfo.
    let sections: [(u64, u64, u64); 4] = [
        (0, 0, 0),
        (1, names_off as u64, names.len() as u64),
        (20, 0, 0),
        (11, info_off as u64, info.len() as u64),
    ];
    for (name, off, len) in sections {
        let mut h = vec![0u8; shentsize];
        put(&mut h, 0, &word(name, 4));
        if class64 {
            put(&mut h, 0x18, &word(off, 8));
            put(&mut h, 0x20, &word(len, 8));
        } else {
            put(&mut h, 0x10, &word(off, 4));
            put(&mut h, 0x14, &word(len, 4));
        }
        elf.extend_from_slice(&h);
    }
    if class64 {
        put(&mut elf, 0x28, &word(shoff as u64, 8));
        put(&mut elf, 0x3a, &word(shentsize as u64, 2));
        put(&mut elf, 0x3c, &word(4, 2));
        put(&mut elf, 0x3e, &word(1, 2));
    } else {
        put(&mut elf, 0x20, &word(shoff as u64, 4));
        put(&mut elf, 0x2e, &word(shentsize as u64, 2));
        put(&mut elf, 0x30, &word(4, 2));
        put(&mut elf, 0x32, &word(1, 2));
    }
    elf
}

/// Where an ELF header field of a given width lives, per class.
fn elf_header_field(class64: bool, which: u8) -> (usize, usize) {
    let fields64 = [(0x28, 8), (0x3a, 2), (0x3c, 2), (0x3e, 2), (4, 1), (5, 1)];
    let fields32 = [(0x20, 4), (0x2e, 2), (0x30, 2), (0x32, 2), (4, 1), (5, 1)];
    let table = if class64 { fields64 } else { fields32 };
    table[usize::from(which) % table.len()]
}

proptest! {
    #![proptest_config(harness::config(1500))]

    #[test]
    fn elf_modinfo_round_trips(
        pairs in modinfo_pairs(),
        class64 in any::<bool>(),
        little in any::<bool>(),
        padding in 0usize..64,
    ) {
        let elf = elf_object(&pairs, class64, little, padding);
        prop_assert_eq!(elf::modinfo_section(&elf).expect("a well-formed object"), pairs.clone());
        if class64 && little {
            let borrowed: Vec<(&str, &str)> =
                pairs.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
            prop_assert_eq!(elf::modinfo_section(&fake_module(&borrowed)).expect("fake_module"), pairs);
        }
    }

    #[test]
    fn elf_truncated_is_an_error(
        pairs in modinfo_pairs(),
        class64 in any::<bool>(),
        little in any::<bool>(),
        cut in any::<Index>(),
    ) {
        let elf = elf_object(&pairs, class64, little, 0);
        // The section headers come last, `.modinfo`'s last of all; the walk
        // reads its header up to the size field and no further.
        let shentsize = if class64 { 64 } else { 40 };
        let needed = elf.len() - shentsize + if class64 { 0x28 } else { 0x18 };
        let cut = cut.index(elf.len());
        let parsed = elf::modinfo_section(&elf[..cut]);
        if cut < needed {
            prop_assert!(parsed.is_err());
        } else {
            prop_assert_eq!(parsed.expect("all it reads is there"), pairs);
        }
    }

    #[test]
    fn elf_forged_header_fields(
        pairs in modinfo_pairs(),
        class64 in any::<bool>(),
        little in any::<bool>(),
        edits in vec((any::<u8>(), forged_u64()), 1..4),
    ) {
        let mut elf = elf_object(&pairs, class64, little, 0);
        for (which, value) in edits {
            let (at, width) = elf_header_field(class64, which);
            let raw = if little { value.to_le_bytes() } else { value.to_be_bytes() };
            let raw = if little { &raw[..width] } else { &raw[8 - width..] };
            put(&mut elf, at, raw);
        }
        let _ = elf::modinfo_section(&elf);
    }

    #[test]
    fn elf_forged_section_headers(
        pairs in modinfo_pairs(),
        class64 in any::<bool>(),
        little in any::<bool>(),
        edits in vec((0usize..4, 0usize..64, forged_u64()), 1..4),
    ) {
        let mut elf = elf_object(&pairs, class64, little, 0);
        let shentsize = if class64 { 64 } else { 40 };
        let shoff = elf.len() - 4 * shentsize;
        for (section, at, value) in edits {
            let at = shoff + section * shentsize + at % shentsize;
            put(&mut elf, at, &value.to_le_bytes());
        }
        if let Ok(found) = elf::modinfo_section(&elf) {
            // Whatever was found came from real bytes of the file.
            let total: usize = found.iter().map(|(k, v)| k.len() + v.len()).sum();
            prop_assert!(total <= elf.len() * 3);
        }
    }

    #[test]
    fn elf_random_bytes(mut data in bytes(400), class in 0u8..4, order in 0u8..4) {
        let mut head = b"\x7fELF".to_vec();
        head.extend([class, order]);
        head.extend(data.drain(..data.len().min(58)));
        head.resize(64, 0);
        head.extend(data);
        let _ = elf::modinfo_section(&head);
    }
}

// ---------------------------------------------------------------- modinfo

fn modinfo_value() -> impl Strategy<Value = String> {
    "[!-~]([ -~]{0,30}[!-~])?"
}

proptest! {
    #![proptest_config(harness::config(300))]

    #[test]
    fn modinfo_from_bytes_round_trips_through_every_compression(
        version in modinfo_value(),
        srcversion in "[0-9A-F]{23}",
        release in "[0-9][0-9a-z.+_-]{0,20}",
        which in 0u8..4,
    ) {
        let vermagic = format!("{release} SMP preempt mod_unload modversions");
        let module = fake_module(&[
            ("version", &version),
            ("srcversion", &srcversion),
            ("name", "aacraid"),
            ("vermagic", &vermagic),
        ]);
        let info = ModInfo::from_bytes(compressed(which, &module)).expect("a module");
        prop_assert_eq!(info.version.as_deref(), Some(version.as_str()));
        prop_assert_eq!(info.srcversion.as_deref(), Some(srcversion.as_str()));
        prop_assert_eq!(info.name.as_deref(), Some("aacraid"));
        prop_assert_eq!(info.vermagic_release(), Some(release.as_str()));
    }

    #[test]
    fn modinfo_from_damaged_compressed_modules(
        pairs in modinfo_pairs(),
        which in 1u8..4,
        damage in flips(),
        cut in any::<Index>(),
    ) {
        let borrowed: Vec<(&str, &str)> =
            pairs.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        let mut data = compressed(which, &fake_module(&borrowed));
        apply_flips(&mut data, &damage);
        no_oom(ModInfo::from_bytes(data.clone()))?;
        data.truncate(cut.index(data.len() + 1));
        no_oom(ModInfo::from_bytes(data))?;
    }

    #[test]
    fn modinfo_from_random_bytes(data in prop_oneof![bytes(800), magic_prefixed()]) {
        no_oom(ModInfo::from_bytes(data))?;
    }
}

proptest! {
    #![proptest_config(harness::config(2000))]

    #[test]
    fn modinfo_n_answers(rc in any::<i32>(), stdout in ".{0,80}", stderr in ".{0,80}") {
        match modinfo::parse_modinfo_n(rc, &stdout, &stderr) {
            Ok(Resolution::File(path)) => prop_assert!(rc == 0 && path.is_absolute()),
            Ok(Resolution::Builtin) => prop_assert_eq!(rc, 0),
            Ok(Resolution::NotFound) => prop_assert!(rc != 0 && stderr.contains("not found")),
            Err(_) => {}
        }
    }

    #[test]
    fn modinfo_n_path_is_the_first_line(path in "/[ -~]{0,60}", rest in "[ -~\n]{0,40}") {
        let stdout = format!("{path}\n{rest}");
        let expected = std::path::PathBuf::from(path.trim());
        prop_assert_eq!(
            modinfo::parse_modinfo_n(0, &stdout, "").expect("a path"),
            Resolution::File(expected)
        );
    }

    #[test]
    fn module_names_and_file_names(name in ".{0,70}", ext in 0usize..5) {
        let valid = modinfo::validate_name(&name).is_ok();
        if valid {
            let file = format!("{name}{}", modinfo::EXTENSIONS.get(ext).copied().unwrap_or(".ko"));
            prop_assert_eq!(modinfo::module_name_of_file(&file), Some(modinfo::normalize(&name)));
            prop_assert!(!modinfo::normalize(&name).contains('-'));
        }
        let _ = modinfo::module_name_of_file(&name);
        let _ = modinfo::tree_of(std::path::Path::new(&name));
    }

    /// `kmod -V` output: a feature is lacking exactly when the list names
    /// it with `-`; junk around it changes nothing, and no text panics.
    #[test]
    fn kmod_version_features(
        features in vec(("[A-Z]{2,6}", any::<bool>()), 0..8),
        junk in "[ -~\n]{0,60}",
        asked in "[A-Z]{2,6}",
    ) {
        let listed: Vec<String> = features
            .iter()
            .map(|(f, on)| format!("{}{f}", if *on { '+' } else { '-' }))
            .collect();
        let text = format!("kmod version 30\n{}\n", listed.join(" "));
        let lacks = features.iter().any(|(f, on)| *f == asked && !on);
        prop_assert_eq!(modinfo::kmod_lacks(&text, &asked), lacks);
        let _ = modinfo::kmod_lacks(&junk, &asked);
        for ext in modinfo::EXTENSIONS {
            let _ = modinfo::compression_of(ext);
        }
    }
}

// ---------------------------------------------------------------- module signatures

/// A signed module written by the kernel's sign-file (see modsig's tests).
fn signed_fixture() -> Vec<u8> {
    std::fs::read(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/modsig/small-sha256.bin"
    ))
    .expect("fixture")
}

proptest! {
    #![proptest_config(harness::config(1500))]

    /// Any trailer: a signature, a failure naming the problem, never a panic.
    #[test]
    fn modsig_random_trailers(body in bytes(400), info in vec(any::<u8>(), 12), marker in any::<bool>()) {
        let mut data = body;
        data.extend(info);
        if marker {
            data.extend_from_slice(modsig::MARKER);
        }
        let _ = modsig::read(&data);
        if let Some(unsigned) = modsig::without_signature(&data) {
            prop_assert!(data.starts_with(unsigned));
        }
    }

    /// A certificate, PEM or DER, with bytes flipped or cut anywhere: its
    /// names or a failure, never a panic.
    #[test]
    fn certificate_names_of_damaged_certificates(damage in flips(), cut in any::<Index>(), pem in any::<bool>()) {
        let name = if pem { "fixture-cert.pem" } else { "fixture-cert.der" };
        let mut data = std::fs::read(format!("{}/tests/fixtures/modsig/{name}", env!("CARGO_MANIFEST_DIR")))
            .expect("fixture");
        apply_flips(&mut data, &damage);
        data.truncate(cut.index(data.len() + 1));
        let _ = modsig::certificate_names(&data);
    }

    /// A real signature with bytes flipped or cut anywhere.
    #[test]
    fn modsig_damaged_signatures(damage in flips(), cut in any::<Index>()) {
        let mut data = signed_fixture();
        let body = data.len() - modsig::MARKER.len();
        apply_flips(&mut data[..body], &damage);
        let _ = modsig::read(&data);
        let mut tail = data[cut.index(data.len() + 1)..].to_vec();
        tail.splice(0..0, [0u8; 3]);
        let _ = modsig::read(&tail);
    }
}

// ---------------------------------------------------------------- compression

proptest! {
    #![proptest_config(harness::config(300))]

    #[test]
    fn decompression_round_trips(data in bytes(4096), which in 1u8..6) {
        let packed = compressed(which, &data);
        prop_assert_eq!(compress::decode_all(packed).expect("round trip"), data);
    }

    #[test]
    fn decompression_of_damaged_streams(
        data in bytes(2048),
        which in 1u8..6,
        damage in flips(),
        cut in any::<Index>(),
    ) {
        let mut packed = compressed(which, &data);
        // Keep the magic so the decoder itself meets the damage.
        let keep = Compression::MAGIC_LEN.min(packed.len());
        let (head, tail) = packed.split_at_mut(keep);
        let _ = head;
        apply_flips(tail, &damage);
        no_oom_io(compress::decode_all(packed.clone()))?;
        packed.truncate(cut.index(packed.len() + 1));
        no_oom_io(compress::decode_all(packed))?;
    }

    #[test]
    fn decompression_of_random_streams(data in magic_prefixed()) {
        no_oom_io(compress::decode_all(data.clone()))?;
        let _ = Compression::sniff(&data);
    }
}

// ---------------------------------------------------------------- cpio

/// Archive paths as initramfs images hold them.
/// Archive paths as initramfs images hold them: no `.` or `..` component.
fn cpio_path() -> impl Strategy<Value = String> {
    "[a-z0-9_]{1,8}(/[a-z0-9_-][a-z0-9_.-]{0,9}){0,3}(\\.ko)?"
}

/// Files of an image; a path may appear twice (the last copy counts).
fn cpio_files() -> impl Strategy<Value = Vec<(String, Vec<u8>)>> {
    vec((cpio_path(), bytes(300)), 0..6)
}

/// Whether `names` could be a package's files: no name twice, none under
/// another (a file cannot be a folder).
fn a_tree<'a>(names: impl IntoIterator<Item = &'a String>) -> bool {
    let names: Vec<&String> = names.into_iter().collect();
    names.iter().enumerate().all(|(i, a)| {
        names[i + 1..]
            .iter()
            .all(|b| a != b && !b.starts_with(&format!("{a}/")) && !a.starts_with(&format!("{b}/")))
    })
}

/// Files of a package: [`cpio_files`] that form a tree.
fn package_files() -> impl Strategy<Value = Vec<(String, Vec<u8>)>> {
    cpio_files().prop_filter("a package names each path once", |f| {
        a_tree(f.iter().map(|(p, _)| p))
    })
}

fn build_cpio(files: &[(String, Vec<u8>)]) -> Vec<u8> {
    let borrowed: Vec<(&str, &[u8])> = files
        .iter()
        .map(|(p, d)| (p.as_str(), d.as_slice()))
        .collect();
    cpio(&borrowed)
}

/// Offsets of the `newc` headers in a built archive (4-aligned magics).
fn header_offsets(archive: &[u8]) -> Vec<usize> {
    (0..archive.len().saturating_sub(110))
        .step_by(4)
        .filter(|&at| archive[at..].starts_with(b"070701"))
        .collect()
}

fn scan_bytes(data: Vec<u8>, select_all: bool) -> anyhow::Result<cpio_walk::Scan> {
    cpio_walk::scan(Cursor::new(data), move |_| select_all)
}

proptest! {
    #![proptest_config(harness::config(500))]

    #[test]
    fn cpio_round_trips(files in cpio_files(), which in 0u8..4, early in any::<bool>()) {
        let archive = build_cpio(&files);
        let mut image = Vec::new();
        if early {
            // An uncompressed early archive padded with zeros, as dracut writes.
            image = cpio(&[("kernel/x86/microcode/GenuineIntel.bin", b"ucode")]);
            image.resize(512, 0);
        }
        image.extend(compressed(which, &archive));
        let scan = scan_bytes(image, true).expect("a well-formed image");
        let mut expected: Vec<(String, Vec<u8>)> = Vec::new();
        if early {
            expected.push(("kernel/x86/microcode/GenuineIntel.bin".into(), b"ucode".to_vec()));
        }
        expected.extend(files.iter().cloned());
        let got: Vec<(String, Vec<u8>)> =
            scan.files.iter().map(|m| (m.path.clone(), m.data.clone())).collect();
        prop_assert_eq!(got, expected);
        prop_assert!(scan.files.iter().all(|m| m.mode == 0o644));
        prop_assert_eq!(scan.segments.len(), 1 + usize::from(early));
        let last = scan.segments.last().expect("a segment");
        // The directory entry, then the files.
        prop_assert_eq!(last.entries, files.len() as u64 + 1);
    }

    /// What the kernel unpacks: every segment, whatever follows a
    /// compressed one, in order.
    #[test]
    fn cpio_reads_every_segment_in_order(parts in prop::collection::vec((cpio_files(), 0u8..4), 1..4)) {
        let mut image = Vec::new();
        let mut expected = Vec::new();
        for (files, which) in &parts {
            image.extend(compressed(*which, &build_cpio(files)));
            expected.extend(files.iter().cloned());
        }
        let scan = scan_bytes(image, true).expect("a well-formed image");
        let got: Vec<(String, Vec<u8>)> =
            scan.files.iter().map(|m| (m.path.clone(), m.data.clone())).collect();
        prop_assert_eq!(got, expected);
    }

    #[test]
    fn cpio_truncated_is_an_error(files in cpio_files(), which in 0u8..4, cut in any::<Index>()) {
        let image = compressed(which, &build_cpio(&files));
        let cut = cut.index(image.len());
        prop_assert!(scan_bytes(image[..cut].to_vec(), true).is_err());
    }

    #[test]
    fn cpio_forged_header_fields(
        files in cpio_files(),
        edits in vec((any::<Index>(), 0usize..13, prop_oneof![
            forged_u64().prop_map(|v| format!("{:08x}", v & 0xffff_ffff)),
            "[0-9a-fA-FxX +-]{8}",
        ]), 1..4),
        which in 0u8..4,
        select_all in any::<bool>(),
    ) {
        let mut archive = build_cpio(&files);
        let headers = header_offsets(&archive);
        for (entry, field, text) in edits {
            let at = headers[entry.index(headers.len())] + 6 + 8 * field;
            put(&mut archive, at, text.as_bytes());
        }
        no_oom(scan_bytes(compressed(which, &archive), select_all))?;
    }

    #[test]
    fn cpio_random_bytes(data in prop_oneof![bytes(600), magic_prefixed()], select_all in any::<bool>()) {
        no_oom(scan_bytes(data, select_all))?;
    }

    #[test]
    fn cpio_flipped_bytes(files in cpio_files(), damage in flips(), which in 0u8..4) {
        let mut archive = build_cpio(&files);
        apply_flips(&mut archive, &damage);
        no_oom(scan_bytes(compressed(which, &archive), true))?;
    }
}

// ---------------------------------------------------------------- rpm

const RPM_STRING: u32 = 6;
const RPM_INT32: u32 = 4;

/// An rpm header (`8e ad e8 01`) holding `tags` (tag, type, data), each
/// with a count of 1.
fn rpm_header(tags: &[(u32, u32, Vec<u8>)]) -> Vec<u8> {
    let mut index: Vec<u8> = Vec::new();
    let mut data: Vec<u8> = Vec::new();
    for (tag, kind, bytes) in tags {
        for v in [*tag, *kind, data.len() as u32, 1] {
            index.extend(v.to_be_bytes());
        }
        data.extend(bytes);
    }
    let mut out = vec![0x8e, 0xad, 0xe8, 0x01, 0, 0, 0, 0];
    out.extend((tags.len() as u32).to_be_bytes());
    out.extend((data.len() as u32).to_be_bytes());
    out.extend(index);
    out.extend(data);
    out
}

fn cstring(s: &str) -> Vec<u8> {
    let mut v = s.as_bytes().to_vec();
    v.push(0);
    v
}

/// A version-3 rpm: lead, signature header padded to 8, main header, payload.
/// Returns the bytes and the offset of the main header.
fn rpm_package(name: &str, version: &str, release: &str, payload: &[u8]) -> (Vec<u8>, usize) {
    let mut out = vec![0u8; 96];
    out[..4].copy_from_slice(&[0xed, 0xab, 0xee, 0xdb]);
    out.extend(rpm_header(&[(
        1000,
        RPM_INT32,
        1234u32.to_be_bytes().to_vec(),
    )]));
    while !out.len().is_multiple_of(8) {
        out.push(0);
    }
    let main = out.len();
    out.extend(rpm_header(&[
        (1000, RPM_STRING, cstring(name)),
        (1001, RPM_STRING, cstring(version)),
        (1002, RPM_STRING, cstring(release)),
        (1125, RPM_STRING, cstring("gzip")),
    ]));
    out.extend(payload);
    (out, main)
}

fn rpm_word() -> impl Strategy<Value = String> {
    "[A-Za-z0-9][A-Za-z0-9._+~-]{0,19}"
}

proptest! {
    #![proptest_config(harness::config(400))]

    #[test]
    fn rpm_round_trips(
        name in rpm_word(),
        version in rpm_word(),
        release in rpm_word(),
        files in package_files(),
        which in 1u8..4,
    ) {
        let payload = compressed(which, &build_cpio(&files));
        let (package, _) = rpm_package(&name, &version, &release, &payload);
        prop_assert_eq!(rpm::identify(&package), Some((name.clone(), version.clone())));
        let read = rpm::read(&package, |_| true).expect("a well-formed package");
        prop_assert_eq!(&read.name, &name);
        prop_assert_eq!(&read.version, &version);
        prop_assert_eq!(&read.release, &release);
        let got: Vec<(String, Vec<u8>)> =
            read.files.iter().map(|m| (m.path.clone(), m.data.clone())).collect();
        prop_assert_eq!(got, files);
    }

    #[test]
    fn rpm_forged_header_fields(
        files in cpio_files(),
        main in any::<bool>(),
        edits in vec((0usize..16, forged_u64()), 1..4),
        select_all in any::<bool>(),
    ) {
        let (mut package, main_at) = rpm_package("aacraid", "1.2.1", "1", &gzip(&build_cpio(&files)));
        // Count and size at 8 and 12, then (tag, type, offset, count) entries.
        let base = if main { main_at } else { 96 };
        for (word, value) in edits {
            let at = base + 8 + 4 * word;
            put(&mut package, at, &(value as u32).to_be_bytes());
        }
        let _ = rpm::identify(&package);
        no_oom(rpm::read(&package, |_| select_all))?;
    }

    #[test]
    fn rpm_truncated(files in cpio_files(), cut in any::<Index>()) {
        let (package, _) = rpm_package("aacraid", "1.2.1", "1", &gzip(&build_cpio(&files)));
        let cut = cut.index(package.len());
        // Every cut loses the payload's end or a header: never a package.
        prop_assert!(rpm::read(&package[..cut], |_| true).is_err());
        let _ = rpm::identify(&package[..cut]);
    }

    #[test]
    fn rpm_random_bytes(data in bytes(700), lead in any::<bool>()) {
        let mut package = if lead {
            let mut v = vec![0u8; 96];
            v[..4].copy_from_slice(&[0xed, 0xab, 0xee, 0xdb]);
            v.extend([0x8e, 0xad, 0xe8, 0x01]);
            v
        } else {
            Vec::new()
        };
        package.extend(data);
        let _ = rpm::identify(&package);
        no_oom(rpm::read(&package, |_| true))?;
    }

    #[test]
    fn rpm_flipped_bytes(files in cpio_files(), damage in flips()) {
        let (mut package, _) = rpm_package("aacraid", "1.2.1", "1", &gzip(&build_cpio(&files)));
        apply_flips(&mut package[4..], &damage);
        let _ = rpm::identify(&package);
        no_oom(rpm::read(&package, |_| true))?;
    }
}

// ---------------------------------------------------------------- tar.gz

/// One raw tar entry: a GNU header with the given name bytes, type, size
/// field and link name, followed by `data` (whatever the size says).
#[derive(Clone, Debug)]
struct RawEntry {
    name: Vec<u8>,
    kind: u8,
    size: u64,
    link: Vec<u8>,
    data: Vec<u8>,
    checksum: bool,
}

fn raw_entry() -> impl Strategy<Value = RawEntry> {
    let name = prop_oneof![
        "[a-z./]{1,20}".prop_map(String::into_bytes),
        Just(b"../x".to_vec()),
        Just(b"/etc/x".to_vec()),
        Just(b"./".to_vec()),
        vec(any::<u8>(), 0..100),
    ];
    let link = prop_oneof![
        Just(Vec::new()),
        "[a-z./]{1,20}".prop_map(String::into_bytes),
        vec(any::<u8>(), 0..100),
    ];
    let kind = prop_oneof![
        proptest::sample::select(b"0123456LKxgS\0".to_vec()),
        any::<u8>(),
    ];
    (name, kind, forged_u64(), link, bytes(1200), any::<bool>()).prop_map(
        |(name, kind, size, link, data, checksum)| RawEntry {
            name,
            kind,
            size,
            link,
            data,
            checksum,
        },
    )
}

fn raw_tar(entries: &[RawEntry], honest_sizes: bool) -> Vec<u8> {
    let mut out = Vec::new();
    for e in entries {
        let mut h = tar::Header::new_gnu();
        put(
            &mut h.as_old_mut().name,
            0,
            &e.name[..e.name.len().min(100)],
        );
        put(
            &mut h.as_old_mut().linkname,
            0,
            &e.link[..e.link.len().min(100)],
        );
        h.set_entry_type(tar::EntryType::new(e.kind));
        h.set_size(if honest_sizes {
            e.data.len() as u64
        } else {
            e.size
        });
        h.set_mode(0o644);
        if e.checksum {
            h.set_cksum();
        }
        out.extend_from_slice(h.as_bytes());
        out.extend(&e.data);
        while !out.len().is_multiple_of(512) {
            out.push(0);
        }
    }
    out.extend([0u8; 1024]);
    out
}

/// True when `target`, read from the folder of `path` (a symlink) or
/// from the root (a hard link), stays inside the archive's root.
fn stays_inside(path: &str, target: &str, symbolic: bool) -> bool {
    if target.starts_with('/') {
        return false;
    }
    let mut depth: i64 = if symbolic {
        path.split('/').count() as i64 - 1
    } else {
        0
    };
    for part in target.split('/') {
        match part {
            ".." => depth -= 1,
            "" | "." => {}
            _ => depth += 1,
        }
        if depth < 0 {
            return false;
        }
    }
    true
}

proptest! {
    #![proptest_config(harness::config(300))]

    #[test]
    fn tar_gz_round_trips(
        files in vec(("[a-z0-9_]{1,10}(/[a-z0-9_]{1,8}(\\.[a-z]{1,3})?){0,2}", 0u32..0o7777, bytes(2000)), 1..5)
            .prop_filter("an archive names each path once", |f| a_tree(f.iter().map(|(n, _, _)| n))),
    ) {
        let borrowed: Vec<(&str, u32, &[u8])> =
            files.iter().map(|(n, m, d)| (n.as_str(), *m, d.as_slice())).collect();
        let packed = archive::write_tar_gz(&borrowed).expect("write");
        prop_assert_eq!(&archive::write_tar_gz(&borrowed).expect("write"), &packed);
        let entries = archive::read_tar_gz(&packed, Links::Refuse).expect("read back");
        let got: Vec<(String, u32, Vec<u8>)> =
            entries.iter().map(|e| (e.path.clone(), e.mode, e.data.clone())).collect();
        let expected: Vec<(String, u32, Vec<u8>)> =
            files.iter().map(|(n, m, d)| (n.clone(), m & MODE_MASK, d.clone())).collect();
        prop_assert_eq!(got, expected);
        prop_assert!(entries.iter().all(|e| e.kind == Kind::File));
    }

    #[test]
    fn tar_gz_forged_entries_never_escape(
        entries in vec(raw_entry(), 1..4),
        honest_sizes in any::<bool>(),
        inside in any::<bool>(),
    ) {
        let links = if inside { Links::Inside } else { Links::Refuse };
        let packed = gzip(&raw_tar(&entries, honest_sizes));
        if let Ok(read) = archive::read_tar_gz(&packed, links) {
            for e in &read {
                prop_assert!(!e.path.starts_with('/'), "{:?}", e.path);
                prop_assert!(!e.path.split('/').any(|c| c == ".." || c.is_empty()), "{:?}", e.path);
                match &e.kind {
                    Kind::Symlink(t) => {
                        prop_assert!(inside);
                        prop_assert!(stays_inside(&e.path, t, true), "{:?} -> {:?}", e.path, t);
                    }
                    Kind::HardLink(t) => {
                        prop_assert!(inside);
                        prop_assert!(stays_inside(&e.path, t, false), "{:?} => {:?}", e.path, t);
                    }
                    Kind::File | Kind::Dir => {}
                }
            }
        }
    }

    #[test]
    fn tar_gz_damaged(
        files in vec(("[a-z]{1,10}", bytes(1500)), 1..4),
        damage in flips(),
        damage_tar in any::<bool>(),
        cut in any::<Index>(),
    ) {
        let borrowed: Vec<(&str, u32, &[u8])> =
            files.iter().map(|(n, d)| (n.as_str(), 0o644, d.as_slice())).collect();
        let packed = archive::write_tar_gz(&borrowed).expect("write");
        let mut damaged = if damage_tar {
            // Damage the tar stream itself, then compress it again.
            let mut tar_bytes = Vec::new();
            flate2::read::GzDecoder::new(packed.as_slice())
                .read_to_end(&mut tar_bytes)
                .expect("our own gzip");
            apply_flips(&mut tar_bytes, &damage);
            gzip(&tar_bytes)
        } else {
            let mut p = packed.clone();
            apply_flips(&mut p[2..], &damage);
            p
        };
        no_oom(archive::read_tar_gz(&damaged, Links::Inside))?;
        damaged.truncate(cut.index(damaged.len() + 1));
        no_oom(archive::read_tar_gz(&damaged, Links::Inside))?;
    }

    #[test]
    fn tar_gz_random_bytes(data in bytes(3000), wrap in any::<bool>()) {
        let input = if wrap { gzip(&data) } else {
            let mut v = vec![0x1f, 0x8b];
            v.extend(data);
            v
        };
        no_oom(archive::read_tar_gz(&input, Links::Inside))?;
    }
}

// ---------------------------------------------------------------- dkms

fn dkms_module() -> impl Strategy<Value = String> {
    "[a-z][a-z0-9_-]{0,11}"
}
fn dkms_version() -> impl Strategy<Value = String> {
    "[0-9][0-9a-z.~+_-]{0,11}"
}
fn dkms_kernel() -> impl Strategy<Value = String> {
    "[0-9][0-9a-z.+_-]{0,23}"
}

#[derive(Clone, Debug)]
struct StatusLine {
    module: String,
    version: String,
    build: Option<(String, String)>,
    state: String,
    weak_from: Option<String>,
    notes: Vec<String>,
    slash: bool,
}

fn status_line() -> impl Strategy<Value = StatusLine> {
    let state = proptest::sample::select(vec![
        "added",
        "built",
        "installed",
        "installed-weak",
        "broken",
    ]);
    let note = proptest::sample::select(vec![
        "original_module exists",
        "Original modules exist",
        "WARNING! Diff between built and installed module!",
        "Differences between built and installed modules",
        "something new",
    ]);
    (
        dkms_module(),
        dkms_version(),
        proptest::option::of((
            dkms_kernel(),
            proptest::sample::select(vec!["x86_64", "aarch64"]),
        )),
        state,
        dkms_kernel(),
        vec(note, 0..3),
        any::<bool>(),
    )
        .prop_map(|(module, version, build, state, from, notes, slash)| {
            let weak = state == "installed-weak" && build.is_some();
            StatusLine {
                module,
                version,
                build: build.map(|(k, a)| (k, a.to_string())),
                state: state.to_string(),
                weak_from: weak.then_some(from),
                notes: notes.into_iter().map(str::to_string).collect(),
                // installed-weak keeps the comma form in every release.
                slash: slash && !weak,
            }
        })
}

fn render(line: &StatusLine) -> String {
    let mut ids = if line.slash {
        format!("{}/{}", line.module, line.version)
    } else {
        format!("{}, {}", line.module, line.version)
    };
    if let Some((kernel, arch)) = &line.build {
        ids.push_str(&format!(", {kernel}, {arch}"));
    }
    let mut state = line.state.clone();
    if let Some(from) = &line.weak_from {
        state.push_str(&format!(" from {from}"));
    }
    for n in &line.notes {
        state.push_str(&format!(" ({n})"));
    }
    format!("{ids}: {state}")
}

#[derive(Clone, Debug)]
struct ConfLine {
    key: String,
    index: Option<usize>,
    value: String,
    quote: u8,
}

fn conf_lines() -> impl Strategy<Value = Vec<ConfLine>> {
    let key = proptest::sample::select(vec![
        "PACKAGE_NAME",
        "PACKAGE_VERSION",
        "BUILT_MODULE_NAME",
        "MAKE",
        "AUTOINSTALL",
    ]);
    vec(
        (
            key,
            proptest::option::of(0usize..20),
            "[A-Za-z0-9_.${}/ -]{0,20}",
            0u8..3,
        ),
        0..10,
    )
    .prop_map(|lines| {
        lines
            .into_iter()
            .map(|(key, index, value, quote)| ConfLine {
                key: key.to_string(),
                index,
                value: value.trim().to_string(),
                quote,
            })
            .collect()
    })
}

proptest! {
    #![proptest_config(harness::config(1500))]

    #[test]
    fn dkms_status_every_line_is_an_entry_or_kept(text in "[ -~\t\n]{0,400}|.{0,200}") {
        let status = dkms::parse_status(&text);
        let lines = text.lines().filter(|l| !l.trim().is_empty()).count();
        prop_assert_eq!(status.entries.len() + status.other_lines.len(), lines);
    }

    #[test]
    fn dkms_status_round_trips(lines in vec(status_line(), 0..6), junk in "[A-Z][a-z !.]{0,30}") {
        let mut text: String = lines.iter().map(|l| render(l) + "\n").collect();
        text.push_str(&junk);
        text.push('\n');
        let status = dkms::parse_status(&text);
        prop_assert_eq!(status.entries.len(), lines.len(), "{}", text);
        for (e, l) in status.entries.iter().zip(&lines) {
            prop_assert_eq!(&e.module, &l.module);
            prop_assert_eq!(&e.version, &l.version);
            prop_assert_eq!(e.kernel.as_ref(), l.build.as_ref().map(|b| &b.0));
            prop_assert_eq!(e.arch.as_deref(), l.build.as_ref().map(|b| b.1.as_str()));
            prop_assert_eq!(e.state.as_str(), l.state.as_str());
            prop_assert_eq!(&e.weak_from, &l.weak_from);
            prop_assert_eq!(&e.notes, &l.notes);
            prop_assert_eq!(
                e.original_module_exists,
                l.notes.iter().any(|n| n.starts_with("original") || n.starts_with("Original"))
            );
            prop_assert_eq!(
                e.built_differs_from_installed,
                l.notes.iter().any(|n| n.contains("between built and installed"))
            );
            prop_assert_eq!(e.format, if l.slash { dkms::Format::Slash } else { dkms::Format::Comma });
        }
        prop_assert_eq!(status.other_lines, vec![junk.trim().to_string()]);
    }

    #[test]
    fn dkms_conf_round_trips(lines in conf_lines()) {
        let mut text = String::from("# generated\n");
        for l in &lines {
            let key = match l.index {
                Some(i) => format!("{}[{i}]", l.key),
                None => l.key.clone(),
            };
            let value = match l.quote {
                0 => l.value.clone(),
                1 => format!("\"{}\"", l.value),
                _ => format!("'{}'", l.value),
            };
            text.push_str(&format!("{key}={value}\n"));
        }
        let conf = dkms::parse_conf(&text);
        let last = |key: &str| lines.iter().rev().find(|l| l.key == key).map(|l| l.value.clone());
        prop_assert_eq!(conf.package_name, last("PACKAGE_NAME"));
        prop_assert_eq!(conf.package_version, last("PACKAGE_VERSION"));
        let mut modules: Vec<(usize, String)> = lines
            .iter()
            .filter(|l| l.key == "BUILT_MODULE_NAME")
            .map(|l| (l.index.unwrap_or(0), l.value.clone()))
            .collect();
        modules.sort();
        prop_assert_eq!(conf.built_modules, modules.into_iter().map(|(_, m)| m).collect::<Vec<_>>());
    }

    #[test]
    fn dkms_conf_random_text(text in "[ -~\t\n]{0,400}|.{0,200}") {
        let conf = dkms::parse_conf(&text);
        prop_assert!(conf.built_modules.len() <= text.lines().count());
    }
}

// ---------------------------------------------------------------- arcconf

fn arcconf_version() -> impl Strategy<Value = (String, Option<String>, bool)> {
    (
        "[0-9][0-9.-]{0,10}",
        proptest::option::of("[0-9]{1,6}"),
        any::<bool>(),
    )
}

fn show_version(v: &(String, Option<String>, bool)) -> String {
    let mut s = String::new();
    if v.2 {
        s.push_str("Linux ");
    }
    s.push_str(&v.0);
    if let Some(b) = &v.1 {
        s.push_str(&format!(" ({b})"));
    }
    s
}

fn check_version(
    got: Option<&arcconf::Version>,
    want: &(String, Option<String>, bool),
) -> Result<(), TestCaseError> {
    let got = got.ok_or_else(|| TestCaseError::fail("version missing"))?;
    prop_assert_eq!(&got.version, &want.0);
    prop_assert_eq!(&got.build, &want.1);
    prop_assert_eq!(got.raw.clone(), show_version(want));
    Ok(())
}

proptest! {
    #![proptest_config(harness::config(1500))]

    #[test]
    fn arcconf_getversion_round_trips(
        controllers in vec((1u32..64, arcconf_version(), arcconf_version(), arcconf_version()), 0..4),
        pad in 1usize..30,
        noise in "[A-Za-z ]{0,20}",
    ) {
        let mut text = format!("Controllers found: {}\n{noise}\n", controllers.len());
        for (n, firmware, driver, bios) in &controllers {
            text.push_str(&format!("----\nController #{n}\n----\n"));
            for (key, v) in [("Firmware", firmware), ("Driver", driver), ("BIOS", bios)] {
                text.push_str(&format!("{key}{}: {}\n", " ".repeat(pad), show_version(v)));
            }
            // A later repeat of a key (per disk, say) is ignored.
            text.push_str("Firmware : 9.9-9 (999)\n");
        }
        let parsed = arcconf::parse_getversion(&text);
        prop_assert_eq!(parsed.len(), controllers.len());
        for (c, (n, firmware, driver, bios)) in parsed.iter().zip(&controllers) {
            prop_assert_eq!(c.number, *n);
            check_version(c.firmware.as_ref(), firmware)?;
            check_version(c.driver.as_ref(), driver)?;
            check_version(c.bios.as_ref(), bios)?;
            prop_assert!(c.staged_firmware.is_none());
        }
    }

    #[test]
    fn arcconf_getconfig_round_trips(
        number in any::<u32>(),
        model in "[A-Za-z0-9][A-Za-z0-9 -]{0,20}[A-Za-z0-9]",
        status in "[A-Z][a-z]{1,10}",
        driver in arcconf_version(),
    ) {
        let text = format!(
            "Controllers found: 1\n   Controller Status : {status}\n   Controller Model  : {model}\n   Driver : {}\n",
            show_version(&driver)
        );
        let c = arcconf::parse_getconfig_ad(number, &text);
        prop_assert_eq!(c.number, number);
        prop_assert_eq!(c.model.as_deref(), Some(model.as_str()));
        prop_assert_eq!(c.status.as_deref(), Some(status.as_str()));
        check_version(c.driver.as_ref(), &driver)?;
    }

    #[test]
    fn arcconf_random_text(text in "[ -~\t\n]{0,500}|.{0,200}", number in any::<u32>()) {
        let controllers = arcconf::parse_getversion(&text);
        prop_assert!(controllers.len() <= text.matches("Controller #").count());
        let _ = arcconf::parse_getconfig_ad(number, &text);
    }
}

// ---------------------------------------------------------------- manifest

fn manifest() -> impl Strategy<Value = Manifest> {
    let file = (
        ".{0,20}",
        ".{0,20}",
        any::<u64>(),
        "[0-9a-f]{64}",
        proptest::option::of(".{0,20}"),
        proptest::option::of(".{0,20}"),
        proptest::option::of(".{0,30}"),
        proptest::option::of((".{0,20}", "[0-9A-F:]{0,20}")),
    )
        .prop_map(
            |(file, module, size, sha256, version, srcversion, vermagic, signed)| manifest::File {
                file,
                module,
                size,
                sha256,
                version,
                srcversion,
                vermagic,
                signer: signed.as_ref().map(|(s, _)| s.clone()),
                key_id: signed.map(|(_, k)| k),
            },
        );
    (".{0,20}", ".{0,20}", ".{0,20}", ".{0,10}", vec(file, 0..4)).prop_map(
        |(name, version, kernel, arch, files)| Manifest {
            format: manifest::FORMAT,
            name,
            version,
            kernel,
            arch,
            files,
        },
    )
}

proptest! {
    #![proptest_config(harness::config(800))]

    #[test]
    fn manifest_round_trips(m in manifest()) {
        let bytes = m.to_bytes().expect("encode");
        prop_assert_eq!(Manifest::parse(&bytes).expect("decode"), m);
    }

    #[test]
    fn manifest_damaged(m in manifest(), damage in flips(), cut in any::<Index>()) {
        let mut bytes = m.to_bytes().expect("encode");
        apply_flips(&mut bytes, &damage);
        if let Ok(parsed) = Manifest::parse(&bytes) {
            prop_assert_eq!(parsed.format, manifest::FORMAT);
        }
        bytes.truncate(cut.index(bytes.len()));
        // A cut manifest is never a complete JSON object.
        prop_assert!(Manifest::parse(&bytes).is_err());
    }

    #[test]
    fn manifest_random_bytes(data in prop_oneof![
        bytes(400),
        "[\\[\\]{}\":,0-9a-z ]{0,300}".prop_map(String::into_bytes),
        (1usize..5000).prop_map(|depth| "[".repeat(depth).into_bytes()),
    ]) {
        let _ = Manifest::parse(&data);
    }
}

// ---------------------------------------------------------------- calendar

proptest! {
    #![proptest_config(harness::config(2000))]

    #[test]
    fn calendar_fields_are_in_range_and_days_follow(secs in prop_oneof![any::<u64>(), 0u64..5_000_000_000]) {
        let t = DateTime::from_unix(secs);
        prop_assert!((1..=12).contains(&t.month));
        prop_assert!((1..=31).contains(&t.day));
        prop_assert!(t.hour < 24 && t.minute < 60 && t.second < 60);
        let next = DateTime::from_unix(secs.saturating_add(86_400));
        if secs <= u64::MAX - 86_400 {
            let same_month = next.year == t.year && next.month == t.month && next.day == t.day + 1;
            let next_month = next.day == 1
                && ((next.year == t.year && next.month == t.month + 1)
                    || (next.year == t.year + 1 && t.month == 12 && next.month == 1));
            prop_assert!(same_month || next_month, "{} then {}", t, next);
            prop_assert_eq!((next.hour, next.minute, next.second), (t.hour, t.minute, t.second));
        }
    }
}

// ---------------------------------------------------------------- harness

limit_tests!();
