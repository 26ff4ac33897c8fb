//! gzip-compressed tar archives: reading untrusted ones entirely in memory
//! after checking every entry, and writing reproducible ones.
//!
//! Reading never touches the disk: the whole archive is checked before the
//! caller sees a single entry, so a bad archive leaves the host as it was.
//! Names follow [`crate::path`] (absolute names, `..` and duplicates are
//! refused; `./` and other folder entries are fine) and modes are masked;
//! device and fifo entries are refused, and, depending on [`Links`], links.
//! The decompressed archive may not pass [`ARCHIVE_MAX`].

use std::io::{BufRead, Read};
use std::path::{Component, Path, PathBuf};

use anyhow::{bail, Context, Result};

use crate::compress::{Buffered, Compression, Stream};
use crate::limits::{Limit, ARCHIVE_MAX};
use crate::path;

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
    /// Relative path, normalised by [`path::relative`].
    pub path: String,
    /// Entry type.
    pub kind: Kind,
    /// Permission bits, masked with [`path::MODE_MASK`].
    pub mode: u32,
    /// Contents (empty except for files).
    pub data: Vec<u8>,
}

/// Reads and checks every entry of a `.tar.gz` held in `bytes`.
pub fn read_tar_gz(bytes: &[u8], links: Links) -> Result<Vec<Entry>> {
    read_capped(bytes, links, ARCHIVE_MAX)
}

