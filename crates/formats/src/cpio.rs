//! Walking `newc` cpio archives, stored as they are or compressed, the way
//! the kernel unpacks an initramfs: a sequence of segments, each an
//! uncompressed cpio archive or a compressed stream of them, possibly
//! separated by zero padding. Once a compressed stream ends, the walk goes
//! on with what follows it, as the kernel does; data it cannot read is an
//! error, never skipped. Initramfs images and rpm payloads are both read
//! this way.
//!
//! Names follow [`crate::path`]: a leading `/` or `./` is the archive's
//! root, `..` is refused. A name may appear more than once: the kernel
//! keeps the last copy it unpacks, so the walk returns every copy in order
//! and callers take the last (rpm refuses duplicates). The data of a hard
//! link set is stored once (GNU cpio and rpm put it on the last entry, the
//! others are empty); every kept entry of the set gets it.
//!
//! Only the entries a caller selects are kept in memory, at most
//! [`ARCHIVE_MAX`] bytes of them; everything else is streamed past.
//!
//! [`write`] makes a `newc` archive, for the segment initramfs_regen
//! appends to an image.

use std::io::Read;

use anyhow::{bail, Context, Result};
use serde::Serialize;

use crate::compress::{Buffered, Compression};
use crate::limits::ARCHIVE_MAX;
use crate::path;

/// One segment of an archive sequence, for reporting what it is made of.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Segment {
    /// How the segment is stored.
    pub compression: Compression,
    /// Byte offset of the segment in the input.
    pub offset: u64,
    /// Entries (of any type) walked in the segment's archive(s).
    pub entries: u64,
    /// The path of the segment's first entry (how a segment appended by a
    /// tool is recognised); `None` when it holds none.
    #[serde(skip)]
    pub first_entry: Option<String>,
    /// How many of [`Scan::files`] and [`Scan::folders`] come from the
    /// segments before this one.
    #[serde(skip)]
    pub kept_before: (usize, usize),
}

/// A selected entry, with its contents.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Member {
    /// Path inside the archive, normalised by [`path::relative`].
    pub path: String,
    /// Permission bits, masked with [`path::MODE_MASK`].
    pub mode: u32,
    /// A regular file; otherwise a symbolic link (whose data is its
    /// target), a device, a fifo or a socket.
    pub regular: bool,
    /// The entry's bytes.
    pub data: Vec<u8>,
}

/// What a walk found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Scan {
    /// Segments in file order.
    pub segments: Vec<Segment>,
    /// Entries other than folders that the selector accepted, in archive
    /// order, every copy of a name included.
    pub files: Vec<Member>,
    /// The folders the selector accepted, in archive order.
    pub folders: Vec<String>,
}

impl Scan {
    /// Compression of the last compressed segment, or `None` when none
    /// is (for an initramfs, what `lsinitrd` calls the image's
    /// compression, even with an uncompressed archive appended).
    pub fn compression(&self) -> Compression {
        self.segments
            .iter()
            .rev()
            .map(|s| s.compression)
            .find(|c| *c != Compression::None)
            .unwrap_or(Compression::None)
    }
}

/// Walks every segment read from `input`, keeping the entries, folders
/// aside, whose path `select` accepts.
pub fn scan<R: Read + Send + 'static>(
    input: R,
    mut select: impl FnMut(&str) -> bool,
) -> Result<Scan> {
    scan_capped(Box::new(input), &mut select, ARCHIVE_MAX)
}

