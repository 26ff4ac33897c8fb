//! What every `tests/fuzz.rs` of the library crates shares (the other
//! crates include this file with `#[path]`): how many cases a property runs,
//! and the address-space limit that turns an allocation sized by a header
//! into a test failure.
//!
//! - **Cases.** Each property names its own count, sized so that the whole
//!   bounded run of `make unit` stays around a minute on two cores.
//!   `FUZZ_SCALE=N` multiplies every count (`make fuzz` uses it for the long
//!   sweep); `PROPTEST_CASES` still overrides everything, as proptest
//!   documents.
//! - **Memory.** [`config`] (and so every property) first lowers the test
//!   process's own soft `RLIMIT_AS` to [`ADDRESS_SPACE_LIMIT`], with
//!   util-linux's `prlimit --pid` (the workspace forbids `unsafe`, so no
//!   `setrlimit` call and no counting allocator). An allocation beyond it
//!   fails, and Rust aborts the whole test binary with "memory allocation
//!   of N bytes failed": a parser that trusts a size field to size a buffer
//!   cannot pass (a fallible reservation, as in `Read::read_to_end`, fails
//!   with an `OutOfMemory` error instead, which the properties of `formats`
//!   count as a failure too). No input here is larger than a few tens of
//!   KiB, so no honest parse comes near the limit. An abort ends the
//!   binary before proptest can shrink or record the input: the backtrace
//!   names the property, and the input has to be rebuilt by hand.
//!   `address_space_limit_is_enforced` checks, in a child process, that the
//!   limit really stops a large allocation.
//! - **Regressions.** proptest stores each failing input's seed in
//!   `tests/fuzz.proptest-regressions` next to the test file and replays it
//!   first on every later run; the files are committed. Bugs found are also
//!   kept as plain `#[test]` cases with the minimal input.

#![allow(dead_code)]

use std::sync::Once;

use proptest::test_runner::{Config, FileFailurePersistence};

/// The soft address-space limit of a fuzz test process: the test harness,
/// its threads' stacks and malloc arenas, and the parsers' honest buffers
/// fit well inside it; a buffer sized by a forged 32-bit length does not.
pub const ADDRESS_SPACE_LIMIT: u64 = 1 << 30;

/// The environment variable that makes [`alloc_probe`] allocate.
pub const PROBE_VAR: &str = "FUZZ_ALLOC_PROBE";

static GUARD: Once = Once::new();

/// Lowers this process's soft address-space limit, once. Panics when it
/// cannot: a fuzz run without the limit would miss the bugs it is for.
pub fn guard() {
    GUARD.call_once(|| {
        let status = std::process::Command::new("prlimit")
            .arg(format!("--pid={}", std::process::id()))
            .arg(format!("--as={ADDRESS_SPACE_LIMIT}:"))
            .status()
            .unwrap_or_else(|e| panic!("cannot run prlimit (util-linux) to limit memory: {e}"));
        assert!(status.success(), "prlimit failed: {status}");
    });
}

/// A folder of its own for the test `name`, made once per process and kept
/// until it ends: properties that need files rewrite them in place rather
/// than make a temporary folder per case.
pub fn scratch(name: &str) -> std::path::PathBuf {
    static ROOT: std::sync::OnceLock<tempfile::TempDir> = std::sync::OnceLock::new();
    let root = ROOT.get_or_init(|| tempfile::tempdir().unwrap_or_else(|e| panic!("tempdir: {e}")));
    let dir = root.path().join(name);
    std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
    dir
}

/// The soft address-space limit now in force, from `/proc/self/limits`.
pub fn current_limit() -> Option<u64> {
    let limits = std::fs::read_to_string("/proc/self/limits").ok()?;
    let line = limits
        .lines()
        .find(|l| l.starts_with("Max address space"))?;
    line.split_whitespace().nth(3)?.parse().ok()
}

/// The proptest configuration of a property that runs `cases` cases in
/// the bounded run; applies [`guard`] first.
pub fn config(cases: u32) -> Config {
    guard();
    let scale = std::env::var("FUZZ_SCALE")
        .ok()
        .and_then(|s| s.parse::<u32>().ok())
        .unwrap_or(1);
    let defaults = Config::default();
    let cases = if std::env::var_os("PROPTEST_CASES").is_some() {
        defaults.cases
    } else {
        cases.saturating_mul(scale)
    };
    Config {
        cases,
        // Shrinking a failure should end in seconds, not minutes.
        max_shrink_iters: 4096,
        // `tests/fuzz.proptest-regressions`, beside the test file.
        failure_persistence: Some(Box::new(FileFailurePersistence::WithSource(
            "proptest-regressions",
        ))),
        ..defaults
    }
}

/// Body of the child side of `address_space_limit_is_enforced`: with
/// [`PROBE_VAR`] set, allocates and touches twice the limit (which must
/// abort the process); otherwise does nothing.
pub fn alloc_probe() {
    if std::env::var_os(PROBE_VAR).is_none() {
        return;
    }
    guard();
    let size = usize::try_from(2 * ADDRESS_SPACE_LIMIT).unwrap_or(usize::MAX);
    let buffer = std::hint::black_box(vec![1u8; size]);
    // Reached only if the allocation succeeded: say so and fail.
    panic!("allocated {} bytes despite the limit", buffer.len());
}

/// Parent side: runs `probe_test` (a test calling [`alloc_probe`]) of this
/// same binary in a child with [`PROBE_VAR`] set, and checks that the
/// allocation, not an assertion, ended it.
pub fn check_limit_enforced(probe_test: &str) {
    guard();
    assert_eq!(current_limit(), Some(ADDRESS_SPACE_LIMIT));
    let exe = std::env::current_exe().unwrap_or_else(|e| panic!("current_exe: {e}"));
    let out = std::process::Command::new(exe)
        .args(["--exact", probe_test, "--nocapture", "--test-threads=1"])
        .env(PROBE_VAR, "1")
        .output()
        .unwrap_or_else(|e| panic!("cannot run the probe: {e}"));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "the probe survived: {stderr}");
    assert!(
        stderr.contains("memory allocation of"),
        "the probe did not fail by allocation: {stderr}"
    );
}

/// The two tests each fuzz binary carries to prove its limit is in force:
/// a probe that allocates past the limit (in a child run), and the test
/// that starts the child and checks how it ended.
#[macro_export]
macro_rules! limit_tests {
    () => {
        #[test]
        fn address_space_limit_is_enforced() {
            harness::check_limit_enforced("address_space_limit_probe");
        }

        #[test]
        fn address_space_limit_probe() {
            harness::alloc_probe();
        }
    };
}
