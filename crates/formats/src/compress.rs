//! Compression formats found in initramfs images and compressed kernel
//! modules (`.ko.gz`, `.ko.xz`, `.ko.zst`), recognised by their magic bytes
//! and decoded with pure-Rust decoders so the static build needs no C library.
//! Each decoder reads one stream and stops at its end; what it writes goes
//! through the caps of [`crate::limits`].
//!
//! [`Compression::store`] goes the other way for the formats whose streams
//! can hold data as it is (gzip's stored blocks, zstd's raw blocks): a valid
//! stream of that format, not a smaller one, with no encoder linked in.

use std::io::{self, BufRead, Read};

use serde::{Deserialize, Serialize};

use crate::limits::{Limit, MODULE_MAX};
use crate::lz4::{Lz4FrameReader, Lz4Reader};

/// A compression format, named as the tools name it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Compression {
    /// Not compressed.
    None,
    /// gzip (deflate).
    Gzip,
    /// xz (LZMA2).
    Xz,
    /// Zstandard.
    Zstd,
    /// Legacy LZMA ("lzma_alone", `lzma`).
    Lzma,
    /// bzip2; decoded with the `bzip2` feature (the image readers),
    /// recognised only without it.
    Bzip2,
    /// LZ4 legacy frames (`lz4 -l`, what the kernel reads in an initramfs).
    Lz4,
    /// LZ4 frames of the current format (`lz4` without `-l`), which the
    /// kernel's initramfs decompressor does not read.
    #[serde(rename = "lz4-frame")]
    Lz4Frame,
    /// LZO (lzop); recognised, not decoded.
    Lzo,
}

impl Compression {
    /// Recognises a format from the first bytes of a stream; `None` when the
    /// bytes match no known compressed format.
    pub fn sniff(head: &[u8]) -> Option<Compression> {
        const MAGICS: &[(&[u8], Compression)] = &[
            (&[0x1f, 0x8b], Compression::Gzip),
            (&[0xfd, b'7', b'z', b'X', b'Z', 0x00], Compression::Xz),
            (&[0x28, 0xb5, 0x2f, 0xfd], Compression::Zstd),
            (&crate::lz4::MAGIC, Compression::Lz4),
            (&crate::lz4::FRAME_MAGIC, Compression::Lz4Frame),
            (b"BZh", Compression::Bzip2),
            (&[0x89, b'L', b'Z', b'O'], Compression::Lzo),
            (&[0x5d, 0x00, 0x00], Compression::Lzma),
        ];
        MAGICS
            .iter()
            .find(|(magic, _)| head.starts_with(magic))
            .map(|(_, c)| *c)
    }

    /// The longest magic [`Compression::sniff`] needs to see.
    pub const MAGIC_LEN: usize = 6;

    /// The format's name in messages and facts.
    pub fn name(self) -> &'static str {
        match self {
            Compression::None => "none",
            Compression::Gzip => "gzip",
            Compression::Xz => "xz",
            Compression::Zstd => "zstd",
            Compression::Lzma => "lzma",
            Compression::Bzip2 => "bzip2",
            Compression::Lz4 => "lz4",
            Compression::Lz4Frame => "lz4-frame",
            Compression::Lzo => "lzo",
        }
    }

    /// `data` as one stream of this format, stored rather than compressed;
    /// `None` for the formats that cannot store data as it is (`None`
    /// itself gives the data back).
    pub fn store(self, data: &[u8]) -> Option<Vec<u8>> {
        match self {
            Compression::None => Some(data.to_vec()),
            Compression::Gzip => Some(gzip_stored(data)),
            Compression::Zstd => Some(zstd_raw(data)),
            _ => None,
        }
    }

    /// Wraps `input` in a streaming decoder of one stream of this format
    /// (see [`Stream`]).
    pub(crate) fn stream(self, input: Raw) -> io::Result<Stream> {
        Ok(match self {
            Compression::Gzip => Stream::Gzip(Box::new(flate2::bufread::GzDecoder::new(input))),
            #[cfg(feature = "zstd-c")]
            Compression::Zstd => {
                let mut decoder = zstd::stream::read::Decoder::with_buffer(input)?.single_frame();
                // libzstd reserves the window a frame names (memory is used
                // only as data is decoded); larger windows are refused.
                decoder.window_log_max(ZSTD_WINDOW_LOG_MAX)?;
                Stream::Zstd(Box::new(decoder))
            }
            #[cfg(not(feature = "zstd-c"))]
            Compression::Zstd => {
                let decoder = ruzstd::decoding::StreamingDecoder::new(input).map_err(|e| {
                    io::Error::new(io::ErrorKind::InvalidData, format!("zstd: {e}"))
                })?;
                Stream::Zstd(Box::new(decoder))
            }
            Compression::Xz => Stream::Threaded(Threaded::new(input, "xz", |i, o| {
                lzma_rs::xz_decompress(i, o)
            })?),
            Compression::Lzma => Stream::Threaded(Threaded::new(input, "lzma", |i, o| {
                lzma_rs::lzma_decompress(i, o)
            })?),
            Compression::Lz4 => Stream::Lz4(Box::new(Lz4Reader::new(input)?)),
            Compression::Lz4Frame => Stream::Lz4Frame(Box::new(Lz4FrameReader::new(input)?)),
            #[cfg(feature = "bzip2")]
            Compression::Bzip2 => Stream::Bzip2(Box::new(bzip2::bufread::BzDecoder::new(input))),
            other => {
                return Err(io::Error::new(
                    io::ErrorKind::Unsupported,
                    format!(
                        "{} compression is recognised but not supported",
                        other.name()
                    ),
                ))
            }
        })
    }
}

