//! Initramfs images: where each kernel's image lives, and reading one in
//! place (see [`crate::cpio`] for the format walk).

use std::io::BufReader;
use std::path::Path;

use anyhow::{Context, Result};

use crate::cpio::{scan, Scan};
use crate::host::Host;

/// The conventional image paths for `kver`, in the order they are tried:
/// dracut on the RHEL family, then Debian/Ubuntu (both tools), then SUSE.
pub fn image_candidates(kver: &str) -> [String; 3] {
    [
        format!("/boot/initramfs-{kver}.img"),
        format!("/boot/initrd.img-{kver}"),
        format!("/boot/initrd-{kver}"),
    ]
}

/// Walks the image at `path` on `host`, keeping the regular files whose
/// in-image path `select` accepts. With `stop_after`, the walk ends as soon
/// as that many files are kept: decoding a whole image costs about a second
/// per 100 MB, and a module is usually found well before the end.
pub fn scan_image(
    host: &Host,
    path: &Path,
    select: impl FnMut(&str) -> bool,
    stop_after: Option<usize>,
) -> Result<Scan> {
    let file = host
        .open(path)
        .with_context(|| format!("cannot open {}", path.display()))?;
    scan(BufReader::with_capacity(1 << 16, file), select, stop_after)
        .with_context(|| format!("cannot read initramfs image {}", path.display()))
}
