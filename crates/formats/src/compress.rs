//! Compression formats found in initramfs images and compressed kernel
//! modules (`.ko.gz`, `.ko.xz`, `.ko.zst`), recognised by their magic bytes
//! and decoded with pure-Rust decoders so the static build needs no C library.
//! Each decoder reads one stream and stops at its end; what it writes goes
//! through the caps of [`crate::limits`].

use std::io::{self, BufRead, Read};

use serde::{Deserialize, Serialize};

use crate::limits::{Limit, MODULE_MAX};
use crate::lz4::Lz4Reader;

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
    /// bzip2; recognised, not decoded.
    Bzip2,
    /// LZ4 legacy frames (`lz4 -l`, what the kernel reads in an initramfs).
    Lz4,
    /// LZ4 frames of the current format (`lz4` without `-l`), which the
    /// kernel's initramfs decompressor does not read; recognised, not decoded.
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
            (&[0x04, 0x22, 0x4d, 0x18], Compression::Lz4Frame),
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

    /// Wraps `input` in a streaming decoder of one stream of this format
    /// (see [`Stream`]).
    pub(crate) fn stream(self, input: Raw) -> io::Result<Stream> {
        Ok(match self {
            Compression::Gzip => Stream::Gzip(Box::new(flate2::bufread::GzDecoder::new(input))),
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
    Zstd(Box<ruzstd::decoding::StreamingDecoder<Raw, ruzstd::decoding::FrameDecoder>>),
    Threaded(Threaded),
    Lz4(Box<Lz4Reader>),
}

impl Stream {
    /// The input, positioned right after the stream, which must have been
    /// read to its end.
    pub(crate) fn finish(self) -> io::Result<Raw> {
        match self {
            Stream::Gzip(d) => Ok(d.into_inner()),
            Stream::Zstd(d) => Ok(d.into_inner()),
            Stream::Threaded(d) => d.rest.ok_or_else(|| {
                io::Error::other(format!("the {} stream was not read to its end", d.format))
            }),
            Stream::Lz4(d) => d.finish(),
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
}