fn scan_capped(
    input: Box<dyn Read + Send>,
    select: &mut dyn FnMut(&str) -> bool,
    cap: u64,
) -> Result<Scan> {
    let mut walk = Walk {
        select,
        cap,
        kept: 0,
        files: Vec::new(),
        folders: Vec::new(),
        links: Vec::new(),
        first: None,
    };
    let mut raw = Buffered::new(input);
    let mut segments = Vec::new();
    loop {
        raw.skip_zeros()?;
        let offset = raw.pos;
        let head = raw.peek(Compression::MAGIC_LEN)?.to_vec();
        if head.is_empty() {
            break;
        }
        let kept_before = (walk.files.len(), walk.folders.len());
        walk.first = None;
        if is_cpio_magic(&head) {
            let entries = walk.archive(&mut raw)?;
            segments.push(Segment {
                compression: Compression::None,
                offset,
                entries,
                first_entry: walk.first.take(),
                kept_before,
            });
            continue;
        }
        let Some(compression) = Compression::sniff(&head) else {
            bail!("unrecognised data at byte {offset} (starts with {head:02x?}): not cpio nor a known compression");
        };
        let within = || format!("in the {} segment at byte {offset}", compression.name());
        let mut inner = Buffered::new(compression.stream(raw).with_context(within)?);
        let entries = walk.stream(&mut inner).with_context(within)?;
        raw = inner.into_inner().finish().with_context(within)?;
        segments.push(Segment {
            compression,
            offset,
            entries,
            first_entry: walk.first.take(),
            kept_before,
        });
    }
    if segments.is_empty() {
        bail!("no archive found: the input is empty");
    }
    Ok(Scan {
        segments,
        files: walk.files,
        folders: walk.folders,
    })
}

fn is_cpio_magic(head: &[u8]) -> bool {
    head.starts_with(b"070701") || head.starts_with(b"070702")
}

/// The state of a walk across segments.
struct Walk<'a> {
    select: &'a mut dyn FnMut(&str) -> bool,
    /// The most the kept entries may hold, and what they hold.
    cap: u64,
    kept: u64,
    files: Vec<Member>,
    folders: Vec<String>,
    /// Kept entries of hard link sets: the set's key, the index in `files`.
    links: Vec<(LinkKey, usize)>,
    /// The first entry of the segment being walked.
    first: Option<String>,
}

impl Walk<'_> {
    /// Walks the archives of a decompressed stream, which holds nothing
    /// else but zero padding; returns the number of entries.
    fn stream<R: Read>(&mut self, r: &mut Buffered<R>) -> Result<u64> {
        let mut entries = 0;
        loop {
            r.skip_zeros()?;
            let at = r.pos;
            let head = r.peek(6)?;
            if head.is_empty() {
                return Ok(entries);
            }
            if !is_cpio_magic(head) {
                bail!("unexpected data at byte {at} of the decompressed stream (starts with {head:02x?})");
            }
            entries += self.archive(r)?;
        }
    }

    /// Walks one cpio archive up to its trailer; returns the number of entries.
    fn archive<R: Read>(&mut self, r: &mut Buffered<R>) -> Result<u64> {
        let start = r.pos;
        let mut entries = 0;
        while let Some(h) = read_header(r, start)? {
            entries += 1;
            if self.first.is_none() {
                self.first = Some(h.name.clone());
            }
            let kind = h.mode & 0o170000;
            if kind == 0o040000 && (self.select)(&h.name) {
                self.folders.push(h.name.clone());
            }
            let linked = kind == 0o100000 && h.nlink > 1;
            let selected = kind != 0o040000 && (self.select)(&h.name);
            let wanted = linked && self.links.iter().any(|(k, _)| *k == h.link);
            if selected || (wanted && h.size > 0) {
                let mut data = self.read(r, &h)?;
                if linked {
                    data = self.share(h.link, data)?;
                }
                if selected {
                    if linked {
                        self.links.push((h.link, self.files.len()));
                    }
                    self.files.push(Member {
                        path: h.name,
                        mode: h.mode & path::MODE_MASK,
                        regular: kind == 0o100000,
                        data,
                    });
                }
            } else {
                r.skip(h.size)
                    .with_context(|| format!("truncated file {} in the archive", h.name))?;
            }
            r.align(start, 4)?;
        }
        Ok(entries)
    }

    /// Reads an entry's data, within the cap.
    fn read<R: Read>(&mut self, r: &mut Buffered<R>, h: &Header) -> Result<Vec<u8>> {
        self.keep(h.size, &h.name)?;
        let mut data = Vec::new();
        r.by_ref().take(h.size).read_to_end(&mut data)?;
        if data.len() as u64 != h.size {
            bail!("truncated file {} in the archive", h.name);
        }
        Ok(data)
    }

    fn keep(&mut self, size: u64, name: &str) -> Result<()> {
        if size > self.cap - self.kept {
            bail!(
                "{name:?} claims {size} bytes: more than the {} MiB kept from an archive may hold",
                self.cap >> 20
            );
        }
        self.kept += size;
        Ok(())
    }

    /// Shares the data of hard link set `link`: `data` goes to the set's
    /// kept entries that have none; an entry without data gets the set's.
    fn share(&mut self, link: LinkKey, data: Vec<u8>) -> Result<Vec<u8>> {
        let members: Vec<usize> = self
            .links
            .iter()
            .filter(|(k, _)| *k == link)
            .map(|(_, i)| *i)
            .collect();
        if data.is_empty() {
            let have = members
                .iter()
                .rev()
                .map(|&i| &self.files[i].data)
                .find(|d| !d.is_empty());
            let have = have.cloned().unwrap_or_default();
            self.keep(have.len() as u64, "a hard link")?;
            return Ok(have);
        }
        for i in members {
            if self.files[i].data.is_empty() {
                self.keep(data.len() as u64, &self.files[i].path.clone())?;
                self.files[i].data = data.clone();
            }
        }
        Ok(data)
    }
}

