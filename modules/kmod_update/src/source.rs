//! The module file to install, read from the managed host and checked in
//! memory before anything is written: a kernel module (`.ko`, or `.ko.xz`,
//! `.ko.zst`, `.ko.gz`), or an artifact `.tgz` written by `aacraid_build`
//! (format in `formats::manifest`), whose manifest names the kernel and
//! the checksum of each module in it.

use std::path::Path;

use anyhow::{bail, Context, Result};
use formats::archive::{self, Kind, Links};
use formats::limits::{ARCHIVE_MAX, MODULE_MAX};
use formats::manifest::{self, Manifest};
use formats::modinfo::{normalize, sha256_hex, ModInfo, EXTENSIONS};
use linux_host::Host;

/// A checked module, ready to install.
#[derive(Debug)]
pub struct Source {
    /// Where it came from (`/root/a.tgz`, or `/root/a.tgz:aacraid.ko`).
    pub described: String,
    /// Its extension (`.ko`, `.ko.xz`, …): the installed file is `<name><ext>`.
    pub extension: &'static str,
    /// The bytes to install.
    pub data: Vec<u8>,
    /// Their SHA-256.
    pub sha256: String,
    /// What the module says about itself.
    pub info: ModInfo,
    /// The kernel an artifact's manifest names.
    pub kernel: Option<String>,
}

fn extension_of(file_name: &str) -> Option<&'static str> {
    EXTENSIONS.iter().copied().find(|e| {
        file_name
            .strip_suffix(e)
            .is_some_and(|stem| !stem.is_empty())
    })
}

/// Reads `path` and checks that it holds module `name`.
pub fn read(host: &Host, path: &Path, name: &str) -> Result<Source> {
    if !path.is_absolute() {
        bail!("src must be an absolute path, got {}", path.display());
    }
    let file_name = path
        .file_name()
        .map(|f| f.to_string_lossy().into_owned())
        .unwrap_or_default();
    let is_artifact = file_name.ends_with(".tgz") || file_name.ends_with(".tar.gz");
    let cap = if is_artifact { ARCHIVE_MAX } else { MODULE_MAX };
    let bytes = host.read_input(path, cap).map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => anyhow::anyhow!("src {} does not exist", path.display()),
        _ => anyhow::anyhow!("cannot read src {}: {e}", path.display()),
    })?;
    let shown = path.display().to_string();
    let source = if is_artifact {
        from_artifact(&shown, &bytes, name)?
    } else if let Some(extension) = extension_of(&file_name) {
        checked(shown, extension, bytes, None, name)?
    } else {
        bail!(
            "src {shown} is neither a kernel module (.ko, .ko.xz, .ko.zst, .ko.gz) nor an artifact (.tgz)"
        );
    };
    Ok(source)
}

fn from_artifact(shown: &str, bytes: &[u8], name: &str) -> Result<Source> {
    let entries = archive::read_tar_gz(bytes, Links::Refuse)
        .with_context(|| format!("src {shown} is refused as a whole, nothing was installed"))?;
    let file = |wanted: &str| {
        entries
            .iter()
            .find(|e| e.kind == Kind::File && e.path == wanted)
    };
    let manifest = file(manifest::MEMBER).with_context(|| {
        format!("src {shown} has no manifest.json: not an artifact of aacraid_build")
    })?;
    let manifest = Manifest::parse(&manifest.data).with_context(|| shown.to_string())?;
    let wanted = normalize(name);
    let listed = manifest
        .files
        .iter()
        .find(|f| normalize(&f.module) == wanted)
        .with_context(|| {
            let have: Vec<&str> = manifest.files.iter().map(|f| f.module.as_str()).collect();
            format!("{shown} holds no module {name:?} (its manifest lists {have:?})")
        })?;
    let extension = extension_of(&listed.file)
        .filter(|_| !listed.file.contains('/'))
        .with_context(|| {
            format!(
                "{shown}: manifest names {:?}, not a module file at the top level",
                listed.file
            )
        })?;
    let entry = file(&listed.file).with_context(|| {
        format!(
            "{shown}: manifest lists {} but the archive does not hold it",
            listed.file
        )
    })?;
    let sha256 = sha256_hex(&entry.data);
    if sha256 != listed.sha256 || entry.data.len() as u64 != listed.size {
        bail!(
            "{shown}: checksum mismatch for {}: manifest says sha256 {} ({} bytes), the archive holds sha256 {sha256} ({} bytes)",
            listed.file,
            listed.sha256,
            listed.size,
            entry.data.len()
        );
    }
    let source = checked(
        format!("{shown}:{}", listed.file),
        extension,
        entry.data.clone(),
        Some(manifest.kernel),
        name,
    )?;
    // The manifest was written after the module was signed: a module
    // stripped or signed again since, with a new checksum, shows here.
    let carried = source.info.signature.as_ref();
    let said = (listed.signer.as_deref(), listed.key_id.as_deref());
    if said != (None, None)
        && said
            != (
                carried.and_then(|s| s.signer.as_deref()),
                carried.and_then(|s| s.key_id.as_deref()),
            )
    {
        bail!(
            "{shown}: manifest says {} is signed by {:?} (key {}), the module carries {}",
            listed.file,
            said.0.unwrap_or("an unnamed signer"),
            said.1.unwrap_or("unknown"),
            match carried {
                Some(s) => format!(
                    "{:?} (key {})",
                    s.signer.as_deref().unwrap_or("an unnamed signer"),
                    s.key_id.as_deref().unwrap_or("unknown")
                ),
                None => "no signature".to_string(),
            }
        );
    }
    Ok(source)
}

fn checked(
    described: String,
    extension: &'static str,
    data: Vec<u8>,
    kernel: Option<String>,
    name: &str,
) -> Result<Source> {
    let info = ModInfo::from_bytes(data.clone())
        .with_context(|| format!("{described} is not an ELF kernel module"))?;
    let Some(own) = info.name.as_deref() else {
        bail!("{described} records no module name in its .modinfo section: not a kernel module");
    };
    if normalize(own) != normalize(name) {
        bail!("{described} is the module {own:?}, not {name:?}");
    }
    if info.vermagic.is_none() {
        bail!("{described} has no vermagic: not a loadable kernel module");
    }
    Ok(Source {
        described,
        extension,
        sha256: sha256_hex(&data),
        data,
        info,
        kernel,
    })
}
