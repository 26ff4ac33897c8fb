//! Facts from other tools: `dkms status` (kept in the facts cache, with
//! what it reads) and `arcconf`. A tool that is missing or fails gives
//! `null` facts and a warning.

use std::path::{Path, PathBuf};

use formats::modinfo::{module_name_of_file, normalize};
use formats::{arcconf, dkms};
use linux_host::host::Kind;
use linux_host::{kernel, Cmd, Host, ProgramNotFound};

use crate::answers_cache;
use crate::copies_cache::Found;
use crate::gather::Notes;
use crate::image_cache::Cache;
use crate::per_kernel::copies;
use crate::stamp::Stamp;

/// The DKMS entries of module `name`: `dkms status`'s answer, from the
/// cache while nothing it reads changed.
pub fn dkms_entries(
    host: &Host,
    name: &str,
    cache: Option<&Cache>,
    notes: &mut Notes,
) -> Option<Vec<dkms::Entry>> {
    let cmd = Cmd::new("dkms").arg("status").arg("-m").arg(name);
    let reads = |stamp: &mut Stamp| dkms_reads(host, name, cache, stamp);
    match answers_cache::run(cache, host, &cmd, reads, None) {
        Ok(out) => {
            let status = dkms::parse_status(&out.stdout);
            if !out.success() {
                notes.warn(format!("`{cmd}` exited {}: {}", out.rc, out.stderr.trim()));
            }
            Some(
                status
                    .entries
                    .into_iter()
                    .filter(|e| normalize(&e.module) == normalize(name))
                    .collect(),
            )
        }
        Err(e) => {
            notes.warn(missing_or_error("dkms", &e));
            None
        }
    }
}

/// A DKMS module folder holds a few entries per version and kernel; one
/// this large is not walked for a stamp (its answer is not kept).
const DKMS_ENTRIES_MAX: usize = 4096;

/// Files `dkms status` reads that pick the install location or turn its
/// weak-updates scan on.
const DKMS_ALSO_READS: &[&str] = &[
    "/etc/os-release",
    "/usr/lib/os-release",
    "/etc/lsb-release",
    "/etc/sysconfig/module-init-tools",
];
/// With either present, dkms before 3.1.5 scans every kernel's weak-updates.
const WEAK_MODULES: &[&str] = &[
    "/sbin/weak-modules",
    "/usr/lib/module-init-tools/weak-modules",
];