/// Inode and device numbers: what the entries of a hard link set share.
type LinkKey = [u64; 3];

struct Header {
    name: String,
    mode: u32,
    nlink: u64,
    link: LinkKey,
    size: u64,
}

/// Reads one `newc` header and name; `None` at the archive's trailer.
fn read_header<R: Read>(r: &mut Buffered<R>, start: u64) -> Result<Option<Header>> {
    let mut raw = [0u8; 110];
    r.read_exact(&mut raw)
        .context("truncated cpio archive (no trailer)")?;
    if !is_cpio_magic(&raw) {
        bail!(
            "bad cpio header at byte {} of the stream: {:?}",
            r.pos - 110,
            String::from_utf8_lossy(&raw[..6])
        );
    }
    let field = |i: usize| -> Result<u64> {
        let text = std::str::from_utf8(&raw[6 + 8 * i..14 + 8 * i])?;
        Ok(u64::from_str_radix(text, 16)?)
    };
    let mode = u32::try_from(field(1)?)?;
    let size = field(6)?;
    let name_len = usize::try_from(field(11)?)?;
    if name_len == 0 || name_len > 4096 {
        bail!("bad cpio name length {name_len}");
    }
    let mut name = vec![0; name_len];
    r.read_exact(&mut name)?;
    name.pop();
    let name = String::from_utf8_lossy(&name).into_owned();
    r.align(start, 4)?;
    if name == "TRAILER!!!" {
        return Ok(None);
    }
    let normal = path::relative(name.trim_start_matches('/'))
        .with_context(|| format!("cpio entry {name:?}"))?;
    Ok(Some(Header {
        name: normal,
        mode,
        nlink: field(4)?,
        link: [field(0)?, field(7)?, field(8)?],
        size,
    }))
}

/// An entry for [`write`] (paths relative, as [`path::relative`] gives them).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    /// The path inside the archive.
    pub path: String,
    /// Permission bits (the type comes from `folder`).
    pub mode: u32,
    /// A folder; otherwise a regular file.
    pub folder: bool,
    /// A file's bytes.
    pub data: Vec<u8>,
}

