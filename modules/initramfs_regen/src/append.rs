//! `method: append`: a stale image is brought up to date without its tool.
//! The kernel unpacks every segment of an initramfs in order and keeps the
//! last copy of a path (`formats::cpio`), so one segment appended to the
//! image, holding the new module files and the image's own module indices
//! made again for them, gives the booting kernel the new driver while every
//! byte before it stays as it was.
//!
//! The indices come from `depmod` run over the image's own module tree (the
//! files under its `lib/modules/<kver>`, copied to a private folder, with
//! the new files in place); only the index files that differ from the
//! image's go into the segment. The segment starts with [`APPENDED_MARKER`]
//! (a small JSON note of the kernel, the offset and the files), so a
//! later append finds it as the image's last segment and replaces it
//! instead of stacking a second one. It is stored in the image's own
//! compression (a gzip member or a zstd frame of stored blocks, or a plain
//! archive in an uncompressed image): the tools' listers (`lsinitrd`,
//! `unmkinitramfs`) decode the main archive as before, and stop there.
//! [`check`] refuses, at planning, what this cannot do.

use std::collections::BTreeMap;
use std::io::{self, Cursor, Read as _, Write as _};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::thread;

use anyhow::{anyhow, bail, Context as _, Result};
use formats::compress::Compression;
use formats::cpio::{self, Entry, Scan};
use formats::limits::{IMAGE_MAX, MODULE_MAX};
use formats::modinfo::sha256_hex;
use linux_host::initramfs::{
    appended_segment, member_for, module_files_in, module_tree_in, APPENDED_MARKER,
};
use linux_host::{Cmd, Host};
use serde::Serialize;

use crate::apply::{judge_new_image, run_step, swap_in, Shared};
use crate::leftovers::{STAGE_PARENT, STAGE_PREFIX};
use crate::plan::{Inside, KernelPlan, Plan};

/// What was appended to an image, as the result shows it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Appended {
    /// Byte offset of the segment in the image (what precedes it is the
    /// image as it was, a previous appended segment removed).
    pub offset: u64,
    /// The segment's size in bytes.
    pub bytes: u64,
    /// How it is stored (`gzip`, `zstd`, `none`).
    pub compression: Compression,
    /// The paths it holds, in order.
    pub files: Vec<String>,
}

/// Fails when `append` cannot update kernel `kver`'s image `image`, from
/// what planning read of it (`scan`, `None` when there is no image): its
/// compression must be one a segment can be stored in, it must hold a
/// module tree (`modules.dep`) for the kernel, every new file (`sources`:
/// module, file) must be in the kernel's module folder, and every module a
/// new file needs (`needs`: module, needed) must be in the image already.
pub fn check(
    kver: &str,
    image: &Path,
    scan: Option<&Scan>,
    sources: &[(String, PathBuf)],
    needs: &[(String, String)],
) -> Result<()> {
    let refuse = |why: String| -> Result<()> {
        bail!(
            "method append cannot update the image of kernel {kver} ({}): {why}; use method: rebuild",
            image.display()
        )
    };
    let Some(scan) = scan else {
        return refuse("there is no image to append to".into());
    };
    let compression = base_compression(scan, base_len(scan, u64::MAX));
    if compression.store(b"").is_none() {
        return refuse(format!(
            "it is {}-compressed, and an appended segment is stored as gzip, zstd or uncompressed only",
            compression.name()
        ));
    }
    if !scan.files.iter().any(|m| m.path.ends_with("/modules.dep")) {
        return refuse(format!(
            "it holds no modules.dep for kernel {kver}, so no module tree to update"
        ));
    }
    let folders = [
        format!("/lib/modules/{kver}"),
        format!("/usr/lib/modules/{kver}"),
    ];
    for (module, source) in sources {
        if !folders.iter().any(|f| source.starts_with(f)) {
            return refuse(format!(
                "the kernel resolves {module} to {}, outside its module folder",
                source.display()
            ));
        }
    }
    for (module, needed) in needs {
        if member_for(&scan.files, kver, needed).is_none() {
            return refuse(format!(
                "the new {module} needs module {needed}, which the image lacks (append adds only the named modules)"
            ));
        }
    }
    Ok(())
}

