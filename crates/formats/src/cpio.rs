//! Walking `newc` cpio archives, stored as they are or compressed, the way
//! the kernel unpacks an initramfs: a sequence of segments, each an
//! uncompressed cpio archive or a compressed stream of them, possibly
//! separated by zero padding. Initramfs images and rpm payloads are both
//! read this way.
//!
//! Only the files a caller selects are kept in memory; everything else is
//! streamed past.

use std::io::{self, Read};

use anyhow::{bail, Context, Result};
use serde::Serialize;

use crate::compress::Compression;

/// One segment of an archive sequence, for reporting what it is made of.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Segment {
    /// How the segment is stored.
    pub compression: Compression,
    /// Byte offset of the segment in the input.
    pub offset: u64,
    /// Entries (of any type) walked in the segment's archive(s).
    pub entries: u64,
}

/// A selected file, with its contents.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Member {
    /// Path inside the archive, without a leading `/` or `./`.
    pub path: String,
    /// Permission bits (`mode & 0o7777`).
    pub mode: u32,
    /// The file's bytes.
    pub data: Vec<u8>,
}

/// What a walk found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Scan {
    /// Segments in file order.
    pub segments: Vec<Segment>,
    /// Regular files the selector accepted, in archive order.
    pub files: Vec<Member>,
}

impl Scan {
    /// Compression of the last segment walked (for an initramfs, what
    /// `lsinitrd` calls the image's compression).
    pub fn compression(&self) -> Compression {
        self.segments
            .last()
            .map(|s| s.compression)
            .unwrap_or(Compression::None)
    }
}

/// Walks the segments read from `input`, keeping the regular files whose
/// path `select` accepts; with `stop_after`, stops once that many are kept.
/// Walks every uncompressed segment, then decodes the first compressed one
/// (which runs to the end of the input in images made by dracut and
/// initramfs-tools, and in rpm payloads) and walks every archive inside it.
pub fn scan<R: Read + Send + 'static>(
    input: R,
    mut select: impl FnMut(&str) -> bool,
    stop_after: Option<usize>,
) -> Result<Scan> {
    let limit = stop_after.unwrap_or(usize::MAX);
    let mut raw = Peek::new(input);
    let mut segments = Vec::new();
    let mut files = Vec::new();
    loop {
        raw.skip_zeros()?;
        let offset = raw.pos;
        let head = raw.peek(Compression::MAGIC_LEN)?.to_vec();
        if head.is_empty() {
            break;
        }
        if is_cpio_magic(&head) {
            let entries = walk_archives(&mut raw, &mut select, &mut files, limit, false)?;
            segments.push(Segment {
                compression: Compression::None,
                offset,
                entries,
            });
            if files.len() >= limit {
                break;
            }
            continue;
        }
        let Some(compression) = Compression::sniff(&head) else {
            bail!("unrecognised data at byte {offset} (starts with {head:02x?}): not cpio nor a known compression");
        };
        let decoder = compression.decoder(Box::new(raw)).with_context(|| {
            format!("cannot decode the {compression:?} segment at byte {offset}")
        })?;
        let mut inner = Peek::new(decoder);
        let entries = walk_archives(&mut inner, &mut select, &mut files, limit, true)
            .with_context(|| format!("in the {compression:?} segment at byte {offset}"))?;
        segments.push(Segment {
            compression,
            offset,
            entries,
        });
        break;
    }
    if segments.is_empty() {
        bail!("no archive found: the input is empty");
    }
    Ok(Scan { segments, files })
}

fn is_cpio_magic(head: &[u8]) -> bool {
    head.starts_with(b"070701") || head.starts_with(b"070702")
}

/// Walks one cpio archive, or (inside a decompressed stream, `chained`) as
/// many consecutive archives as the stream holds, until `files` holds
/// `limit` files. Returns the number of entries walked.
fn walk_archives<R: Read>(
    r: &mut Peek<R>,
    select: &mut impl FnMut(&str) -> bool,
    files: &mut Vec<Member>,
    limit: usize,
    chained: bool,
) -> Result<u64> {
    let mut entries = 0;
    loop {
        let start = r.pos;
        loop {
            let Some(entry) = read_header(r, start)? else {
                break;
            };
            entries += 1;
            let is_file = entry.mode & 0o170000 == 0o100000;
            if is_file && select(&entry.name) {
                let mut data = vec![0; usize::try_from(entry.size)?];
                r.read_exact(&mut data)
                    .with_context(|| format!("truncated file {} in the archive", entry.name))?;
                files.push(Member {
                    path: entry.name,
                    mode: entry.mode & 0o7777,
                    data,
                });
                if files.len() >= limit {
                    return Ok(entries);
                }
            } else {
                r.skip(entry.size)
                    .with_context(|| format!("truncated file {} in the archive", entry.name))?;
            }
            r.align(start, 4)?;
        }
        if !chained {
            return Ok(entries);
        }
        r.skip_zeros()?;
        let head = r.peek(6)?;
        if !is_cpio_magic(head) {
            return Ok(entries);
        }
    }
}

struct Header {
    name: String,
    mode: u32,
    size: u64,
}

/// Reads one `newc` header and name; `None` at the archive's trailer.
fn read_header<R: Read>(r: &mut Peek<R>, start: u64) -> Result<Option<Header>> {
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
    let name = name
        .trim_start_matches("./")
        .trim_start_matches('/')
        .to_string();
    Ok(Some(Header { name, mode, size }))
}

/// A reader that counts its position and can look ahead.
struct Peek<R> {
    inner: R,
    ahead: Vec<u8>,
    pos: u64,
}

