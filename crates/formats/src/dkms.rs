//! `dkms status` output, in every format DKMS has printed.
//!
//! - before 2.8.6: `name, version, kernel, arch: state` (added only:
//!   `name, version: added`);
//! - from 2.8.6: `name/version, kernel, arch: state` (added only:
//!   `name/version: added`);
//! - `installed-weak` keeps the comma form in every release:
//!   `name, version, kernel, arch: installed-weak from <kver>`;
//! - suffixes in parentheses: `(original_module exists)` became
//!   `(Original modules exist)` in 3.1.3, and
//!   `(WARNING! Diff between built and installed module!)` became
//!   `(Differences between built and installed modules)`.
//!
//! Lines that fit none of these (warnings DKMS prints on stdout) are kept
//! aside rather than dropped, so the caller can report them.

use std::path::PathBuf;

use serde::Serialize;

/// The architecture DKMS files builds under: the one this binary runs on.
pub const ARCH: &str = std::env::consts::ARCH;

/// The DKMS tree: `<name>/<version>/<kernel>/<arch>` per build.
pub const TREE: &str = "/var/lib/dkms";

/// DKMS's own configuration.
pub const FRAMEWORK_CONF: &str = "/etc/dkms/framework.conf";
/// The folder of additions to [`FRAMEWORK_CONF`].
pub const FRAMEWORK_CONF_DIR: &str = "/etc/dkms/framework.conf.d";

/// Whether a `framework.conf` text moves one of DKMS's trees (an assignment
/// to `dkms_tree`, `source_tree` or `install_tree` that is not commented
/// out): then DKMS does not read the places this crate names.
pub fn moves_trees(text: &str) -> bool {
    text.lines().any(|line| {
        let line = line.trim_start().trim_start_matches("export ").trim_start();
        ["dkms_tree", "source_tree", "install_tree"]
            .iter()
            .any(|var| {
                line.strip_prefix(var)
                    .is_some_and(|rest| rest.trim_start().starts_with('='))
            })
    })
}

/// `/usr/src/<name>-<version>`: where DKMS expects a package's source tree.
pub fn source_dir(name: &str, version: &str) -> PathBuf {
    PathBuf::from(format!("/usr/src/{name}-{version}"))
}

/// `/var/lib/dkms/<name>/<version>/<kernel>/<arch>/module`: the module files
/// of one build.
pub fn built_modules_dir(name: &str, version: &str, kernel: &str) -> PathBuf {
    PathBuf::from(format!(
        "/var/lib/dkms/{name}/{version}/{kernel}/{ARCH}/module"
    ))
}

/// Where DKMS leaves the build log of one kernel's build, most specific
/// first: the kernel's own log, then the shared build folder's.
pub fn make_logs(name: &str, version: &str, kernel: &str) -> [PathBuf; 2] {
    [
        PathBuf::from(format!(
            "/var/lib/dkms/{name}/{version}/{kernel}/{ARCH}/log/make.log"
        )),
        PathBuf::from(format!("/var/lib/dkms/{name}/{version}/build/make.log")),
    ]
}

/// The line layout an entry was printed in.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub enum Format {
    /// `name, version, ...` (dkms before 2.8.6, and `installed-weak` lines).
    #[serde(rename = "comma")]
    Comma,
    /// `name/version, ...` (dkms 2.8.6 and later).
    #[serde(rename = "slash")]
    Slash,
}

/// Where a module version stands for one kernel, in DKMS's words. `Absent`
/// is never printed: it is the state of a version `dkms status` does not
/// list at all.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum State {
    /// Not in the DKMS tree.
    Absent,
    /// In the tree (`dkms add`), not built.
    Added,
    /// Built for the kernel, not installed into its module tree.
    Built,
    /// Built and installed.
    Installed,
    /// Installed as a link to another kernel's build (`installed-weak`).
    InstalledWeak,
    /// Whatever else a DKMS release prints (`broken`, …).
    Other(String),
}

impl State {
    fn from_word(word: &str) -> State {
        match word {
            "added" => State::Added,
            "built" => State::Built,
            "installed" => State::Installed,
            "installed-weak" => State::InstalledWeak,
            other => State::Other(other.to_string()),
        }
    }

