//! The options of `initramfs_regen` (documented in the sidecar), and the
//! image tool they choose.

use std::path::Path;
use std::time::Duration;

use anyhow::{bail, Result};
use linux_host::kernel::KernelSpec;
use linux_host::{Cmd, Host};
use serde::{Deserialize, Serialize};

/// `cmd`, killed with everything it started after `timeout` seconds unless
/// that is 0 (the `timeout` option, which bounds every command the module
/// runs per image).
pub fn bounded(cmd: Cmd, timeout: u64) -> Cmd {
    if timeout == 0 {
        cmd
    } else {
        cmd.timeout(Duration::from_secs(timeout))
    }
}

/// Which tool makes images.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum ToolChoice {
    /// dracut where installed, else initramfs-tools.
    #[default]
    Auto,
    /// dracut.
    Dracut,
    /// initramfs-tools' `mkinitramfs`.
    InitramfsTools,
}

/// How a stale image is brought up to date.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Method {
    /// The image tool makes the whole image again.
    #[default]
    Rebuild,
    /// One segment holding the new module files and the image's own
    /// module indices is appended to the image (see `append.rs`).
    Append,
}

/// Task options.
#[derive(Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Options {
    /// Kernel releases, `running`, or `all`.
    #[serde(default = "default_kernels")]
    pub kernels: Vec<KernelSpec>,
    /// Modules each image must carry as the kernel resolves them: `modules`
    /// when given, else `[name]` (the option the other modules share, so
    /// that `module_defaults` for the collection's group reaches this one
    /// too), else `[aacraid]`.
    #[serde(default)]
    pub modules: Option<Vec<String>>,
    /// One module, when `modules` is not given.
    #[serde(default)]
    pub name: Option<String>,
    /// The tool.
    #[serde(default)]
    pub tool: ToolChoice,
    /// Rebuild stale images, or append to them.
    #[serde(default)]
    pub method: Method,
    /// Rebuild even current images.
    #[serde(default)]
    pub force: bool,
    /// Keep the previous image as `<image>.bak`.
    #[serde(default)]
    pub backup: bool,
    /// Seconds each tool run may take before it is killed; 0 for no limit.
    #[serde(default = "default_timeout")]
    pub timeout: u64,
}

fn default_timeout() -> u64 {
    1800
}

fn default_kernels() -> Vec<KernelSpec> {
    vec![KernelSpec::All]
}

impl Options {
    /// The module names each image must carry (see `modules`).
    pub fn wanted(&self) -> Result<Vec<String>> {
        match (&self.modules, &self.name) {
            (Some(list), _) if list.is_empty() => bail!("modules must name at least one module"),
            (Some(list), _) => Ok(list.clone()),
            (None, Some(name)) => Ok(vec![name.clone()]),
            (None, None) => Ok(vec!["aacraid".into()]),
        }
    }
}

/// The tool chosen for this host.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Tool {
    /// `dracut --force --tmpdir <folder> <image> <kver>`.
    Dracut,
    /// `mkinitramfs -o <image> <kver>` with `TMPDIR=<folder>`.
    InitramfsTools,
}

impl Tool {
    /// The program it runs.
    pub fn program(self) -> &'static str {
        match self {
            Tool::Dracut => "dracut",
            Tool::InitramfsTools => "mkinitramfs",
        }
    }

    /// The command that writes `kver`'s image to `output`, doing its work
    /// in `work` (a private folder, not the shared `/var/tmp`), killed
    /// after `timeout` seconds unless that is 0.
    pub fn command(self, output: &Path, kver: &str, work: &Path, timeout: u64) -> Cmd {
        let cmd = match self {
            Tool::Dracut => Cmd::new("dracut")
                .arg("--force")
                .arg("--tmpdir")
                .arg(work)
                .arg(output)
                .arg(kver),
            Tool::InitramfsTools => Cmd::new("mkinitramfs")
                .arg("-o")
                .arg(output)
                .arg(kver)
                .env("TMPDIR", work),
        };
        bounded(cmd, timeout)
    }

    /// The tool `choice` means on `host`; fails when it is not installed.
    pub fn choose(host: &Host, choice: ToolChoice) -> Result<Tool> {
        let has = |t: Tool| host.find_program(t.program()).is_ok();
        match choice {
            ToolChoice::Dracut if has(Tool::Dracut) => Ok(Tool::Dracut),
            ToolChoice::InitramfsTools if has(Tool::InitramfsTools) => Ok(Tool::InitramfsTools),
            ToolChoice::Auto if has(Tool::Dracut) => Ok(Tool::Dracut),
            ToolChoice::Auto if has(Tool::InitramfsTools) => Ok(Tool::InitramfsTools),
            ToolChoice::Auto => bail!(
                "no initramfs tool is installed: neither dracut nor mkinitramfs (initramfs-tools) was found"
            ),
            ToolChoice::Dracut => bail!("tool dracut is not installed (dracut was not found)"),
            ToolChoice::InitramfsTools => bail!(
                "tool initramfs-tools is not installed (mkinitramfs was not found)"
            ),
        }
    }
}
