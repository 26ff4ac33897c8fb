//! One kernel's facts: the file it resolves for the module, every copy in
//! its module tree, and what its initramfs image holds.

use std::path::Path;

use formats::compress::Compression;
use formats::modinfo::{sha256_hex, ModInfo};
use formats::modsig::Signature;
use linux_host::initramfs::{image_path, member_for, module_files};
use linux_host::kmod::{self, Lookup, ModuleFile, Resolved};
use linux_host::signing::{self, Enforcement, HostSigning};
use linux_host::Host;

use crate::gather::{Notes, Request};
use crate::schema::{Copy, Image, ImageModule, KernelFacts, LoadFacts, ResolvedFacts};

/// The facts of `release`; `(installed, running, modinfo_present)` say
/// what the caller already knows of it; `signing`, the host's signature
/// state when the `signing` part is gathered.
pub fn kernel_facts(
    host: &Host,
    req: &Request,
    release: &str,
    (installed, running, modinfo_present): (bool, bool, bool),
    signing: Option<&HostSigning>,
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
        signing: None,
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
                        load: LoadFacts::default(),
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
                                load: LoadFacts::default(),
                            },
                            None => Copy {
                                active: false,
                                file: ModuleFile::read(host, release, p),
                                load: LoadFacts::default(),
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
    if let Some(state) = signing {
        judge(host, &mut facts, state);
    }
    facts
}

/// The kernel's enforcement, and the verdict on every copy read above. The
/// signatures of the kernel's own in-tree copies are the keys it trusts
/// for certain.
fn judge(host: &Host, facts: &mut KernelFacts, state: &HostSigning) {
    let config = signing::kernel_config(host, &facts.release);
    let enforcement = signing::enforcement(state, config.as_ref(), facts.running);
    let release = facts.release.clone();
    let copies = facts.copies.as_deref().unwrap_or_default();
    let resolved = facts
        .resolved
        .as_ref()
        .and_then(|r| r.resolved.file.as_ref());
    let own: Vec<Signature> = copies
        .iter()
        .map(|c| &c.file)
        .chain(resolved)
        .filter(|f| f.tree == "kernel")
        .filter_map(|f| f.info.signature.clone())
        .collect();
    let own: Vec<&Signature> = own.iter().collect();
    let keys = state.trusted_keys.as_deref();
    let judge_file = |file: &ModuleFile| match &file.error {
        Some(error) => LoadFacts {
            will_load: None,
            will_load_reason: Some(format!("the file cannot be read as a module: {error}")),
        },
        None => load_facts(
            &release,
            &enforcement,
            file.info.signature.as_ref(),
            &own,
            keys,
        ),
    };
    if let Some(r) = facts.resolved.as_mut() {
        if let Some(file) = &r.resolved.file {
            r.load = judge_file(file);
        }
    }
    for copy in facts.copies.iter_mut().flatten() {
        copy.load = judge_file(&copy.file);
    }
    if let Some(module) = facts.initramfs.as_mut().and_then(|i| i.module.as_mut()) {
        module.load = load_facts(
            &release,
            &enforcement,
            module.info.signature.as_ref(),
            &own,
            keys,
        );
    }
    facts.signing = Some(enforcement);
}

fn load_facts(
    release: &str,
    enforcement: &Enforcement,
    signature: Option<&Signature>,
    own: &[&Signature],
    keys: Option<&[formats::signing::Key]>,
) -> LoadFacts {
    let verdict = signing::will_load(release, enforcement, signature, own, keys);
    LoadFacts {
        will_load: verdict.will_load,
        will_load_reason: Some(verdict.will_load_reason),
    }
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
                load: LoadFacts::default(),
            });
        }
        None => image.matches_resolved = resolved.map(|_| false),
    }
    image
}
