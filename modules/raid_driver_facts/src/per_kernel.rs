//! One kernel's facts: the file it resolves for the module, every copy in
//! its module tree, and what its initramfs image holds.

use std::path::Path;

use formats::compress::Compression;
use formats::modinfo::{sha256_hex, ModInfo};
use linux_host::initramfs::{image_path, member_for, module_files};
use linux_host::kmod::{self, Lookup, ModuleFile, Resolved};
use linux_host::Host;

use crate::gather::{Notes, Request};
use crate::schema::{Copy, Image, ImageModule, KernelFacts, ResolvedFacts};

/// The facts of `release`; `(installed, running, modinfo_present)` say
/// what the caller already knows of it.
pub fn kernel_facts(
    host: &Host,
    req: &Request,
    release: &str,
    (installed, running, modinfo_present): (bool, bool, bool),
    notes: &mut Notes,
) -> KernelFacts {
    let mut facts = KernelFacts {
        release: release.to_string(),
        running,
        installed,
        resolved_by: None,
        resolved: None,
        copies: None,
        initramfs: None,
    };
    if !installed {
        return facts;
    }
    if req.subset.modules {
        let (how, lookup) = if modinfo_present {
            ("modinfo", Lookup::Modinfo)
        } else {
            ("modules.dep", Lookup::ModulesDep)
        };
        match Resolved::read(host, release, req.name, lookup) {
            Ok(resolved) => {
                facts.resolved_by = Some(how);
                facts.resolved = (resolved.resolution != formats::modinfo::Resolution::NotFound)
                    .then(|| ResolvedFacts {
                        vermagic_matches: resolved
                            .file
                            .as_ref()
                            .and_then(|f| f.info.vermagic_release())
                            .map(|r| r == release),
                        resolved,
                    });
            }
            Err(e) => notes.warn(format!(
                "kernel {release}: cannot resolve {}: {e:#}",
                req.name
            )),
        }
        let resolved_file = facts
            .resolved
            .as_ref()
            .and_then(|r| r.resolved.file.as_ref());
        match kmod::find_copies(host, release, req.name) {
            Ok(paths) => {
                facts.copies = Some(
                    paths
                        .iter()
                        .map(|p| match resolved_file.filter(|r| r.path == *p) {
                            // The resolved file was read already.
                            Some(active) => Copy {
                                active: true,
                                file: active.clone(),
                            },
                            None => Copy {
                                active: false,
                                file: ModuleFile::read(host, release, p),
                            },
                        })
                        .collect(),
                )
            }
            Err(e) => notes.warn(format!("kernel {release}: {e:#}")),
        }
    }
    if req.subset.initramfs {
        let resolved_file = facts
            .resolved
            .as_ref()
            .and_then(|r| r.resolved.file.as_ref());
        let image = image_facts(host, release, req.name, resolved_file);
        if let Some(error) = &image.error {
            notes.warn(format!(
                "kernel {release}: initramfs {}: {error}",
                image.path
            ));
        }
        facts.initramfs = Some(image);
    }
    facts
}

fn image_facts(host: &Host, release: &str, name: &str, resolved: Option<&ModuleFile>) -> Image {
    let (path, exists) = image_path(host, release);
    let path = path.display().to_string();
    let mut image = Image {
        path: path.clone(),
        exists,
        compression: None,
        early_cpio: None,
        contains_module: None,
        module: None,
        matches_resolved: None,
        error: None,
    };
    if !exists {
        return image;
    }
    let scan = match module_files(host, Path::new(&path), release, &[name.to_string()]) {
        Ok(scan) => scan,
        Err(e) => {
            image.error = Some(format!("{e:#}"));
            return image;
        }
    };
    image.compression = Some(scan.compression());
    // An uncompressed archive before the first compressed one; a segment
    // appended after the main archive is not an early cpio.
    let first_compressed = scan
        .segments
        .iter()
        .position(|s| s.compression != Compression::None);
    image.early_cpio = Some(first_compressed.is_some_and(|at| at > 0));
    let file = member_for(&scan.files, release, name).cloned();
    image.contains_module = Some(file.is_some());
    match file {
        Some(file) => {
            let sha256 = sha256_hex(&file.data);
            image.matches_resolved = resolved.map(|r| r.sha256.as_deref() == Some(sha256.as_str()));
            image.module = Some(ImageModule {
                path: file.path,
                size: file.data.len() as u64,
                sha256,
                info: ModInfo::from_bytes(file.data).unwrap_or_default(),
            });
        }
        None => image.matches_resolved = resolved.map(|_| false),
    }
    image
}