/// One gzip member (RFC 1952) of deflate stored blocks (RFC 1951 3.2.4):
/// no name, time 0, the CRC-32 and length of `data` at the end.
fn gzip_stored(data: &[u8]) -> Vec<u8> {
    let mut out = vec![0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 0xff];
    let mut blocks = data.chunks(0xffff).peekable();
    if blocks.peek().is_none() {
        out.extend_from_slice(&[1, 0, 0, 0xff, 0xff]);
    }
    while let Some(block) = blocks.next() {
        // BFINAL on the last, BTYPE 00; the block then starts on a byte.
        out.push(u8::from(blocks.peek().is_none()));
        let len = block.len() as u16;
        out.extend_from_slice(&len.to_le_bytes());
        out.extend_from_slice(&(!len).to_le_bytes());
        out.extend_from_slice(block);
    }
    let mut crc = flate2::Crc::new();
    crc.update(data);
    out.extend_from_slice(&crc.sum().to_le_bytes());
    out.extend_from_slice(&(data.len() as u32).to_le_bytes());
    out
}

/// One zstd frame (RFC 8878) of raw blocks: single segment, the content
/// size in 8 bytes (so the window is the content itself), no checksum.
fn zstd_raw(data: &[u8]) -> Vec<u8> {
    const BLOCK_MAX: usize = 128 << 10;
    let mut out = vec![0x28, 0xb5, 0x2f, 0xfd, 0b1110_0000];
    out.extend_from_slice(&(data.len() as u64).to_le_bytes());
    let mut blocks = data.chunks(BLOCK_MAX).peekable();
    if blocks.peek().is_none() {
        out.extend_from_slice(&[1, 0, 0]);
    }
    while let Some(block) = blocks.next() {
        // Last_Block in bit 0, Block_Type 0 (raw) in bits 1-2, the size above.
        let header = u32::from(blocks.peek().is_none()) | ((block.len() as u32) << 3);
        out.extend_from_slice(&header.to_le_bytes()[..3]);
        out.extend_from_slice(block);
    }
    out
}

/// The largest zstd window read, 2^27 bytes (libzstd's default limit; the
/// tools write 2^19 to 2^23 for initramfs images).
#[cfg(feature = "zstd-c")]
const ZSTD_WINDOW_LOG_MAX: u32 = 27;

/// Decodes a kernel module file, whatever its (supported) format; bytes
/// that match no magic are returned as they are. Fails once the output
/// passes [`MODULE_MAX`].
pub fn decode_all(data: Vec<u8>) -> io::Result<Vec<u8>> {
    decode_capped(data, MODULE_MAX)
}

fn decode_capped(data: Vec<u8>, cap: u64) -> io::Result<Vec<u8>> {
    match Compression::sniff(&data) {
        None | Some(Compression::None) => Ok(data),
        Some(c) => {
            let stream = c.stream(Buffered::new(Box::new(io::Cursor::new(data))))?;
            let mut out = Vec::new();
            Limit::new(stream, cap, "the module").read_to_end(&mut out)?;
            Ok(out)
        }
    }
}

/// The input every decoder reads: boxed, so that each decoder is compiled
/// once whatever the caller reads from.
pub(crate) type Raw = Buffered<Box<dyn Read + Send>>;

