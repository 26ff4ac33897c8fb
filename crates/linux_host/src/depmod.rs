//! depmod's configuration (`depmod.d`): the `search` order and the
//! `override` lines that decide which of several copies of a module a kernel
//! resolves. Used to say *why* another file wins after `depmod` ran; the
//! verdict itself always comes from `modinfo`, never from this model.

use std::path::{Path, PathBuf};

use crate::host::{Host, Kind};

/// Folders kmod reads, in precedence order: a file name found in an earlier
/// folder hides the same name in later ones.
pub const CONFIG_DIRS: &[&str] = &[
    "/etc/depmod.d",
    "/run/depmod.d",
    "/usr/local/lib/depmod.d",
    "/lib/depmod.d",
    "/usr/lib/depmod.d",
];

/// The `search` keyword that stands for the kernel's own tree and for every
/// folder not listed.
pub const BUILT_IN: &str = "built-in";

/// One directive that matters for resolution, with where it was read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Directive {
    /// The configuration file.
    pub file: PathBuf,
    /// The line as written.
    pub line: String,
    /// What it says.
    pub rule: Rule,
}

/// A parsed directive.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Rule {
    /// `search <dir>...`: earlier folders win.
    Search(Vec<String>),
    /// `override <module> <kver|*> <dir>`: that module for that kernel is
    /// taken from that folder only.
    Override {
        /// Module name.
        module: String,
        /// Kernel release or `*`.
        kernel: String,
        /// Folder under `/lib/modules/<kver>`.
        dir: String,
    },
}

/// Every `search` and `override` directive in read order.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Config {
    /// The directives.
    pub directives: Vec<Directive>,
}

/// Parses one configuration file's text.
pub fn parse(file: &Path, text: &str) -> Vec<Directive> {
    text.lines()
        .filter_map(|raw| {
            let line = raw.split('#').next().unwrap_or("").trim();
            let words: Vec<&str> = line.split_whitespace().collect();
            let rule = match words.as_slice() {
                ["search", dirs @ ..] if !dirs.is_empty() => Rule::Search(
                    dirs.iter()
                        .map(|d| d.trim_matches('/').to_string())
                        .collect(),
                ),
                ["override", module, kernel, dir] => Rule::Override {
                    module: formats::modinfo::normalize(module),
                    kernel: kernel.to_string(),
                    dir: dir.trim_matches('/').to_string(),
                },
                _ => return None,
            };
            Some(Directive {
                file: file.to_path_buf(),
                line: line.to_string(),
                rule,
            })
        })
        .collect()
}

impl Config {
    /// Reads every `*.conf` of [`CONFIG_DIRS`] the way kmod does: file
    /// names sorted, an earlier folder's file hiding a later one's.
    pub fn read(host: &Host) -> Config {
        let mut files: Vec<(String, PathBuf)> = Vec::new();
        for dir in CONFIG_DIRS {
            let Ok(entries) = host.read_dir(Path::new(dir)) else {
                continue;
            };
            for e in entries {
                if e.name.ends_with(".conf")
                    && e.kind != Kind::Dir
                    && !files.iter().any(|(name, _)| *name == e.name)
                {
                    files.push((e.name, e.path));
                }
            }
        }
        files.sort();
        let directives = files
            .iter()
            .filter_map(|(_, path)| host.read_text(path).ok().map(|t| parse(path, &t)))
            .flatten()
            .collect();
        Config { directives }
    }

    /// The effective search list: all `search` lines in order, or kmod's
    /// default `updates built-in` when there are none.
    pub fn search_order(&self) -> Vec<String> {
        let listed: Vec<String> = self
            .directives
            .iter()
            .filter_map(|d| match &d.rule {
                Rule::Search(dirs) => Some(dirs.clone()),
                Rule::Override { .. } => None,
            })
            .flatten()
            .collect();
        if listed.is_empty() {
            vec!["updates".into(), BUILT_IN.into()]
        } else {
            listed
        }
    }

    /// Rank of a module path relative to `/lib/modules/<kver>` in the
    /// search list (lower wins): the first listed folder that contains it,
    /// else the place of `built-in`, else after everything.
    pub fn rank(&self, relative: &Path) -> usize {
        let order = self.search_order();
        order
            .iter()
            .position(|d| d != BUILT_IN && relative.starts_with(d))
            .or_else(|| order.iter().position(|d| d == BUILT_IN))
            .unwrap_or(order.len())
    }

    /// `override` lines naming `module` for `kver` (or every kernel).
    pub fn overrides(&self, module: &str, kver: &str) -> Vec<&Directive> {
        let module = formats::modinfo::normalize(module);
        self.directives
            .iter()
            .filter(|d| {
                matches!(&d.rule, Rule::Override { module: m, kernel, .. }
                    if *m == module && (kernel == "*" || kernel == kver))
            })
            .collect()
    }