    /// The word DKMS prints for the state (`absent` for [`State::Absent`]).
    pub fn as_str(&self) -> &str {
        match self {
            State::Absent => "absent",
            State::Added => "added",
            State::Built => "built",
            State::Installed => "installed",
            State::InstalledWeak => "installed-weak",
            State::Other(word) => word,
        }
    }
}

impl Serialize for State {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

/// One module/version(/kernel/arch) line of `dkms status`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Entry {
    /// Module name.
    pub module: String,
    /// Module version.
    pub version: String,
    /// Kernel release; `None` for a version only added to the tree.
    pub kernel: Option<String>,
    /// Architecture; `None` for a version only added.
    pub arch: Option<String>,
    /// The state DKMS printed.
    pub state: State,
    /// For `installed-weak`: the kernel whose build is reused.
    pub weak_from: Option<String>,
    /// The `(original_module exists)` / `(Original modules exist)` suffix.
    pub original_module_exists: bool,
    /// The "diff between built and installed" warning suffix.
    pub built_differs_from_installed: bool,
    /// Parenthesised suffixes as printed, including unknown ones.
    pub notes: Vec<String>,
    /// Line layout.
    pub format: Format,
}

/// Entries and the lines that were not entries.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Status {
    /// Parsed entries in output order.
    pub entries: Vec<Entry>,
    /// Non-empty lines that are not status entries.
    pub other_lines: Vec<String>,
}

/// Parses the whole output of `dkms status`.
pub fn parse_status(text: &str) -> Status {
    let mut status = Status::default();
    for line in text.lines().map(str::trim).filter(|l| !l.is_empty()) {
        match parse_line(line) {
            Some(entry) => status.entries.push(entry),
            None => status.other_lines.push(line.to_string()),
        }
    }
    status
}

fn parse_line(line: &str) -> Option<Entry> {
    // The state follows the last ": " (kernel releases never hold one).
    let (ids, state_part) = line.rsplit_once(": ")?;
    let fields: Vec<&str> = ids.split(',').map(str::trim).collect();
    let (module, version, rest, format) = match fields[0].split_once('/') {
        Some((m, v)) => (m, v, &fields[1..], Format::Slash),
        None if fields.len() >= 2 => (fields[0], fields[1], &fields[2..], Format::Comma),
        None => return None,
    };
    let (kernel, arch) = match rest {
        [] => (None, None),
        [k, a] => (Some(k.to_string()), Some(a.to_string())),
        _ => return None,
    };
    if module.is_empty() || version.is_empty() || module.contains(' ') || version.contains(' ') {
        return None;
    }

    let (head, notes) = split_notes(state_part);
    let mut words = head.split_whitespace();
    let word = words.next()?;
    if !word
        .chars()
        .all(|c| c.is_ascii_lowercase() || c == '-' || c == '_')
    {
        return None;
    }
    let state = State::from_word(word);
    let weak_from = match (word, words.next(), words.next()) {
        ("installed-weak", Some("from"), Some(k)) => Some(k.to_string()),
        _ => None,
    };
    let has = |needles: &[&str]| {
        notes
            .iter()
            .any(|n| needles.iter().any(|needle| n.eq_ignore_ascii_case(needle)))
    };
    Some(Entry {
        module: module.to_string(),
        version: version.to_string(),
        kernel,
        arch,
        original_module_exists: has(&["original_module exists", "Original modules exist"]),
        built_differs_from_installed: has(&[
            "WARNING! Diff between built and installed module!",
            "Differences between built and installed modules",
        ]),
        state,
        weak_from,
        notes,
        format,
    })
}