/// A `newc` archive of `entries`, in order, then its trailer: owner root,
/// time 0, one link each, inode numbers counted from 1, the padding the
/// kernel expects (every header and every file's data start at a multiple
/// of 4 from the archive's start).
pub fn write(entries: &[Entry]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut put = |ino: usize, name: &str, mode: u32, nlink: u32, data: &[u8]| {
        let fields = [
            ino,
            mode as usize,
            0,
            0,
            nlink as usize,
            0,
            data.len(),
            0,
            0,
            0,
            0,
            name.len() + 1,
            0,
        ];
        out.extend_from_slice(b"070701");
        for f in fields {
            out.extend_from_slice(format!("{f:08x}").as_bytes());
        }
        out.extend_from_slice(name.as_bytes());
        out.push(0);
        out.resize(out.len().next_multiple_of(4), 0);
        out.extend_from_slice(data);
        out.resize(out.len().next_multiple_of(4), 0);
    };
    for (i, e) in entries.iter().enumerate() {
        let (kind, nlink) = if e.folder {
            (0o040000, 2)
        } else {
            (0o100000, 1)
        };
        put(i + 1, &e.path, kind | (e.mode & 0o7777), nlink, &e.data);
    }
    put(0, "TRAILER!!!", 0, 1, b"");
    out
}

#[cfg(test)]
pub(crate) mod tests {
    use std::io;

    use super::*;
    use crate::testing::{cpio, gzip};

    fn early_plus(main: Vec<u8>) -> Vec<u8> {
        let mut image = cpio(&[("kernel/x86/microcode/GenuineIntel.bin", b"ucode")]);
        image.resize(512, 0);
        image.extend(main);
        image
    }

    fn select_ko(path: &str) -> bool {
        path.ends_with(".ko")
    }

    fn walk(image: Vec<u8>) -> Result<Scan> {
        scan(io::Cursor::new(image), select_ko)
    }

    fn paths(scan: &Scan) -> Vec<(&str, &[u8])> {
        scan.files
            .iter()
            .map(|f| (f.path.as_str(), f.data.as_slice()))
            .collect()
    }

    /// One raw `newc` entry: name, mode, inode, link count, size field, data.
    pub(crate) fn entry(
        name: &str,
        mode: u32,
        ino: u32,
        nlink: u32,
        size: u32,
        data: &[u8],
    ) -> Vec<u8> {
        let mut out = format!(
            "070701{ino:08x}{mode:08x}{:08x}{:08x}{nlink:08x}{:08x}{size:08x}{:08x}{:08x}{:08x}{:08x}{:08x}{:08x}",
            0, 0, 0, 0, 0, 0, 0, name.len() + 1, 0
        )
        .into_bytes();
        out.extend_from_slice(name.as_bytes());
        out.push(0);
        while out.len() % 4 != 0 {
            out.push(0);
        }
        out.extend_from_slice(data);
        while out.len() % 4 != 0 {
            out.push(0);
        }
        out
    }

    /// The entries, then a trailer.
    pub(crate) fn archive(entries: &[Vec<u8>]) -> Vec<u8> {
        let mut out = entries.concat();
        out.extend(entry("TRAILER!!!", 0, 0, 1, 0, b""));
        out
    }

    fn zstd(data: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        ruzstd::encoding::compress(
            io::Cursor::new(data.to_vec()),
            &mut out,
            ruzstd::encoding::CompressionLevel::Fastest,
        );
        out
    }

    fn xz(data: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        lzma_rs::xz_compress(&mut io::Cursor::new(data), &mut out).expect("xz into a Vec");
        out
    }

    #[test]
    fn early_cpio_then_gzip() -> Result<()> {
        let main = gzip(&cpio(&[
            (
                "usr/lib/modules/6.1.0-56-amd64/kernel/drivers/scsi/aacraid/aacraid.ko",
                b"MODULE",
            ),
            ("usr/bin/sh", b"sh"),
        ]));
        let scan = walk(early_plus(main))?;
        assert_eq!(scan.compression(), Compression::Gzip);
        assert_eq!(scan.segments.len(), 2);
        assert_eq!(scan.segments[0].compression, Compression::None);
        assert_eq!(scan.segments[1].offset, 512);
        assert_eq!(
            paths(&scan),
            [(
                "usr/lib/modules/6.1.0-56-amd64/kernel/drivers/scsi/aacraid/aacraid.ko",
                &b"MODULE"[..]
            )]
        );
        Ok(())
    }

