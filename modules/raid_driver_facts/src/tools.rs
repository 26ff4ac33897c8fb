//! Facts from other tools: `dkms status` and `arcconf`. A tool that is
//! missing or fails gives `null` facts and a warning.

use std::path::Path;

use formats::modinfo::normalize;
use formats::{arcconf, dkms};
use linux_host::{Cmd, Host, ProgramNotFound};

use crate::gather::Notes;

/// The DKMS entries of module `name`.
pub fn dkms_entries(host: &Host, name: &str, notes: &mut Notes) -> Option<Vec<dkms::Entry>> {
    let cmd = Cmd::new("dkms").arg("status").arg("-m").arg(name);
    match host.run(&cmd) {
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
