//! Compression formats found in initramfs images and compressed kernel
//! modules (`.ko.gz`, `.ko.xz`, `.ko.zst`), recognised by their magic bytes
//! and decoded with pure-Rust decoders so the static build needs no C library.

use std::io::{self, Read};

use serde::Serialize;

/// A compression format, named as the tools name it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
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
    /// Legacy LZMA ("lzma_alone"); recognised, not decoded.
    Lzma,
    /// bzip2; recognised, not decoded.
    Bzip2,
    /// LZ4 legacy frames (the kernel's `lz4 -l`); recognised, not decoded.
    Lz4,
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
            (&[0x02, 0x21, 0x4c, 0x18], Compression::Lz4),
            (&[0x04, 0x22, 0x4d, 0x18], Compression::Lz4),
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

    /// Wraps `input` in a streaming decoder for this format. The input is
    /// taken boxed so that each decoder is compiled once, whatever reads it.
    pub fn decoder(self, input: Box<dyn Read + Send>) -> io::Result<Box<dyn Read + Send>> {
        match self {
            Compression::None => Ok(Box::new(input)),
            Compression::Gzip => Ok(Box::new(flate2::read::MultiGzDecoder::new(input))),
            Compression::Zstd => {
                let decoder = ruzstd::decoding::StreamingDecoder::new(input).map_err(|e| {
                    io::Error::new(io::ErrorKind::InvalidData, format!("zstd: {e}"))
                })?;
                Ok(Box::new(decoder))
            }
            Compression::Xz => Ok(Box::new(XzReader::new(input)?)),
            other => Err(io::Error::new(
                io::ErrorKind::Unsupported,
                format!("{other:?} compression is recognised but not supported"),
            )),
        }
    }
}

/// Decodes a whole buffer, whatever its (supported) format; bytes that match
/// no magic are returned as they are.
pub fn decode_all(data: Vec<u8>) -> io::Result<Vec<u8>> {
    match Compression::sniff(&data) {
        None | Some(Compression::None) => Ok(data),
        Some(c) => {
            let mut out = Vec::with_capacity(data.len() * 3);
            c.decoder(Box::new(io::Cursor::new(data)))?
                .read_to_end(&mut out)?;
            Ok(out)
        }
    }
}

/// lzma-rs decodes xz into a writer, not as a reader; this runs it on a
/// thread feeding a pipe so xz streams can be read like the other formats,
/// without holding the whole decompressed image in memory.
struct XzReader {
    pipe: io::PipeReader,
    worker: Option<std::thread::JoinHandle<io::Result<()>>>,
}

impl XzReader {
    fn new<R: Read + Send + 'static>(input: R) -> io::Result<Self> {
        let (reader, mut writer) = io::pipe()?;
        let worker = std::thread::spawn(move || {
            let mut buffered = io::BufReader::new(input);
            lzma_rs::xz_decompress(&mut buffered, &mut writer)
                .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, format!("xz: {e}")))
        });
        Ok(XzReader {
            pipe: reader,
            worker: Some(worker),
        })
    }
}

impl Read for XzReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.pipe.read(buf)?;
        if n == 0 {
            if let Some(worker) = self.worker.take() {
                worker
                    .join()
                    .map_err(|_| io::Error::other("xz decoder thread panicked"))??;
            }
        }
        Ok(n)
    }
}
