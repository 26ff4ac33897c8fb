//! One kernel's facts: the file it resolves for the module, every copy in
//! its module tree, and what its initramfs image holds.

use std::path::Path;
use std::time::SystemTime;

use anyhow::Context as _;
use formats::compress::Compression;
use formats::modinfo::{sha256_hex, ModInfo, Resolution};
use formats::modsig::Signature;
use linux_host::initramfs::{appended_segment, image_path, member_for, module_files_in};
use linux_host::kernel::modules_dir;
use linux_host::kmod::{self, ModuleFile, Resolved};
use linux_host::signing::{self, Enforcement, HostSigning};
use linux_host::Host;

use crate::copies_cache::{Found, Visited};
use crate::gather::{Notes, Request};
use crate::image_cache::{Cache, Identity, Learnt, Member};
use crate::schema::{Copy, Image, ImageModule, KernelFacts, LoadFacts, ResolvedFacts};
use crate::{answers_cache, files_cache};

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
        copies_from_cache: None,
        initramfs: None,
        signing: None,
    };
    if !installed {
        return facts;
    }
    if req.subset.modules {
        let how = if modinfo_present {
            "modinfo"
        } else {
            "modules.dep"
        };
        match resolve(host, release, req.name, modinfo_present, req.cache) {
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
        match copies(host, release, req.name, req.cache) {
            Ok(Found {
                paths, from_cache, ..
            }) => {
                facts.copies_from_cache = Some(from_cache);
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
                                file: files_cache::module_file(req.cache, host, release, p),
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
        let image = image_facts(host, release, req.name, resolved_file, req.cache);
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

/// Which file `release` resolves for `name` (asking `modinfo` when it is
/// installed, else reading `modules.dep`), and what it holds: `modinfo`'s
/// answer and the file's facts from the cache while nothing they depend on
/// changed.
fn resolve(
    host: &Host,
    release: &str,
    name: &str,
    with_modinfo: bool,
    cache: Option<&Cache>,
) -> anyhow::Result<Resolved> {
    let resolution = if with_modinfo {
        let cmd = kmod::modinfo_n(release, name);
        let tree = modules_dir(release);
        let out = answers_cache::run(
            cache,
            host,
            &cmd,
            |stamp| {
                stamp.listing(host, &tree);
                for dir in kmod::MODPROBE_CONFIG_DIRS {
                    stamp.listing(host, Path::new(dir));
                }
                stamp.followed(host, Path::new("/etc/modprobe.conf"));
            },
            Some(&tree),
        )?;
        kmod::resolution_from(&cmd, &out)?
    } else {
        kmod::resolve_with_modules_dep(host, release, name)?
    };
    let file = match &resolution {
        Resolution::File(path) => Some(files_cache::module_file(cache, host, release, path)),
        _ => None,
    };
    Ok(Resolved { resolution, file })
}

/// The files named like module `name` in `release`'s module tree (a tree
/// walked is queued for the cache). With a cache, each tree is looked at once
/// per gather: the kernel's facts and the DKMS stamp both ask.
pub fn copies(
    host: &Host,
    release: &str,
    name: &str,
    cache: Option<&Cache>,
) -> anyhow::Result<Found> {
    match cache {
        Some(cache) => cache
            .once(release, name, || {
                find_copies(host, release, name, Some(cache)).map_err(|e| format!("{e:#}"))
            })
            .map_err(anyhow::Error::msg),
        None => find_copies(host, release, name, None),
    }
}

fn find_copies(
    host: &Host,
    release: &str,
    name: &str,
    cache: Option<&Cache>,
) -> anyhow::Result<Found> {
    if let Some(found) = cache.and_then(|c| c.copies(host, release, name)) {
        return Ok(found);
    }
    let started = SystemTime::now();
    let mut visited: Visited = Vec::new();
    let found = kmod::find_copies_visiting(host, release, name, |folder| {
        if cache.is_some() {
            visited.push((folder.to_path_buf(), host.symlink_metadata(folder).ok()))
        }
    })?;
    let tree = cache.and_then(|cache| cache.queue_copies(release, name, started, &visited, &found));
    Ok(Found {
        paths: found,
        from_cache: false,
        tree,
    })
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

fn image_facts(
    host: &Host,
    release: &str,
    name: &str,
    resolved: Option<&ModuleFile>,
    cache: Option<&Cache>,
) -> Image {
    let (path, exists) = image_path(host, release);
    let mut image = Image {
        path: path.display().to_string(),
        exists,
        compression: None,
        early_cpio: None,
        appended_segment: None,
        contains_module: None,
        module: None,
        matches_resolved: None,
        from_cache: false,
        error: None,
    };
    if !exists {
        return image;
    }
    let (learnt, from_cache) = match learn(host, &path, release, name, cache) {
        Ok(found) => found,
        Err(e) => {
            image.error = Some(format!("{e:#}"));
            return image;
        }
    };
    image.compression = Some(learnt.compression);
    image.early_cpio = Some(learnt.early_cpio);
    image.appended_segment = learnt.appended_segment;
    image.contains_module = Some(learnt.module.is_some());
    image.from_cache = from_cache;
    image.matches_resolved = resolved.map(|r| {
        learnt
            .module
            .as_ref()
            .is_some_and(|m| r.sha256.as_deref() == Some(m.sha256.as_str()))
    });
    image.module = learnt.module.map(|m| ImageModule {
        path: m.path,
        size: m.size,
        sha256: m.sha256,
        info: m.info,
        load: LoadFacts::default(),
    });
    image
}

/// What the image at `path` holds for `name`, and whether that came from
/// the cache. A decoded image is queued for the cache only when the file
/// read is still the file at `path`, unchanged since it was opened.
fn learn(
    host: &Host,
    path: &Path,
    release: &str,
    name: &str,
    cache: Option<&Cache>,
) -> anyhow::Result<(Learnt, bool)> {
    let file = host
        .open(path)
        .with_context(|| format!("cannot open {}", path.display()))?;
    let opened = file.metadata()?;
    let key = cache.map(|c| c.key(path, release, name, &opened));
    if let Some(hit) = cache.zip(key.as_ref()).and_then(|(c, k)| c.get(host, k)) {
        return Ok((hit, true));
    }
    let held = file.try_clone()?;
    let scan = module_files_in(file, release, &[name.to_string()])
        .with_context(|| format!("cannot read initramfs image {}", path.display()))?;
    // An uncompressed archive before the first compressed one; a segment
    // appended after the main archive is not an early cpio.
    let first_compressed = scan
        .segments
        .iter()
        .position(|s| s.compression != Compression::None);
    let learnt = Learnt {
        compression: scan.compression(),
        early_cpio: first_compressed.is_some_and(|at| at > 0),
        appended_segment: appended_segment(&scan),
        module: member_for(&scan.files, release, name).map(|file| Member {
            path: file.path.clone(),
            size: file.data.len() as u64,
            sha256: sha256_hex(&file.data),
            info: ModInfo::from_bytes(file.data.clone()).unwrap_or_default(),
        }),
    };
    if let (Some(cache), Some(key)) = (cache, key) {
        let unchanged = |meta: std::io::Result<std::fs::Metadata>| {
            meta.is_ok_and(|m| Identity::of(&m) == Identity::of(&opened))
        };
        if unchanged(held.metadata()) && unchanged(std::fs::metadata(host.real_path(path))) {
            cache.queue(key, learnt.clone());
        }
    }
    Ok((learnt, false))
}