/// The bytes kernel `k`'s image is expected to take once appended to: the
/// image kept (`scan`, read while planning, any earlier appended segment
/// left out), the new module files (`sources`), and the index files depmod
/// writes, allowed for as 12 times the image's `modules.dep` (all of them
/// together come to about 10 times it for Debian's kernels), plus 1 MiB
/// for headers and folders. The segment is stored uncompressed.
pub fn estimate(host: &Host, image: &Path, scan: &Scan, sources: &[(String, PathBuf)]) -> u64 {
    let len = host.file_size(image).unwrap_or(0);
    let modules: u64 = sources
        .iter()
        .map(|(_, path)| host.file_size(path).unwrap_or(MODULE_MAX))
        .sum();
    let dep = scan
        .files
        .iter()
        .filter(|m| m.path.ends_with("/modules.dep"))
        .map(|m| m.data.len() as u64)
        .max()
        .unwrap_or(0);
    base_len(scan, len)
        .saturating_add(modules)
        .saturating_add(dep.saturating_mul(12))
        .saturating_add(1 << 20)
}

/// Where the image ends once a segment appended earlier is left out: that
/// segment's offset, when the last segment is one; else `len`.
fn base_len(scan: &Scan, len: u64) -> u64 {
    appended_segment(scan).unwrap_or(len)
}

/// The compression of the last compressed segment before `base`.
fn base_compression(scan: &Scan, base: u64) -> Compression {
    scan.segments
        .iter()
        .filter(|s| s.offset < base)
        .map(|s| s.compression)
        .rfind(|c| *c != Compression::None)
        .unwrap_or(Compression::None)
}

/// Appends to `k`'s image the segment that brings it up to date, checks the
/// result as a rebuilt image is checked, swaps it in; returns what the image
/// holds, the backup's path and what was appended.
pub fn run(
    host: &Host,
    plan: &Plan,
    k: &KernelPlan,
) -> Result<(Vec<Inside>, Option<PathBuf>, Appended)> {
    let untouched = || format!("{} is untouched", k.image.display());
    let (bytes, mode) = host
        .read_capped(&k.image, IMAGE_MAX)
        .with_context(untouched)?;
    let bytes = Shared(Arc::new(bytes));
    let scan = module_tree_in(Cursor::new(bytes.clone()), &k.kernel).with_context(|| {
        format!(
            "cannot read the image of kernel {}; {}",
            k.kernel,
            untouched()
        )
    })?;
    let base = base_len(&scan, bytes.0.len() as u64);
    let compression = base_compression(&scan, base);
    // An uncompressed archive must start at a multiple of 4 (the kernel
    // skips the zeros before it); a compressed stream follows the image's
    // last byte, as zstd (and so unmkinitramfs) reads no zeros between frames.
    let offset = if compression == Compression::None {
        base.next_multiple_of(4)
    } else {
        base
    };
    // The check walks the whole new image. All of it before the segment is
    // the old image, so the walk starts now on a thread (the other core),
    // while the tree is staged and depmod runs, and reads the rest, padding
    // and segment, from a pipe once they are made.
    let (rest, mut feed) = io::pipe()?;
    let head = Cursor::new(bytes.clone()).take(base);
    let (kver, names) = (k.kernel.clone(), plan.modules.clone());
    let walk = thread::spawn(move || module_files_in(head.chain(rest), &kver, &names));
    let (files_before, folders_before) = match scan.segments.last() {
        Some(s) if s.offset == base => s.kept_before,
        _ => (scan.files.len(), scan.folders.len()),
    };
    let folders = &scan.folders[..folders_before];
    let mut files = scan.files;
    files.truncate(files_before);
    let Some(prefix) = files
        .iter()
        .rev()
        .find_map(|m| m.path.strip_suffix("/modules.dep"))
        .map(str::to_string)
    else {
        bail!(
            "the image of kernel {} holds no modules.dep; {}",
            k.kernel,
            untouched()
        );
    };
    // The image's tree as its kernel unpacks it: the last copy of a path.
    let mut tree: BTreeMap<String, Option<Vec<u8>>> = BTreeMap::new();
    for m in files {
        if let Some(rel) = m.path.strip_prefix(&format!("{prefix}/")) {
            tree.insert(rel.to_string(), m.regular.then_some(m.data));
        }
    }
    let mut new_files = Vec::new();
    for (name, source) in &k.sources {
        let Some(wanted) = k.wanted.iter().find(|w| &w.name == name) else {
            continue;
        };
        let (data, _) = host.read_capped(source, MODULE_MAX)?;
        if Some(sha256_hex(&data)) != wanted.sha256 {
            bail!(
                "{} changed since the task read it; {}",
                source.display(),
                untouched()
            );
        }
        let rel = wanted.path.clone().unwrap_or_default();
        tree.insert(rel.clone(), Some(data.clone()));
        new_files.push((rel, data));
    }
    let indices = regenerate_indices(host, plan, k, &tree)?;

    let mut entries = vec![Entry {
        path: APPENDED_MARKER.into(),
        mode: 0o644,
        folder: false,
        data: Vec::new(),
    }];
    // Folders the image lacks on the way to a new file (`updates/`).
    for (rel, _) in &new_files {
        let parts: Vec<&str> = rel.split('/').collect();
        for depth in 1..parts.len() {
            let at = format!("{prefix}/{}", parts[..depth].join("/"));
            if !folders.contains(&at) && !entries.iter().any(|e| e.path == at) {
                entries.push(Entry {
                    path: at,
                    mode: 0o755,
                    folder: true,
                    data: Vec::new(),
                });
            }
        }
    }
    for (rel, data) in new_files.into_iter().chain(indices) {
        entries.push(Entry {
            path: format!("{prefix}/{rel}"),
            mode: 0o644,
            folder: false,
            data,
        });
    }
    let paths: Vec<String> = entries.iter().map(|e| e.path.clone()).collect();
    entries[0].data = serde_json::to_vec(&serde_json::json!({
        "written_by": "initramfs_regen",
        "kernel": k.kernel,
        "offset": offset,
        "files": paths[1..],
    }))?;
    let archive = cpio::write(&entries);
    let Some(segment) = compression.store(&archive) else {
        bail!(
            "the image of kernel {} became {}-compressed since planning; {}",
            k.kernel,
            compression.name(),
            untouched()
        );
    };
    let mut tail = vec![0; (offset - base) as usize];
    tail.extend_from_slice(&segment);
    // A walk that failed has closed the pipe; its error is the one reported.
    let _ = feed.write_all(&tail);
    drop(feed);
    let walked = walk
        .join()
        .unwrap_or_else(|_| Err(anyhow!("the walk of the new image stopped")));
    let made = format!("the image of kernel {} with its appended segment", k.kernel);
    let inside = judge_new_image(plan, k, walked, &made)?;
    let mut image = bytes.0[..base as usize].to_vec();
    image.extend_from_slice(&tail);
    let backup = swap_in(host, plan, k, image.as_ref(), k.old_mode.unwrap_or(mode))?;
    Ok((
        inside,
        backup,
        Appended {
            offset,
            bytes: segment.len() as u64,
            compression,
            files: paths,
        },
    ))
}

