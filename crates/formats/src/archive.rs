//! gzip-compressed tar archives: reading untrusted ones entirely in memory
//! after checking every entry, and writing reproducible ones.
//!
//! Reading never touches the disk: the whole archive is checked before the
//! caller sees a single entry, so a bad archive leaves the host as it was.
//! Refused: absolute paths, `..` components, device and fifo entries, and,
//! depending on [`Links`], links.

use std::io::Read;
use std::path::{Component, Path, PathBuf};

use anyhow::{bail, Context, Result};

use crate::compress::Compression;

/// What to do with symbolic and hard links in an archive.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Links {
    /// Refuse any link.
    Refuse,
    /// Accept links whose target stays inside the archive's root.
    Inside,
}

/// The kind of an accepted entry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Kind {
    /// A regular file.
    File,
    /// A directory.
    Dir,
    /// A symbolic link to the given target.
    Symlink(String),
    /// A hard link to another entry.
    HardLink(String),
}

/// One checked entry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    /// Relative path, normalised (no `./`).
    pub path: String,
    /// Entry type.
    pub kind: Kind,
    /// Permission bits.
    pub mode: u32,
    /// Contents (empty except for files).
    pub data: Vec<u8>,
}

/// Reads and checks every entry of a `.tar.gz` held in `bytes`.
pub fn read_tar_gz(bytes: &[u8], links: Links) -> Result<Vec<Entry>> {
    if !bytes.starts_with(&[0x1f, 0x8b]) {
        bail!("not a gzip file");
    }
    let decoder = Compression::Gzip.decoder(Box::new(std::io::Cursor::new(bytes.to_vec())))?;
    let mut archive = tar::Archive::new(decoder);
    let mut out = Vec::new();
    for entry in archive.entries().context("corrupt gzip or tar data")? {
        let mut entry = entry.context("corrupt gzip or tar data")?;
        let raw_path = entry.path_bytes().into_owned();
        let shown = String::from_utf8_lossy(&raw_path).into_owned();
        let path = normalise(&shown).with_context(|| format!("archive entry {shown:?}"))?;
        let link_target = || -> Result<String> {
            let target = entry
                .link_name_bytes()
                .map(|t| String::from_utf8_lossy(&t).into_owned())
                .with_context(|| format!("archive entry {shown:?}: link without a target"))?;
            Ok(target)
        };
        let kind = match entry.header().entry_type() {
            tar::EntryType::Regular | tar::EntryType::Continuous => Kind::File,
            tar::EntryType::Directory => Kind::Dir,
            tar::EntryType::Symlink => {
                let target = link_target()?;
                check_link(links, &path, &target, true)
                    .with_context(|| format!("archive entry {shown:?}"))?;
                Kind::Symlink(target)
            }
            tar::EntryType::Link => {
                let target = link_target()?;
                check_link(links, &path, &target, false)
                    .with_context(|| format!("archive entry {shown:?}"))?;
                Kind::HardLink(target)
            }
            // pax and GNU long-name records are consumed by the tar crate;
            // anything left is a device, fifo or unknown type.
            other => bail!("archive entry {shown:?}: {other:?} entries are not accepted"),
        };
        let mode = entry.header().mode().unwrap_or(0o644) & 0o7777;
        let mut data = Vec::new();
        if kind == Kind::File {
            entry
                .read_to_end(&mut data)
                .with_context(|| format!("archive entry {shown:?}: corrupt gzip or tar data"))?;
        }
        out.push(Entry {
            path,
            kind,
            mode,
            data,
        });
    }
    if out.is_empty() {
        bail!("the archive is empty");
    }
    Ok(out)
}

/// A relative path with no `..`, as a `/`-joined string.
fn normalise(path: &str) -> Result<String> {
    let p = Path::new(path);
    let mut parts = Vec::new();
    for c in p.components() {
        match c {
            Component::Normal(part) => parts.push(part.to_string_lossy().into_owned()),
            Component::CurDir => {}
            Component::RootDir | Component::Prefix(_) => bail!("absolute paths are not accepted"),
            Component::ParentDir => bail!("`..` in a path is not accepted"),
        }
    }
    if parts.is_empty() {
        bail!("empty path");
    }
    Ok(parts.join("/"))
}

fn check_link(links: Links, path: &str, target: &str, symbolic: bool) -> Result<()> {
    if links == Links::Refuse {
        bail!("links are not accepted (target {target:?})");
    }
    // A symlink's target is relative to its directory; a hard link's to the root.
    let base = if symbolic {
        Path::new(path)
            .parent()
            .map(Path::to_path_buf)
            .unwrap_or_default()
    } else {
        PathBuf::new()
    };
    if Path::new(target).is_absolute() {
        bail!("link target {target:?} is absolute: it points outside the archive");
    }
    let mut depth: i64 = base.components().count() as i64;
    for c in Path::new(target).components() {
        match c {
            Component::ParentDir => depth -= 1,
            Component::Normal(_) => depth += 1,
            _ => {}
        }
        if depth < 0 {
            bail!("link target {target:?} points outside the archive");
        }
    }
    Ok(())
}