impl<R: Read> Peek<R> {
    fn new(inner: R) -> Self {
        Peek {
            inner,
            ahead: Vec::new(),
            pos: 0,
        }
    }

    /// Up to `n` upcoming bytes (fewer only at the end of the stream).
    fn peek(&mut self, n: usize) -> io::Result<&[u8]> {
        while self.ahead.len() < n {
            let mut buf = [0u8; 512];
            let want = (n - self.ahead.len()).min(buf.len());
            let got = self.inner.read(&mut buf[..want])?;
            if got == 0 {
                break;
            }
            self.ahead.extend_from_slice(&buf[..got]);
        }
        Ok(&self.ahead[..n.min(self.ahead.len())])
    }

    fn skip(&mut self, n: u64) -> io::Result<()> {
        let copied = io::copy(&mut self.by_ref().take(n), &mut io::sink())?;
        if copied < n {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        Ok(())
    }

    /// Consumes padding so the position is a multiple of `to` from `start`.
    fn align(&mut self, start: u64, to: u64) -> io::Result<()> {
        let rem = (self.pos - start) % to;
        if rem != 0 {
            self.skip(to - rem)?;
        }
        Ok(())
    }

    fn skip_zeros(&mut self) -> io::Result<()> {
        loop {
            let zeros = {
                let head = self.peek(512)?;
                head.iter().take_while(|&&b| b == 0).count()
            };
            if zeros == 0 {
                return Ok(());
            }
            self.skip(zeros as u64)?;
        }
    }
}

impl<R: Read> Read for Peek<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = if self.ahead.is_empty() {
            self.inner.read(buf)?
        } else {
            let n = buf.len().min(self.ahead.len());
            buf[..n].copy_from_slice(&self.ahead[..n]);
            self.ahead.drain(..n);
            n
        };
        self.pos += n as u64;
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
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

    #[test]
    fn early_cpio_then_gzip() -> Result<()> {
        let main = gzip(&cpio(&[
            (
                "usr/lib/modules/6.1.0-56-amd64/kernel/drivers/scsi/aacraid/aacraid.ko",
                b"MODULE",
            ),
            ("usr/bin/sh", b"sh"),
        ]));
        let scan = scan(io::Cursor::new(early_plus(main)), select_ko, None)?;
        assert_eq!(scan.compression(), Compression::Gzip);
        assert_eq!(scan.segments.len(), 2);
        assert_eq!(scan.segments[0].compression, Compression::None);
        assert_eq!(scan.segments[1].offset, 512);
        assert_eq!(scan.files.len(), 1);
        assert_eq!(
            scan.files[0].path,
            "usr/lib/modules/6.1.0-56-amd64/kernel/drivers/scsi/aacraid/aacraid.ko"
        );
        assert_eq!(scan.files[0].data, b"MODULE");
        Ok(())
    }

    #[test]
    fn walk_stops_after_the_wanted_files() -> Result<()> {
        let mut image = cpio(&[("a.ko", b"A"), ("b.ko", b"B")]);
        image.extend(b"not read: the walk stops before this");
        let scan = scan(io::Cursor::new(image), select_ko, Some(1))?;
        assert_eq!(scan.files.len(), 1);
        assert_eq!(
            scan.segments[0].entries, 2,
            "the directory entry, then a.ko"
        );
        Ok(())
    }

    #[test]
    fn uncompressed_image_with_two_archives() -> Result<()> {
        let mut image = cpio(&[("a.ko", b"A")]);
        image.extend(cpio(&[("b.ko", b"BB")]));
        let scan = scan(io::Cursor::new(image), select_ko, None)?;
        assert_eq!(scan.compression(), Compression::None);
        let paths: Vec<_> = scan.files.iter().map(|f| f.path.as_str()).collect();
        assert_eq!(paths, ["a.ko", "b.ko"]);
        Ok(())
    }

    #[test]
    fn zstd_and_xz_segments_are_read() -> Result<()> {
        let archive = cpio(&[("lib/modules/k/updates/aacraid.ko", b"NEW")]);
        let mut zst = Vec::new();
        ruzstd::encoding::compress(
            io::Cursor::new(archive.clone()),
            &mut zst,
            ruzstd::encoding::CompressionLevel::Fastest,
        );
        let mut xz = Vec::new();
        lzma_rs::xz_compress(&mut io::Cursor::new(archive), &mut xz)?;
        for (image, expected) in [(zst, Compression::Zstd), (xz, Compression::Xz)] {
            let scan = scan(io::Cursor::new(early_plus(image)), select_ko, None)?;
            assert_eq!(scan.compression(), expected);
            assert_eq!(scan.files[0].data, b"NEW");
        }
        Ok(())
    }

    #[test]
    fn garbage_and_truncation_are_errors() {
        let err =
            scan(io::Cursor::new(b"hello world".to_vec()), select_ko, None).expect_err("garbage");
        assert!(
            err.to_string().contains("unrecognised data at byte 0"),
            "{err}"
        );
        let mut cut = cpio(&[("a.ko", b"AAAA")]);
        cut.truncate(130);
        assert!(scan(io::Cursor::new(cut), select_ko, None).is_err());
        let err = scan(io::Cursor::new(vec![0u8; 64]), select_ko, None).expect_err("empty");
        assert!(err.to_string().contains("the input is empty"), "{err}");
        let bz = b"BZh91AY&SY".to_vec();
        let err = scan(io::Cursor::new(bz), select_ko, None).expect_err("bzip2");
        assert!(format!("{err:#}").contains("not supported"), "{err:#}");
    }
}