/// Runs `depmod` over `tree` (the image's module tree with the new files,
/// by path relative to the kernel's module folder; `None` for an entry that
/// is not a regular file, left out) in a private folder; returns the index
/// files it wrote that differ from the tree's own.
fn regenerate_indices(
    host: &Host,
    plan: &Plan,
    k: &KernelPlan,
    tree: &BTreeMap<String, Option<Vec<u8>>>,
) -> Result<Vec<(String, Vec<u8>)>> {
    // Dropped on every return, with everything staged in it.
    let stage = host.private_dir(Path::new(STAGE_PARENT), STAGE_PREFIX)?;
    let modules = format!("lib/modules/{}", k.kernel);
    for (rel, data) in tree {
        if let Some(data) = data {
            stage.put(&format!("{modules}/{rel}"), data)?;
        }
    }
    // depmod -b looks in <base>/lib/modules or, where kmod was built so,
    // <base>/usr/lib/modules.
    stage.link("usr/lib/modules", "../../lib/modules")?;
    let cmd = Cmd::new("depmod").arg("-b").arg(&stage.path).arg(&k.kernel);
    run_step(host, plan, cmd, |why| {
        format!(
            "depmod {why} over the module tree of the image of kernel {}; {} is untouched",
            k.kernel,
            k.image.display()
        )
    })?;
    let mut changed = Vec::new();
    let folder = stage.path.join(&modules);
    for entry in host.read_dir(&folder)? {
        if !entry.name.starts_with("modules.") || entry.kind != linux_host::host::Kind::File {
            continue;
        }
        let (data, _) = host.read_capped(&entry.path, IMAGE_MAX)?;
        if tree.get(&entry.name).and_then(Option::as_ref) != Some(&data) {
            changed.push((entry.name, data));
        }
    }
    Ok(changed)
}