/// One compressed stream being decoded. It reads its input no further than
/// the stream's end, and gives the input back ([`Stream::finish`]) so that
/// a caller can go on with what follows, as the kernel does with the
/// segments of an initramfs image.
pub(crate) enum Stream {
    Gzip(Box<flate2::bufread::GzDecoder<Raw>>),
    #[cfg(not(feature = "zstd-c"))]
    Zstd(Box<ruzstd::decoding::StreamingDecoder<Raw, ruzstd::decoding::FrameDecoder>>),
    #[cfg(feature = "zstd-c")]
    Zstd(Box<zstd::stream::read::Decoder<'static, Raw>>),
    Threaded(Threaded),
    Lz4(Box<Lz4Reader>),
    Lz4Frame(Box<Lz4FrameReader>),
    #[cfg(feature = "bzip2")]
    Bzip2(Box<bzip2::bufread::BzDecoder<Raw>>),
}

impl Stream {
    /// The input, positioned right after the stream, which must have been
    /// read to its end.
    pub(crate) fn finish(self) -> io::Result<Raw> {
        match self {
            Stream::Gzip(d) => Ok(d.into_inner()),
            #[cfg(not(feature = "zstd-c"))]
            Stream::Zstd(d) => Ok(d.into_inner()),
            #[cfg(feature = "zstd-c")]
            Stream::Zstd(d) => Ok(d.finish()),
            Stream::Threaded(d) => d.rest.ok_or_else(|| {
                io::Error::other(format!("the {} stream was not read to its end", d.format))
            }),
            Stream::Lz4(d) => d.finish(),
            Stream::Lz4Frame(d) => d.finish(),
            #[cfg(feature = "bzip2")]
            Stream::Bzip2(d) => Ok(d.into_inner()),
        }
    }
}

impl Read for Stream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Stream::Gzip(d) => d.read(buf),
            Stream::Zstd(d) => d.read(buf),
            Stream::Threaded(d) => d.read(buf),
            Stream::Lz4(d) => d.read(buf),
            Stream::Lz4Frame(d) => d.read(buf),
            #[cfg(feature = "bzip2")]
            Stream::Bzip2(d) => d.read(buf),
        }
    }
}

/// lzma-rs decodes xz and lzma into a writer, not as a reader; this runs it
/// on a thread feeding a pipe so those streams can be read like the other
/// formats, without holding the whole output in memory. The thread blocks
/// while nobody reads, so a reader that stops (at a cap) stops it too; it
/// hands its input back when the stream ends.
pub(crate) struct Threaded {
    format: &'static str,
    pipe: io::PipeReader,
    worker: Option<std::thread::JoinHandle<io::Result<Raw>>>,
    rest: Option<Raw>,
}

type Decode = fn(&mut Raw, &mut io::PipeWriter) -> lzma_rs::error::Result<()>;

impl Threaded {
    fn new(mut input: Raw, format: &'static str, decode: Decode) -> io::Result<Self> {
        let (reader, mut writer) = io::pipe()?;
        let worker = std::thread::spawn(move || match decode(&mut input, &mut writer) {
            Ok(()) => Ok(input),
            // lzma-rs wants the input to end with the stream; what follows
            // is the caller's (the next segment of an image).
            Err(lzma_rs::error::Error::XzError(m))
                if m == "Unexpected data after last XZ block" =>
            {
                Ok(input)
            }
            Err(e) => Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!("{format}: {e}"),
            )),
        });
        Ok(Threaded {
            format,
            pipe: reader,
            worker: Some(worker),
            rest: None,
        })
    }
}

impl Read for Threaded {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.pipe.read(buf)?;
        if n == 0 {
            if let Some(worker) = self.worker.take() {
                let input = worker.join().map_err(|_| {
                    io::Error::other(format!("{} decoder thread panicked", self.format))
                })??;
                self.rest = Some(input);
            }
        }
        Ok(n)
    }
}

/// A buffered reader that counts its position and can look ahead; the
/// decoders read it as a `BufRead`, taking no more than they use.
pub(crate) struct Buffered<R> {
    inner: R,
    buf: Vec<u8>,
    start: usize,
    end: usize,
    /// Bytes consumed so far.
    pub(crate) pos: u64,
}

impl<R: Read> Buffered<R> {
    pub(crate) fn new(inner: R) -> Self {
        Buffered {
            inner,
            buf: vec![0; 64 << 10],
            start: 0,
            end: 0,
            pos: 0,
        }
    }

    pub(crate) fn into_inner(self) -> R {
        self.inner
    }

    /// Up to `n` upcoming bytes (fewer only at the end of the input);
    /// `n` is at most the buffer's size.
    pub(crate) fn peek(&mut self, n: usize) -> io::Result<&[u8]> {
        if self.end - self.start < n {
            self.buf.copy_within(self.start..self.end, 0);
            self.end -= self.start;
            self.start = 0;
            while self.end < n {
                let got = self.inner.read(&mut self.buf[self.end..])?;
                if got == 0 {
                    break;
                }
                self.end += got;
            }
        }
        Ok(&self.buf[self.start..self.end.min(self.start + n)])
    }

