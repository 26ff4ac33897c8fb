//! RAID controllers on the PCI bus, from sysfs (`/sys/bus/pci/devices/*`):
//! every Adaptec/Microchip function (vendor `0x9005`) and every function
//! bound to the driver being asked about, with the driver bound to it.

use std::path::Path;

use anyhow::{Context, Result};
use serde::Serialize;

use crate::host::Host;

/// Adaptec's (now Microchip's) PCI vendor ID.
pub const ADAPTEC_VENDOR: &str = "0x9005";

const DEVICES: &str = "/sys/bus/pci/devices";

/// One PCI function.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Device {
    /// Domain:bus:device.function, e.g. `0000:03:00.0`.
    pub address: String,
    /// Vendor ID, e.g. `0x9005`.
    pub vendor: String,
    /// Device ID, e.g. `0x028d`.
    pub device: String,
    /// Subsystem vendor ID.
    pub subsystem_vendor: Option<String>,
    /// Subsystem device ID.
    pub subsystem_device: Option<String>,
    /// Class code, e.g. `0x010400` (RAID bus controller).
    pub class: Option<String>,
    /// Name of the bound driver, `None` when no driver claimed it.
    pub driver: Option<String>,
}

/// The controllers of interest: vendor `0x9005`, or bound to `driver`.
/// A host without `/sys/bus/pci` (some containers) has none.
pub fn controllers(host: &Host, driver: &str) -> Result<Vec<Device>> {
    let root = Path::new(DEVICES);
    if !host.exists(root) {
        return Ok(Vec::new());
    }
    let mut found = Vec::new();
    for entry in host.read_dir(root).context("cannot list PCI devices")? {
        let attr = |name: &str| {
            host.read_text(&entry.path.join(name))
                .ok()
                .map(|s| s.trim().to_string())
        };
        let bound = host
            .read_link(&entry.path.join("driver"))
            .ok()
            .and_then(|p| p.file_name().map(|f| f.to_string_lossy().into_owned()));
        let vendor = attr("vendor").unwrap_or_default();
        if vendor != ADAPTEC_VENDOR && bound.as_deref() != Some(driver) {
            continue;
        }
        found.push(Device {
            address: entry.name.clone(),
            device: attr("device").unwrap_or_default(),
            subsystem_vendor: attr("subsystem_vendor"),
            subsystem_device: attr("subsystem_device"),
            class: attr("class"),
            driver: bound,
            vendor,
        });
    }
    Ok(found)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Script;
    use std::fs;

    #[test]
    fn finds_adaptec_and_bound_functions() -> Result<()> {
        let dir = tempfile::tempdir()?;
        let sys = dir.path().join("sys/bus/pci/devices");
        let drivers = dir.path().join("sys/bus/pci/drivers");
        for (addr, vendor, driver) in [
            ("0000:00:1f.2", "0x8086", Some("ahci")),
            ("0000:03:00.0", "0x9005", Some("aacraid")),
            ("0000:04:00.0", "0x9005", None),
        ] {
            let d = sys.join(addr);
            fs::create_dir_all(&d)?;
            fs::write(d.join("vendor"), format!("{vendor}\n"))?;
            fs::write(d.join("device"), "0x028d\n")?;
            fs::write(d.join("class"), "0x010400\n")?;
            if let Some(drv) = driver {
                fs::create_dir_all(drivers.join(drv))?;
                std::os::unix::fs::symlink(
                    format!("../../../bus/pci/drivers/{drv}"),
                    d.join("driver"),
                )?;
            }
        }
        let host = Host::scripted(dir.path(), Script::new());
        let found = controllers(&host, "aacraid")?;
        let summary: Vec<_> = found
            .iter()
            .map(|d| (d.address.as_str(), d.driver.as_deref()))
            .collect();
        assert_eq!(
            summary,
            [("0000:03:00.0", Some("aacraid")), ("0000:04:00.0", None)]
        );
        assert_eq!(found[0].class.as_deref(), Some("0x010400"));
        assert_eq!(found[0].subsystem_vendor, None);
        Ok(())
    }
}