    /// An image with a segment appended after its main archive (what
    /// initramfs_regen's `append` writes): three segments, the last one's
    /// first entry and the files kept before it are known, and the
    /// appended copy of a path comes last.
    #[test]
    fn a_stored_segment_appended_after_the_main_archive() -> Result<()> {
        let ko = "usr/lib/modules/6.1.0-56-amd64/updates/aacraid.ko";
        let old = cpio(&[(ko, b"OLD")]);
        for main in [gzip(&old), zstd(&old)] {
            let image = early_plus(main);
            let base = image.len() as u64;
            let appended = write(&[
                Entry {
                    path: ".marker".into(),
                    mode: 0o644,
                    folder: false,
                    data: b"{}".to_vec(),
                },
                Entry {
                    path: "usr/lib/modules/6.1.0-56-amd64/updates".into(),
                    mode: 0o755,
                    folder: true,
                    data: Vec::new(),
                },
                Entry {
                    path: ko.into(),
                    mode: 0o644,
                    folder: false,
                    data: b"NEW".to_vec(),
                },
            ]);
            for c in [Compression::Gzip, Compression::Zstd, Compression::None] {
                let mut whole = image.clone();
                if c == Compression::None {
                    whole.resize(whole.len().next_multiple_of(4), 0);
                }
                whole.extend(c.store(&appended).expect("stored"));
                let scan = scan(io::Cursor::new(whole), |p| {
                    p.starts_with("usr/lib/modules/")
                })?;
                assert_eq!(scan.segments.len(), 3, "{c:?}");
                let last = &scan.segments[2];
                let padded = if c == Compression::None {
                    base.next_multiple_of(4)
                } else {
                    base
                };
                assert_eq!(last.offset, padded);
                assert_eq!(last.compression, c);
                assert_eq!(last.first_entry.as_deref(), Some(".marker"));
                assert_eq!(last.kept_before, (1, 0));
                assert_eq!(scan.segments[0].first_entry.as_deref(), Some("usr"));
                assert_eq!(paths(&scan), [(ko, &b"OLD"[..]), (ko, b"NEW")]);
                assert_eq!(scan.folders, ["usr/lib/modules/6.1.0-56-amd64/updates"]);
            }
        }
        Ok(())
    }

    #[test]
    fn uncompressed_image_with_two_archives() -> Result<()> {
        let mut image = cpio(&[("a.ko", b"A")]);
        image.extend(cpio(&[("b.ko", b"BB")]));
        let scan = walk(image)?;
        assert_eq!(scan.compression(), Compression::None);
        assert_eq!(paths(&scan), [("a.ko", &b"A"[..]), ("b.ko", b"BB")]);
        Ok(())
    }

    /// lz4 (legacy frames) and lzma were recognised but not read, so an
    /// Ubuntu 20.04 image (lz4) could not be checked at all.
    #[test]
    fn zstd_xz_lz4_and_lzma_segments_are_read() -> Result<()> {
        let archive = cpio(&[("lib/modules/k/updates/aacraid.ko", b"NEW")]);
        for (image, expected) in [
            (zstd(&archive), Compression::Zstd),
            (xz(&archive), Compression::Xz),
            (crate::testing::lz4_literals(&archive), Compression::Lz4),
            (crate::testing::lzma(&archive), Compression::Lzma),
        ] {
            let scan = walk(early_plus(image))?;
            assert_eq!(scan.compression(), expected);
            assert_eq!(scan.files[0].data, b"NEW");
        }
        Ok(())
    }