/// What `dkms status -m <name>` reads (dkms 2.8 to 3.x): its configuration
/// and overrides in `/etc/dkms`, the distribution's release files, the
/// running kernel's release, the module's folder of the DKMS tree (every
/// entry but the build folders' contents) and each version's `dkms.conf`,
/// and, in every kernel it built for and every installed kernel, the module
/// tree: each copy of each module it built (it compares its builds with
/// them, and looks for weak-updates links) and every folder (it looks for
/// compressed modules, and reads `modules.dep`, to pick the suffix). When
/// the configuration moves a tree, or a tree's folders changed too recently
/// to be told apart, the stamp is given up.
fn dkms_reads(host: &Host, name: &str, cache: Option<&Cache>, stamp: &mut Stamp) {
    if let Ok(release) = kernel::running(host) {
        stamp.value("running", &release);
    }
    let mut confs = vec![PathBuf::from(dkms::FRAMEWORK_CONF)];
    confs.extend(
        host.read_dir(Path::new(dkms::FRAMEWORK_CONF_DIR))
            .unwrap_or_default()
            .into_iter()
            .map(|e| e.path),
    );
    if confs.iter().any(|conf| {
        host.read_text(conf)
            .is_ok_and(|text| dkms::moves_trees(&text))
    }) {
        stamp.give_up();
        return;
    }
    // `/etc/dkms` holds framework.conf and the per-module overrides
    // (`<name>.conf`, `<name>--<kernel>.conf`, ...).
    stamp.listing(host, Path::new("/etc/dkms"));
    stamp.listing(host, Path::new(dkms::FRAMEWORK_CONF_DIR));
    for read in DKMS_ALSO_READS {
        stamp.followed(host, Path::new(read));
    }
    stamp.followed(host, Path::new(dkms::TREE));
    if WEAK_MODULES.iter().any(|tool| host.exists(Path::new(tool))) {
        // The weak-updates scan follows every module's `kernel-*` links.
        for module in host.read_dir(Path::new(dkms::TREE)).unwrap_or_default() {
            stamp.listing(host, &module.path);
        }
    }
    let folder = Path::new(dkms::TREE).join(name);
    let mut kernels: Vec<String> = kernel::installed(host).unwrap_or_default();
    let mut modules: Vec<String> = vec![normalize(name)];
    let mut todo = vec![folder.clone()];
    let mut seen = 0;
    stamp.entry(host, &folder);
    stamp.value("installed", &kernels.join(" "));
    while let Some(dir) = todo.pop() {
        let Ok(entries) = host.read_dir(&dir) else {
            continue;
        };
        for entry in entries {
            seen += 1;
            if seen > DKMS_ENTRIES_MAX {
                stamp.give_up();
                return;
            }
            stamp.entry(host, &entry.path);
            // <version>/<kernel>/<arch>/module/<file>
            let relative: Vec<_> = entry
                .path
                .strip_prefix(&folder)
                .map(|r| r.iter().collect())
                .unwrap_or_default();
            match (entry.kind, relative.as_slice()) {
                (Kind::Symlink, [_, source]) if *source == "source" => {
                    stamp.followed(host, &entry.path.join("dkms.conf"));
                }
                (Kind::Dir, [_, build]) if *build == "build" => {}
                (Kind::Dir, [_, kernel]) => {
                    kernels.push(kernel.to_string_lossy().into_owned());
                    todo.push(entry.path);
                }
                (Kind::File, [_, _, _, module, file]) if *module == "module" => {
                    modules.extend(module_name_of_file(&file.to_string_lossy()));
                }
                (Kind::Dir, _) => todo.push(entry.path),
                _ => {}
            }
        }
    }
    kernels.sort();
    kernels.dedup();
    modules.sort();
    modules.dedup();
    for release in &kernels {
        // Read for the compression suffix (dkms before 3.1.3), possibly
        // rewritten in place.
        stamp.followed(host, &kernel::modules_dir(release).join("modules.dep"));
        for module in &modules {
            match copies(host, release, module, cache) {
                Ok(Found {
                    paths,
                    tree: Some(tree),
                    ..
                }) => {
                    stamp.value("tree", &tree);
                    for copy in paths {
                        stamp.file(host, &copy);
                    }
                }
                Ok(_) => stamp.give_up(),
                Err(_) => stamp.followed(host, &kernel::modules_dir(release)),
            }
        }
    }
}

const ARCCONF_PLACES: &[&str] = &[
    "/usr/Arcconf/arcconf",
    "/usr/StorMan/arcconf",
    "/opt/Arcconf/arcconf",
];

/// The controllers `arcconf getversion` lists.
pub fn arcconf_controllers(
    host: &Host,
    path: Option<&str>,
    notes: &mut Notes,
) -> Option<Vec<arcconf::Controller>> {
    let program = match path {
        Some(p) => p.to_string(),
        None => match find_arcconf(host) {
            Ok((program, refused)) => {
                if !refused.is_empty() {
                    notes.warn(format!(
                        "arcconf: {program} is run, not {} (a tool that runs as root must be writable by root only)",
                        refused.join("; ")
                    ));
                }
                program
            }
            Err(missing) => {
                notes.warn(missing_or_error("arcconf", &missing.into()));
                return None;
            }
        },
    };
    let cmd = Cmd::new(program).arg("getversion");
    match host.run_ok(&cmd) {
        Ok(out) => Some(arcconf::parse_getversion(&out.stdout)),
        Err(e) => {
            notes.warn(missing_or_error("arcconf", &e));
            None
        }
    }
}

/// The first `arcconf` that only root can replace, in the system folders
/// and on `PATH`, then in the vendor's folders; with the copies refused on
/// the way. The error names every copy refused and every folder searched.
fn find_arcconf(host: &Host) -> Result<(String, Vec<String>), ProgramNotFound> {
    let mut missing = match host.find_program("arcconf") {
        Ok(_) => return Ok(("arcconf".into(), Vec::new())),
        Err(e) => e,
    };
    for place in ARCCONF_PLACES {
        match host.find_program(place) {
            Ok(_) => return Ok((place.to_string(), missing.refused)),
            Err(e) => missing.refused.extend(e.refused),
        }
        missing
            .searched
            .extend(Path::new(place).parent().map(Path::to_path_buf));
    }
    Err(missing)
}

fn missing_or_error(tool: &str, e: &anyhow::Error) -> String {
    match e.downcast_ref::<ProgramNotFound>() {
        Some(missing) if missing.refused.is_empty() => {
            format!("{tool} is not installed: its facts are null")
        }
        Some(refused) => format!("{tool} is not run, its facts are null: {refused}"),
        None => {
            format!("{tool} failed, its facts are null: {e:#}")
        }
    }
}
