//! Facts from other tools: `dkms status` and `arcconf`. A tool that is
//! missing or fails gives `null` facts and a warning.

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
        None => host
            .find_program("arcconf")
            .ok()
            .map(|_| "arcconf".to_string())
            .or_else(|| {
                ARCCONF_PLACES
                    .iter()
                    .find(|p| host.find_program(p).is_ok())
                    .map(|p| p.to_string())
            })
            .unwrap_or_else(|| "arcconf".into()),
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