/// Splits `installed (a) (b)` into `installed` and `["a", "b"]`.
fn split_notes(text: &str) -> (&str, Vec<String>) {
    let head_end = text.find('(').unwrap_or(text.len());
    let mut notes = Vec::new();
    let mut rest = &text[head_end..];
    while let Some(open) = rest.find('(') {
        match rest[open..].find(')') {
            Some(close) => {
                notes.push(rest[open + 1..open + close].trim().to_string());
                rest = &rest[open + close + 1..];
            }
            None => break,
        }
    }
    (text[..head_end].trim(), notes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_framework_conf_that_moves_a_tree_is_told_from_one_that_does_not() {
        assert!(!moves_trees(""));
        assert!(!moves_trees(
            "# dkms_tree=\"/srv/dkms\"\n#install_tree=/x\nsign_tool=/x\n"
        ));
        assert!(!moves_trees("dkms_tree_extra=1\n"));
        assert!(moves_trees("dkms_tree=\"/srv/dkms\"\n"));
        assert!(moves_trees("  source_tree = /srv/src\n"));
        assert!(moves_trees("export install_tree=/srv/modules\n"));
    }

    #[test]
    fn seed_line_from_centos7() {
        let status = parse_status(
            "aacraid, 1.2.1.41024, 3.10.0-229.11.1.el7.x86_64, x86_64: installed (original_module exists)\n",
        );
        let e = &status.entries[0];
        assert_eq!(e.module, "aacraid");
        assert_eq!(e.version, "1.2.1.41024");
        assert_eq!(e.kernel.as_deref(), Some("3.10.0-229.11.1.el7.x86_64"));
        assert_eq!(e.arch.as_deref(), Some("x86_64"));
        assert_eq!(e.state, State::Installed);
        assert!(e.original_module_exists);
        assert_eq!(e.format, Format::Comma);
    }

    #[test]
    fn junk_is_kept_aside() {
        let status =
            parse_status("Error! Could not locate dkms.conf file.\nFile:  does not exist.\n");
        assert!(status.entries.is_empty());
        assert_eq!(status.other_lines.len(), 2);
    }
}

/// The settings of a `dkms.conf` that say what a source tree builds.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Conf {
    /// `PACKAGE_NAME`.
    pub package_name: Option<String>,
    /// `PACKAGE_VERSION`.
    pub package_version: Option<String>,
    /// `BUILT_MODULE_NAME[i]`, in index order.
    pub built_modules: Vec<String>,
}

/// Reads the plain `KEY=value` and `KEY[i]=value` assignments of a
/// `dkms.conf` (a shell fragment; anything more dynamic is ignored).
pub fn parse_conf(text: &str) -> Conf {
    let mut conf = Conf::default();
    let mut modules: Vec<(usize, String)> = Vec::new();
    for line in text.lines().map(str::trim) {
        if line.starts_with('#') {
            continue;
        }
        let Some((key, value)) = line.split_once('=') else {
            continue;
        };
        let value = value.trim();
        let value = value
            .strip_prefix('"')
            .and_then(|v| v.strip_suffix('"'))
            .or_else(|| value.strip_prefix('\'').and_then(|v| v.strip_suffix('\'')))
            .unwrap_or(value)
            .to_string();
        let (base, index) = match key.trim().split_once('[') {
            Some((base, rest)) => (base, rest.trim_end_matches(']').parse().ok()),
            None => (key.trim(), None),
        };
        match base {
            "PACKAGE_NAME" => conf.package_name = Some(value),
            "PACKAGE_VERSION" => conf.package_version = Some(value),
            "BUILT_MODULE_NAME" => modules.push((index.unwrap_or(0), value)),
            _ => {}
        }
    }
    modules.sort();
    conf.built_modules = modules.into_iter().map(|(_, m)| m).collect();
    conf
}

#[cfg(test)]
mod conf_tests {
    use super::*;

    #[test]
    fn reads_assignments() {
        let conf = parse_conf(
            "# vendor file\nPACKAGE_NAME=\"aacraid\"\nPACKAGE_VERSION=1.2.1.41024\n\
             BUILT_MODULE_NAME[1]='second'\nBUILT_MODULE_NAME[0]=\"aacraid\"\n\
             MAKE[0]=\"make -C ${kernel_source_dir} M=$PWD\"\nAUTOINSTALL=yes\n",
        );
        assert_eq!(conf.package_name.as_deref(), Some("aacraid"));
        assert_eq!(conf.package_version.as_deref(), Some("1.2.1.41024"));
        assert_eq!(conf.built_modules, ["aacraid", "second"]);
    }
}