    /// Why the kernel resolves `module` to `winner` rather than `wanted`
    /// (both relative to `/lib/modules/<kver>`), in words an admin can act
    /// on.
    pub fn explain(&self, module: &str, kver: &str, wanted: &Path, winner: &Path) -> String {
        let overrides = self.overrides(module, kver);
        if let Some(o) = overrides.last() {
            return format!(
                "{}: `{}` pins {module} for this kernel to that folder",
                o.file.display(),
                o.line
            );
        }
        let (ours, theirs) = (self.rank(wanted), self.rank(winner));
        let searches: Vec<String> = self
            .directives
            .iter()
            .filter(|d| matches!(d.rule, Rule::Search(_)))
            .map(|d| format!("{}: `{}`", d.file.display(), d.line))
            .collect();
        let order = if searches.is_empty() {
            "kmod's default search order `updates built-in`".to_string()
        } else {
            format!("the search order ({})", searches.join("; "))
        };
        let folder = |p: &'_ Path| p.parent().unwrap_or(p).display().to_string();
        match theirs.cmp(&ours) {
            std::cmp::Ordering::Less => format!(
                "{order} ranks {} before {}",
                folder(winner),
                folder(wanted)
            ),
            std::cmp::Ordering::Equal if wanted.parent() == winner.parent() => {
                "both files are in the same folder, and depmod takes whichever it reads first".into()
            }
            std::cmp::Ordering::Equal => format!(
                "{order} gives both folders the same rank, and depmod keeps the first it reads"
            ),
            std::cmp::Ordering::Greater => format!(
                "no depmod.d rule explains it ({order} ranks {} first): check that depmod indexed {}",
                folder(wanted),
                wanted.display()
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(files: &[(&str, &str)]) -> Config {
        Config {
            directives: files
                .iter()
                .flat_map(|(f, t)| parse(Path::new(f), t))
                .collect(),
        }
    }

    #[test]
    fn parses_search_and_override_ignoring_the_rest() {
        let c = config(&[(
            "/etc/depmod.d/dist.conf",
            "# comment\nsearch updates extra built-in weak-updates\noverride aac-raid * kernel/drivers/scsi/aacraid/ # why\ninclude x\nexternal 6.1 /opt\n",
        )]);
        assert_eq!(c.directives.len(), 2);
        assert_eq!(
            c.directives[1].rule,
            Rule::Override {
                module: "aac_raid".into(),
                kernel: "*".into(),
                dir: "kernel/drivers/scsi/aacraid".into()
            }
        );
        assert_eq!(
            c.search_order(),
            ["updates", "extra", "built-in", "weak-updates"]
        );
    }

    #[test]
    fn ranks_like_kmod() {
        let rhel = config(&[("a.conf", "search updates extra built-in weak-updates")]);
        let rank = |c: &Config, p: &str| c.rank(Path::new(p));
        assert!(rank(&rhel, "updates/dkms/aacraid.ko") < rank(&rhel, "extra/aacraid.ko"));
        assert!(rank(&rhel, "extra/aacraid.ko") < rank(&rhel, "kernel/drivers/aacraid.ko"));
        assert!(rank(&rhel, "kernel/x.ko") < rank(&rhel, "weak-updates/x.ko"));
        assert_eq!(
            rank(&rhel, "misc/x.ko"),
            rank(&rhel, "kernel/x.ko"),
            "unlisted = built-in"
        );
        let default = Config::default();
        assert!(rank(&default, "updates/x.ko") < rank(&default, "kernel/x.ko"));
        assert_eq!(rank(&default, "extra/x.ko"), rank(&default, "kernel/x.ko"));
        assert!(
            rank(&default, "updatesx/x.ko") > rank(&default, "updates/x.ko"),
            "whole folder names"
        );
    }

    #[test]
    fn explains_override_search_and_ties() {
        let k = "6.1.0-56-amd64";
        let ours = Path::new("updates/aacraid.ko");
        let intree = Path::new("kernel/drivers/scsi/aacraid/aacraid.ko");
        let pinned = config(&[(
            "/etc/depmod.d/pin.conf",
            "override aacraid 6.1.0-56-amd64 kernel/drivers/scsi/aacraid",
        )]);
        assert_eq!(
            pinned.explain("aacraid", k, ours, intree),
            "/etc/depmod.d/pin.conf: `override aacraid 6.1.0-56-amd64 kernel/drivers/scsi/aacraid` pins aacraid for this kernel to that folder"
        );
        assert!(pinned.overrides("aacraid", "6.1.0-55-amd64").is_empty());
        let inverted = config(&[("/etc/depmod.d/order.conf", "search built-in updates")]);
        assert_eq!(
            inverted.explain("aacraid", k, ours, intree),
            "the search order (/etc/depmod.d/order.conf: `search built-in updates`) ranks kernel/drivers/scsi/aacraid before updates"
        );
        assert_eq!(
            Config::default().explain("aacraid", k, ours, intree),
            "no depmod.d rule explains it (kmod's default search order `updates built-in` ranks updates first): \
             check that depmod indexed updates/aacraid.ko"
        );
        assert_eq!(
            Config::default().explain("aacraid", k, ours, Path::new("updates/aacraid.ko.xz")),
            "both files are in the same folder, and depmod takes whichever it reads first"
        );
    }
}