    /// Skips `n` bytes; fails when the input ends first.
    pub(crate) fn skip(&mut self, mut n: u64) -> io::Result<()> {
        while n > 0 {
            let have = self.fill_buf()?.len();
            if have == 0 {
                return Err(io::ErrorKind::UnexpectedEof.into());
            }
            let step = have.min(usize::try_from(n).unwrap_or(usize::MAX));
            self.consume(step);
            n -= step as u64;
        }
        Ok(())
    }

    /// Skips padding so the position is a multiple of `to` from `start`.
    pub(crate) fn align(&mut self, start: u64, to: u64) -> io::Result<()> {
        let rem = (self.pos - start) % to;
        if rem != 0 {
            self.skip(to - rem)?;
        }
        Ok(())
    }

    /// Skips zero bytes.
    pub(crate) fn skip_zeros(&mut self) -> io::Result<()> {
        loop {
            let head = self.fill_buf()?;
            let zeros = head.iter().take_while(|&&b| b == 0).count();
            if zeros == 0 {
                return Ok(());
            }
            self.consume(zeros);
        }
    }
}

impl<R: Read> BufRead for Buffered<R> {
    fn fill_buf(&mut self) -> io::Result<&[u8]> {
        if self.start == self.end {
            self.start = 0;
            self.end = self.inner.read(&mut self.buf)?;
        }
        Ok(&self.buf[self.start..self.end])
    }

    fn consume(&mut self, n: usize) {
        let n = n.min(self.end - self.start);
        self.start += n;
        self.pos += n as u64;
    }
}

impl<R: Read> Read for Buffered<R> {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        let have = self.fill_buf()?;
        let n = have.len().min(out.len());
        out[..n].copy_from_slice(&have[..n]);
        self.consume(n);
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A small file that decompresses to more than the cap (a `.ko.xz`
    /// bomb) used to be decoded whole: now decoding stops at the cap,
    /// whatever the format, and the xz thread stops with its reader.
    #[test]
    fn decoding_stops_at_the_cap() -> io::Result<()> {
        let zeros = vec![0u8; 2 << 20];
        let mut xz = Vec::new();
        lzma_rs::xz_compress(&mut io::Cursor::new(&zeros), &mut xz)?;
        let mut zst = Vec::new();
        ruzstd::encoding::compress(
            io::Cursor::new(&zeros),
            &mut zst,
            ruzstd::encoding::CompressionLevel::Fastest,
        );
        let gz = crate::testing::gzip(&zeros);
        for packed in [xz, zst, gz] {
            let err = decode_capped(packed.clone(), 1 << 20).expect_err("past the cap");
            assert!(
                err.to_string()
                    .contains("the module holds more than 1 MiB once decompressed"),
                "{err}"
            );
            assert_eq!(decode_capped(packed, 2 << 20)?.len(), 2 << 20);
        }
        Ok(())
    }

    /// What `store` writes is read back by our decoders, whole and as
    /// consecutive streams, from 0 bytes to several blocks.
    #[test]
    fn stored_streams_read_back() -> io::Result<()> {
        let big: Vec<u8> = (0..300_000u32).map(|i| (i % 251) as u8).collect();
        for data in [&b""[..], b"x", &big[..]] {
            for c in [Compression::Gzip, Compression::Zstd, Compression::None] {
                let stored = c.store(data).expect("a storing format");
                assert_eq!(
                    Compression::sniff(&stored),
                    (c != Compression::None).then_some(c)
                );
                assert_eq!(
                    decode_capped(stored, 1 << 20)?,
                    data,
                    "{c:?} of {} bytes",
                    data.len()
                );
            }
        }
        for c in [
            Compression::Xz,
            Compression::Lzma,
            Compression::Lz4,
            Compression::Bzip2,
        ] {
            assert_eq!(c.store(b"x"), None);
        }
        Ok(())
    }

    /// A zstd frame whose header names a window past 2^27 bytes is refused
    /// by libzstd before anything is reserved for it; 2^20 is read.
    #[cfg(feature = "zstd-c")]
    #[test]
    fn a_zstd_window_past_the_limit_is_refused() {
        let frame = |window_descriptor: u8| {
            let mut f = vec![0x28, 0xb5, 0x2f, 0xfd, 0x00, window_descriptor];
            f.extend_from_slice(&[(1 << 3) | 1, 0, 0, b'x']);
            f
        };
        assert_eq!(decode_capped(frame(10 << 3), 1 << 20).expect("2^20"), b"x");
        assert!(decode_capped(frame(18 << 3), 1 << 20).is_err(), "2^28");
    }
}