fn read_capped(bytes: &[u8], links: Links, cap: u64) -> Result<Vec<Entry>> {
    if !bytes.starts_with(&[0x1f, 0x8b]) {
        bail!("not a gzip file");
    }
    let input = Buffered::new(Box::new(std::io::Cursor::new(bytes.to_vec())) as _);
    let decoder = Compression::Gzip.stream(input)?;
    let mut archive = tar::Archive::new(Limit::new(decoder, cap, "the archive"));
    let mut out = Vec::new();
    let mut kept = 0;
    for entry in archive.entries().context("corrupt gzip or tar data")? {
        let mut entry = entry.context("corrupt gzip or tar data")?;
        let raw_path = entry.path_bytes().into_owned();
        let shown = String::from_utf8_lossy(&raw_path).into_owned();
        let path = path::relative(&shown).with_context(|| format!("archive entry {shown:?}"))?;
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
            // A pax global header (git archive writes one) only carries
            // metadata for the entries that follow.
            tar::EntryType::XGlobalHeader => continue,
            // pax and GNU long-name records are consumed by the tar crate;
            // anything left is a device, fifo or unknown type.
            other => bail!(
                "archive entry {shown:?}: {} entries are not accepted",
                entry_type_name(other)
            ),
        };
        if path.is_empty() {
            if kind == Kind::Dir {
                continue;
            }
            let what = match kind {
                Kind::Symlink(_) => "symbolic link",
                Kind::HardLink(_) => "hard link",
                Kind::File | Kind::Dir => "file",
            };
            bail!("archive entry {shown:?}: a {what} entry without a name");
        }
        let mode = entry.header().mode().unwrap_or(0o644) & path::MODE_MASK;
        let mut data = Vec::new();
        if kind == Kind::File {
            let size = entry.size();
            if size > cap - kept {
                bail!(
                    "archive entry {shown:?} claims {size} bytes: more than the {} MiB an archive may hold once decompressed",
                    cap >> 20
                );
            }
            entry
                .read_to_end(&mut data)
                .with_context(|| format!("archive entry {shown:?}: corrupt gzip or tar data"))?;
            kept += data.len() as u64;
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
    check_end(archive.into_inner())?;
    path::check_tree(out.iter().map(|e| (e.path.as_str(), e.kind == Kind::Dir)))?;
    Ok(out)
}

/// After the end-of-archive blocks only zero padding may follow, up to the
/// end of the gzip stream and after it: entries in a second gzip member
/// (which GNU tar unpacks too) would escape every check.
fn check_end(mut rest: Limit<Stream>) -> Result<()> {
    let mut block = [0u8; 512];
    loop {
        let n = rest.read(&mut block).context("corrupt gzip or tar data")?;
        if n == 0 {
            break;
        }
        if block[..n].iter().any(|&b| b != 0) {
            bail!("data after the end of the tar archive is not accepted");
        }
    }
    let mut raw = rest.into_inner().finish()?;
    raw.skip_zeros()?;
    if !raw.fill_buf()?.is_empty() {
        bail!("data after the gzip stream (a second gzip member) is not accepted");
    }
    Ok(())
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

/// What a tar entry type is called in a message (not its Rust name).
fn entry_type_name(t: tar::EntryType) -> String {
    match t {
        tar::EntryType::Char => "character device".into(),
        tar::EntryType::Block => "block device".into(),
        tar::EntryType::Fifo => "fifo".into(),
        tar::EntryType::Continuous => "contiguous file".into(),
        tar::EntryType::GNUSparse => "GNU sparse file".into(),
        other => format!("type {:?}", char::from(other.as_byte())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Builds a tar.gz with raw header control, to forge bad entries.
    fn forged(entries: &[(&str, tar::EntryType, &str, &[u8])]) -> Vec<u8> {
        crate::testing::gzip(&forged_tar(entries))
    }

    /// The tar archive [`forged`] compresses.
    fn forged_tar(entries: &[(&str, tar::EntryType, &str, &[u8])]) -> Vec<u8> {
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
        builder.into_inner().expect("tar")
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
                "block device entries are not accepted",
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

    /// `tar -czf pkg.tgz -C dir .` (GNU tar and bsdtar) starts with the
    /// entry `./`, which used to be refused as an empty path; a pax global
    /// header (git archive) used to be refused too.
    #[test]
    fn dot_slash_and_folder_entries_are_accepted() -> Result<()> {
        use tar::EntryType::{Directory, Regular, XGlobalHeader};
        let bytes = forged(&[
            ("pax_global_header", XGlobalHeader, "", b"52 comment=0123\n"),
            ("./", Directory, "", b""),
            ("./sub/", Directory, "", b""),
            ("./sub/a.rpm", Regular, "", b"rpm"),
            ("GPL", Regular, "", b"gpl"),
        ]);
        let entries = read_tar_gz(&bytes, Links::Refuse)?;
        let got: Vec<(&str, &Kind)> = entries.iter().map(|e| (e.path.as_str(), &e.kind)).collect();
        assert_eq!(
            got,
            [
                ("sub", &Kind::Dir),
                ("sub/a.rpm", &Kind::File),
                ("GPL", &Kind::File)
            ]
        );
        let err = read_tar_gz(&forged(&[("./", Regular, "", b"x")]), Links::Refuse)
            .expect_err("a file named ./");
        assert!(format!("{err:#}").contains("without a name"), "{err:#}");
        Ok(())
    }

    /// Two copies of a name (tar -x keeps the last, the artifact reader
    /// took the first), and a file written through a symlink entry.
    #[test]
    fn duplicates_and_paths_through_links_are_refused() {
        use tar::EntryType::{Regular, Symlink};
        for (entries, why) in [
            (
                forged(&[
                    ("aacraid.ko", Regular, "", b"A"),
                    ("./aacraid.ko", Regular, "", b"B"),
                ]),
                "\"aacraid.ko\" appears twice",
            ),
            (
                forged(&[("d", Symlink, ".", b""), ("d/x", Regular, "", b"B")]),
                "\"d/x\" lies under \"d\"",
            ),
        ] {
            let err = read_tar_gz(&entries, Links::Inside).expect_err(why);
            assert!(format!("{err:#}").contains(why), "{err:#}");
        }
    }

    /// A header claiming more than the cap is refused before anything is
    /// read; a stream that decompresses past the cap stops there.
    #[test]
    fn archives_past_the_cap_are_refused() {
        let mut h = tar::Header::new_gnu();
        h.set_path("big").expect("name");
        h.set_size(3 << 30);
        h.set_mode(0o644);
        h.set_cksum();
        let mut tar = h.as_bytes().to_vec();
        tar.extend([0u8; 4096]);
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        std::io::Write::write_all(&mut gz, &tar).expect("gzip");
        let bomb = gz.finish().expect("gzip");
        let err = read_tar_gz(&bomb, Links::Refuse).expect_err("claims");
        assert!(
            format!("{err:#}").contains("claims 3221225472 bytes: more than the 256 MiB"),
            "{err:#}"
        );
        let big = vec![0u8; 3 << 20];
        let files: &[(&str, u32, &[u8])] = &[("a", 0o644, &big)];
        let err = read_capped(&write_tar_gz(files).expect("tar"), Links::Refuse, 3 << 20)
            .expect_err("stream");
        assert!(
            format!("{err:#}").contains("the archive holds more than 3 MiB once decompressed"),
            "{err:#}"
        );
    }

    #[test]
    fn setuid_setgid_sticky_and_world_writable_bits_are_dropped() -> Result<()> {
        let entries = read_tar_gz(&write_tar_gz(&[("x", 0o7777, b"x")])?, Links::Refuse)?;
        assert_eq!(entries[0].mode, 0o775);
        Ok(())
    }

    /// GNU tar also unpacks a second gzip member (`cat a.tgz b.tgz`), or
    /// entries after a lone end block: what this reader never saw (here a
    /// second aacraid.ko) escaped the duplicate check.
    #[test]
    fn data_after_the_archive_is_refused() {
        use tar::EntryType::Regular;
        let first = write_tar_gz(&[("aacraid.ko", 0o644, b"good")]).expect("tar");
        let second = write_tar_gz(&[("aacraid.ko", 0o644, b"evil")]).expect("tar");
        let mut joined = first.clone();
        joined.extend(&second);
        let err = read_tar_gz(&joined, Links::Refuse).expect_err("second member");
        assert!(format!("{err:#}").contains("second gzip member"), "{err:#}");
        let mut tar = tar::Builder::new(Vec::new());
        let mut h = tar::Header::new_gnu();
        h.set_path("aacraid.ko").expect("name");
        h.set_size(4);
        h.set_cksum();
        tar.append(&h, &b"good"[..]).expect("append");
        let mut raw = tar.into_inner().expect("tar");
        raw.extend([0u8; 512]);
        raw.extend(forged_tar(&[("aacraid.ko", Regular, "", b"evil")]));
        let err = read_tar_gz(&crate::testing::gzip(&raw), Links::Refuse)
            .expect_err("after a lone end block");
        assert!(
            format!("{err:#}").contains("after the end of the tar archive"),
            "{err:#}"
        );
        let mut padded = first;
        padded.extend([0u8; 100]);
        assert!(
            read_tar_gz(&padded, Links::Refuse).is_ok(),
            "zero padding after the gzip stream"
        );
    }
}