    /// lz4 frames of the current format and bzip2 were recognised but not
    /// read. The frame here holds one stored block (the real tool's frames
    /// are in lz4.rs's tests); bzip2 comes from the crate's encoder (the
    /// real tool's in tests/system/test_lab_facts.py).
    #[test]
    fn lz4_frame_and_bzip2_segments_are_read() -> Result<()> {
        let archive = cpio(&[("lib/modules/k/updates/aacraid.ko", b"NEW")]);
        let mut frame = crate::lz4::FRAME_MAGIC.to_vec();
        frame.extend_from_slice(&[0x60, 0x70, 0x00]);
        frame.extend_from_slice(&(archive.len() as u32 | 0x8000_0000).to_le_bytes());
        frame.extend_from_slice(&archive);
        frame.extend_from_slice(&[0, 0, 0, 0]);
        #[cfg(feature = "bzip2")]
        let bzip2 = {
            use std::io::Write;
            let mut encoder = bzip2::write::BzEncoder::new(Vec::new(), bzip2::Compression::fast());
            encoder.write_all(&archive)?;
            Some((encoder.finish()?, Compression::Bzip2))
        };
        #[cfg(not(feature = "bzip2"))]
        let bzip2 = None;
        for (image, expected) in std::iter::once((frame, Compression::Lz4Frame)).chain(bzip2) {
            let mut image = early_plus(image);
            // What follows a stream is read too.
            image.extend(cpio(&[("lib/modules/k/updates/aacraid.ko", b"LAST")]));
            let scan = walk(image)?;
            assert_eq!(scan.compression(), expected);
            assert_eq!(scan.files.last().map(|f| &f.data[..]), Some(&b"LAST"[..]));
        }
        Ok(())
    }

    /// A segment appended after a compressed one (the kernel unpacks it
    /// too, over what came before), whatever the compressions: the walk
    /// used to stop after the first compressed segment and never see it.
    #[test]
    fn segments_after_a_compressed_one_are_read() -> Result<()> {
        let first = cpio(&[("lib/modules/k/updates/aacraid.ko", b"good")]);
        let second = cpio(&[("lib/modules/k/updates/aacraid.ko", b"evil")]);
        type Encode = fn(&[u8]) -> Vec<u8>;
        let plain: Encode = |d| d.to_vec();
        let encoders: [(Encode, Compression); 4] = [
            (gzip, Compression::Gzip),
            (zstd, Compression::Zstd),
            (xz, Compression::Xz),
            (plain, Compression::None),
        ];
        for (encode_first, c1) in encoders {
            for (encode_second, c2) in encoders {
                let mut image = encode_first(&first);
                image.extend([0; 7]);
                image.extend(encode_second(&second));
                let scan = walk(image)?;
                let kinds: Vec<_> = scan.segments.iter().map(|s| s.compression).collect();
                assert_eq!(kinds, [c1, c2]);
                let last_compressed = if c2 == Compression::None { c1 } else { c2 };
                assert_eq!(scan.compression(), last_compressed);
                assert_eq!(
                    paths(&scan),
                    [
                        ("lib/modules/k/updates/aacraid.ko", &b"good"[..]),
                        ("lib/modules/k/updates/aacraid.ko", b"evil")
                    ],
                    "{c1:?} then {c2:?}: every copy, in order"
                );
            }
        }
        Ok(())
    }

    #[test]
    fn junk_inside_or_after_a_compressed_segment_is_an_error() {
        let mut inner = cpio(&[("a.ko", b"A")]);
        inner.extend(b"junk");
        let err = walk(gzip(&inner)).expect_err("junk within");
        assert!(format!("{err:#}").contains("unexpected data"), "{err:#}");
        let mut image = gzip(&cpio(&[("a.ko", b"A")]));
        image.extend(b"junk after");
        let err = walk(image).expect_err("junk after");
        assert!(format!("{err:#}").contains("unrecognised data"), "{err:#}");
    }