/// Writes a reproducible `.tar.gz` of regular files: fixed order (as given),
/// owner 0:0, mtime 0, so the same files always give the same bytes.
pub fn write_tar_gz(files: &[(&str, u32, &[u8])]) -> Result<Vec<u8>> {
    let mut builder = tar::Builder::new(Vec::new());
    for (name, mode, data) in files {
        let mut header = tar::Header::new_ustar();
        header.set_size(data.len() as u64);
        header.set_mode(*mode);
        header.set_uid(0);
        header.set_gid(0);
        header.set_mtime(0);
        header.set_entry_type(tar::EntryType::Regular);
        builder
            .append_data(&mut header, name, *data)
            .with_context(|| format!("cannot add {name} to the archive"))?;
    }
    let tar_bytes = builder.into_inner()?;
    let mut gz = flate2::GzBuilder::new()
        .mtime(0)
        .write(Vec::new(), flate2::Compression::best());
    std::io::Write::write_all(&mut gz, &tar_bytes)?;
    Ok(gz.finish()?)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Builds a tar.gz with raw header control, to forge bad entries.
    fn forged(entries: &[(&str, tar::EntryType, &str, &[u8])]) -> Vec<u8> {
        let mut builder = tar::Builder::new(Vec::new());
        for (name, kind, link, data) in entries {
            let mut h = tar::Header::new_gnu();
            // set_path refuses `..` and absolute paths: write the bytes directly.
            let raw = name.as_bytes();
            h.as_old_mut().name[..raw.len()].copy_from_slice(raw);
            h.set_entry_type(*kind);
            h.set_size(data.len() as u64);
            h.set_mode(0o644);
            if !link.is_empty() {
                h.set_link_name(link).expect("link name");
            }
            h.set_cksum();
            builder.append(&h, *data).expect("append");
        }
        let tar = builder.into_inner().expect("tar");
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        std::io::Write::write_all(&mut gz, &tar).expect("gzip");
        gz.finish().expect("gzip")
    }

    #[test]
    fn round_trip_is_reproducible() -> Result<()> {
        let files: &[(&str, u32, &[u8])] = &[
            ("aacraid.ko", 0o644, b"ELF"),
            ("manifest.json", 0o644, b"{}"),
        ];
        let a = write_tar_gz(files)?;
        assert_eq!(a, write_tar_gz(files)?);
        let entries = read_tar_gz(&a, Links::Refuse)?;
        assert_eq!(entries.len(), 2);
        assert_eq!(entries[0].path, "aacraid.ko");
        assert_eq!(entries[0].data, b"ELF");
        Ok(())
    }

    #[test]
    fn bad_entries_are_refused() {
        use tar::EntryType::{Block, Link, Regular, Symlink};
        let cases: Vec<(Vec<u8>, Links, &str)> = vec![
            (
                forged(&[("/etc/passwd", Regular, "", b"x")]),
                Links::Inside,
                "absolute paths",
            ),
            (
                forged(&[("a/../../x", Regular, "", b"x")]),
                Links::Inside,
                "`..`",
            ),
            (
                forged(&[("l", Symlink, "../../etc", b"")]),
                Links::Inside,
                "points outside",
            ),
            (
                forged(&[("l", Symlink, "/etc/shadow", b"")]),
                Links::Inside,
                "absolute",
            ),
            (
                forged(&[("d/l", Symlink, "../ok", b"")]),
                Links::Refuse,
                "links are not accepted",
            ),
            (
                forged(&[("h", Link, "x", b"")]),
                Links::Refuse,
                "links are not accepted",
            ),
            (
                forged(&[("dev", Block, "", b"")]),
                Links::Inside,
                "Block entries are not accepted",
            ),
            (
                b"\x1f\x8bnot really gzip".to_vec(),
                Links::Inside,
                "corrupt",
            ),
            (
                b"PK\x03\x04 a zip".to_vec(),
                Links::Inside,
                "not a gzip file",
            ),
        ];
        for (bytes, links, expected) in cases {
            let err = read_tar_gz(&bytes, links).expect_err(expected);
            assert!(
                format!("{err:#}").contains(expected),
                "{err:#} / {expected}"
            );
        }
        let ok = forged(&[("d/l", Symlink, "../ok", b""), ("ok", Regular, "", b"1")]);
        assert!(read_tar_gz(&ok, Links::Inside).is_ok());
    }
}