    /// A header claiming 0xFFFFFFFF bytes used to size a `vec![0; size]`
    /// (4 GiB): now the claim is checked against the cap before anything
    /// is allocated, and data is only read as it arrives.
    #[test]
    fn a_member_larger_than_the_cap_is_refused_before_reading() {
        let image = archive(&[entry("big.ko", 0o100644, 2, 1, u32::MAX, b"tiny")]);
        let err = walk(image.clone()).expect_err("cap");
        assert!(
            format!("{err:#}").contains("claims 4294967295 bytes: more than the 256 MiB"),
            "{err:#}"
        );
        let err = scan(io::Cursor::new(image), |_| false).expect_err("truncated");
        assert!(
            format!("{err:#}").contains("truncated file big.ko"),
            "{err:#}"
        );
        let three = archive(&[
            entry("a.ko", 0o100644, 2, 1, 4, b"AAAA"),
            entry("b.ko", 0o100644, 3, 1, 4, b"BBBB"),
        ]);
        let mut keep = |p: &str| p.ends_with(".ko");
        let err = scan_capped(Box::new(io::Cursor::new(three)), &mut keep, 6).expect_err("total");
        assert!(
            format!("{err:#}").contains("\"b.ko\" claims 4 bytes"),
            "{err:#}"
        );
    }

    /// GNU cpio and rpm store a hard link set's data on its last entry and
    /// leave the others empty: the first names used to come out empty.
    #[test]
    fn hard_links_share_their_data() -> Result<()> {
        let last = archive(&[
            entry("usr/src/a-1/x.ko", 0o100644, 7, 2, 0, b""),
            entry("usr/src/a-1/y.ko", 0o100644, 7, 2, 4, b"DATA"),
        ]);
        assert_eq!(
            paths(&walk(last)?),
            [
                ("usr/src/a-1/x.ko", &b"DATA"[..]),
                ("usr/src/a-1/y.ko", b"DATA")
            ]
        );
        let first_unselected_last = archive(&[
            entry("x.ko", 0o100644, 7, 2, 0, b""),
            entry("y.bin", 0o100644, 7, 2, 4, b"DATA"),
        ]);
        assert_eq!(
            paths(&walk(first_unselected_last)?),
            [("x.ko", &b"DATA"[..])]
        );
        let data_first = archive(&[
            entry("x.ko", 0o100644, 7, 2, 4, b"DATA"),
            entry("y.ko", 0o100644, 7, 2, 0, b""),
            entry("z.ko", 0o100644, 8, 1, 0, b""),
        ]);
        assert_eq!(
            paths(&walk(data_first)?),
            [("x.ko", &b"DATA"[..]), ("y.ko", b"DATA"), ("z.ko", b"")]
        );
        Ok(())
    }

    /// Names that leave the root are refused; `./`, `/` and `//` are
    /// normalised; setuid, setgid, sticky and world-writable bits are
    /// dropped; links and devices are returned as not regular.
    #[test]
    fn names_modes_and_kinds() -> Result<()> {
        let err = walk(archive(&[entry(
            "./a/../../etc/x.ko",
            0o100644,
            2,
            1,
            0,
            b"",
        )]))
        .expect_err("..");
        assert!(format!("{err:#}").contains("`..`"), "{err:#}");
        let scan = walk(archive(&[
            entry("/usr/src/a-1//etc/x.ko", 0o106777, 2, 1, 1, b"x"),
            entry("./l.ko", 0o120777, 3, 1, 4, b"/etc"),
        ]))?;
        assert_eq!(scan.files[0].path, "usr/src/a-1/etc/x.ko");
        assert_eq!(scan.files[0].mode, 0o775);
        assert!(scan.files[0].regular);
        assert_eq!(
            (scan.files[1].path.as_str(), scan.files[1].regular),
            ("l.ko", false)
        );
        Ok(())
    }

    #[test]
    fn garbage_and_truncation_are_errors() {
        let err = walk(b"hello world".to_vec()).expect_err("garbage");
        assert!(
            err.to_string().contains("unrecognised data at byte 0"),
            "{err}"
        );
        let mut cut = cpio(&[("a.ko", b"AAAA")]);
        cut.truncate(130);
        assert!(walk(cut).is_err());
        let err = walk(vec![0u8; 64]).expect_err("empty");
        assert!(err.to_string().contains("the input is empty"), "{err}");
        let err = walk(b"\x89LZO\0\r\n\x1a\n".to_vec()).expect_err("lzo");
        assert!(format!("{err:#}").contains("not supported"), "{err:#}");
    }
}
