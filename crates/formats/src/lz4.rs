//! LZ4 streams. The legacy frame format is what the kernel's initramfs
//! decompressor reads (`lz4 -l`, Ubuntu 20.04's default for initramfs
//! images): the magic `02 21 4c 18`, then blocks, each a little-endian
//! 32-bit compressed size and an LZ4 block that decodes to at most 8 MiB. A
//! repeated magic starts a new stream and is skipped; the stream ends where
//! the input ends.
//!
//! The current frame format (`lz4` without `-l`; the kernel does not read
//! it, but an image written so is still read here, to say what it holds):
//! the magic `04 22 4d 18`, a descriptor (flags, the block size, optionally
//! the content size; a header checksum), then blocks of at most 64 KiB to 4
//! MiB, each a 32-bit size whose top bit marks a stored block, optionally
//! followed by a block checksum; a zero size ends the frame, optionally
//! followed by a content checksum. Blocks may refer back into the previous
//! 64 KiB of output ("linked"). The checksums (xxHash32) are skipped, not
//! checked: what the image holds is judged by the SHA-256 of its files.

use std::io::{self, Read};

use crate::compress::Raw;

/// The legacy frame magic, as it appears on disk.
pub(crate) const MAGIC: [u8; 4] = [0x02, 0x21, 0x4c, 0x18];

/// The current frame format's magic, as it appears on disk.
pub(crate) const FRAME_MAGIC: [u8; 4] = [0x04, 0x22, 0x4d, 0x18];

/// How far back a linked block may refer.
const WINDOW: usize = 64 << 10;

/// The most one legacy block decodes to.
const BLOCK_MAX: usize = 8 << 20;

/// The most one compressed block may take: LZ4's bound for [`BLOCK_MAX`].
const COMPRESSED_MAX: u32 = (BLOCK_MAX + BLOCK_MAX / 255 + 16) as u32;

/// Reads an LZ4 legacy stream block by block; the compressed block is read
/// as it arrives (not allocated from its size field), and a block that
/// decodes past 8 MiB is an error.
pub(crate) struct Lz4Reader {
    input: Raw,
    out: Output,
}

/// What a block decoder has made and not yet handed out: the kept window
/// of earlier output (linked frames), then the last block, read from `at`.
#[derive(Default)]
struct Output {
    block: Vec<u8>,
    at: usize,
    ended: bool,
}

/// A decoder that makes its output one block at a time.
trait Blocks {
    fn output(&mut self) -> &mut Output;
    /// Decodes the next block into the output; false at the stream's end.
    fn next_block(&mut self) -> io::Result<bool>;
}

/// `Read` for a [`Blocks`] decoder: hands out the current block, then decodes the next.
fn read_blocks(decoder: &mut impl Blocks, buf: &mut [u8]) -> io::Result<usize> {
    loop {
        let out = decoder.output();
        if out.at < out.block.len() {
            let n = buf.len().min(out.block.len() - out.at);
            buf[..n].copy_from_slice(&out.block[out.at..out.at + n]);
            out.at += n;
            return Ok(n);
        }
        if out.ended || !decoder.next_block()? {
            decoder.output().ended = true;
            return Ok(0);
        }
    }
}

/// The input after a stream, which must have been read to its end.
fn input_after(out: &Output, input: Raw, what: &str) -> io::Result<Raw> {
    if out.ended {
        Ok(input)
    } else {
        Err(io::Error::other(format!(
            "the lz4 {what} was not read to its end"
        )))
    }
}

impl Lz4Reader {
    /// `input` must start with [`MAGIC`].
    pub(crate) fn new(mut input: Raw) -> io::Result<Self> {
        let mut magic = [0u8; 4];
        input.read_exact(&mut magic)?;
        if magic != MAGIC {
            return Err(invalid("lz4: not a legacy frame"));
        }
        Ok(Lz4Reader {
            input,
            out: Output::default(),
        })
    }

    /// The input after the stream (its end: the format has no end marker).
    pub(crate) fn finish(self) -> io::Result<Raw> {
        input_after(&self.out, self.input, "stream")
    }
}

impl Blocks for Lz4Reader {
    fn output(&mut self) -> &mut Output {
        &mut self.out
    }

    fn next_block(&mut self) -> io::Result<bool> {
        loop {
            let head = self.input.peek(4)?;
            if head.is_empty() {
                return Ok(false);
            }
            if head.len() < 4 {
                return Err(invalid("lz4: the stream ends inside a block size"));
            }
            let size = u32::from_le_bytes([head[0], head[1], head[2], head[3]]);
            self.input.skip(4)?;
            if size.to_le_bytes() == MAGIC {
                continue;
            }
            if size == 0 || size > COMPRESSED_MAX {
                return Err(invalid(&format!(
                    "lz4: a block claims {size} bytes (at most {COMPRESSED_MAX})"
                )));
            }
            let mut packed = Vec::new();
            (&mut self.input)
                .take(u64::from(size))
                .read_to_end(&mut packed)?;
            if packed.len() != size as usize {
                return Err(invalid("lz4: the stream ends inside a block"));
            }
            self.out.block.clear();
            decode_block(&packed, &mut self.out.block, 0, BLOCK_MAX)?;
            self.out.at = 0;
            return Ok(true);
        }
    }
}

impl Read for Lz4Reader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        read_blocks(self, buf)
    }
}

/// Reads one LZ4 frame of the current format, block by block (sizes
/// checked against the frame's block size before anything is read).
pub(crate) struct Lz4FrameReader {
    input: Raw,
    out: Output,
    linked: bool,
    block_checksums: bool,
    content_checksum: bool,
    max: usize,
}

impl Lz4FrameReader {
    /// `input` must start with [`FRAME_MAGIC`].
    pub(crate) fn new(mut input: Raw) -> io::Result<Self> {
        let mut head = [0u8; 6];
        input.read_exact(&mut head)?;
        if head[..4] != FRAME_MAGIC {
            return Err(invalid("lz4: not a frame"));
        }
        let (flags, sizes) = (head[4], head[5]);
        if flags >> 6 != 1 {
            return Err(invalid(&format!(
                "lz4: frame version {} (only 1 exists)",
                flags >> 6
            )));
        }
        if flags & 0x02 != 0 || sizes & 0x8f != 0 {
            return Err(invalid(
                "lz4: reserved bits are set in the frame descriptor",
            ));
        }
        if flags & 0x01 != 0 {
            return Err(io::Error::new(
                io::ErrorKind::Unsupported,
                "lz4: the frame needs a preset dictionary, which is not supported",
            ));
        }
        let max = match (sizes >> 4) & 7 {
            4 => 64 << 10,
            5 => 256 << 10,
            6 => 1 << 20,
            7 => 4 << 20,
            other => {
                return Err(invalid(&format!(
                    "lz4: block size code {other} (4 to 7 exist)"
                )))
            }
        };
        // The content size (when present), then the header checksum.
        input.skip(if flags & 0x08 != 0 { 9 } else { 1 })?;
        Ok(Lz4FrameReader {
            input,
            out: Output::default(),
            linked: flags & 0x20 == 0,
            block_checksums: flags & 0x10 != 0,
            content_checksum: flags & 0x04 != 0,
            max,
        })
    }

    /// The input after the frame, which must have been read to its end.
    pub(crate) fn finish(self) -> io::Result<Raw> {
        input_after(&self.out, self.input, "frame")
    }
}

impl Blocks for Lz4FrameReader {
    fn output(&mut self) -> &mut Output {
        &mut self.out
    }

    /// Decodes the next block after the kept window; false at the frame's end.
    fn next_block(&mut self) -> io::Result<bool> {
        let mut word = [0u8; 4];
        self.input
            .read_exact(&mut word)
            .map_err(|_| invalid("lz4: the frame ends inside a block size"))?;
        let size = u32::from_le_bytes(word);
        if size == 0 {
            if self.content_checksum {
                self.input.skip(4)?;
            }
            return Ok(false);
        }
        let (stored, len) = (size & 0x8000_0000 != 0, (size & 0x7fff_ffff) as usize);
        if len > self.max {
            return Err(invalid(&format!(
                "lz4: a block claims {len} bytes, more than the frame's {} KiB blocks",
                self.max >> 10
            )));
        }
        let mut packed = Vec::new();
        (&mut self.input)
            .take(len as u64)
            .read_to_end(&mut packed)?;
        if packed.len() != len {
            return Err(invalid("lz4: the frame ends inside a block"));
        }
        if self.block_checksums {
            self.input.skip(4)?;
        }
        let block = &mut self.out.block;
        let keep = if self.linked {
            block.len().min(WINDOW)
        } else {
            0
        };
        block.drain(..block.len() - keep);
        if stored {
            block.extend_from_slice(&packed);
        } else {
            decode_block(&packed, block, keep, self.max)?;
        }
        self.out.at = keep;
        Ok(true)
    }
}

impl Read for Lz4FrameReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        read_blocks(self, buf)
    }
}

/// Decodes one LZ4 block (sequences of literals and back-references) onto
/// the end of `out`, which may grow by at most `max` bytes; matches may
/// reach `history` bytes before the block (what `out` held last).
pub(crate) fn decode_block(
    packed: &[u8],
    out: &mut Vec<u8>,
    history: usize,
    max: usize,
) -> io::Result<()> {
    let start = out.len();
    let mut input = packed.iter().copied();
    let length = |first: u8, input: &mut dyn Iterator<Item = u8>| -> io::Result<usize> {
        let mut n = usize::from(first);
        if first == 15 {
            loop {
                let more = input
                    .next()
                    .ok_or_else(|| invalid("lz4: a block ends inside a length"))?;
                n = n.saturating_add(usize::from(more));
                if more != 255 {
                    break;
                }
            }
        }
        Ok(n)
    };
    while let Some(token) = input.next() {
        let literals = length(token >> 4, &mut input)?;
        if out.len() - start + literals > max {
            return Err(too_large(max));
        }
        for _ in 0..literals {
            out.push(
                input
                    .next()
                    .ok_or_else(|| invalid("lz4: a block ends inside its literals"))?,
            );
        }
        let (Some(low), Some(high)) = (input.next(), input.next()) else {
            // The last sequence holds literals only.
            break;
        };
        let offset = usize::from(u16::from_le_bytes([low, high]));
        if offset == 0 || offset > out.len() - start + history {
            return Err(invalid(&format!(
                "lz4: a match points {offset} bytes back, before the block's start"
            )));
        }
        let matched = length(token & 15, &mut input)?.saturating_add(4);
        if out.len() - start + matched > max {
            return Err(too_large(max));
        }
        // Byte by byte: a match may overlap what it copies.
        let from = out.len() - offset;
        for i in 0..matched {
            out.push(out[from + i]);
        }
    }
    Ok(())
}

fn too_large(max: usize) -> io::Error {
    invalid(&format!(
        "lz4: a block decodes to more than {} KiB",
        max >> 10
    ))
}

fn invalid(msg: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, msg.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::compress::Buffered;

    fn reader(data: Vec<u8>) -> io::Result<Lz4Reader> {
        Lz4Reader::new(Buffered::new(Box::new(io::Cursor::new(data))))
    }

    /// Made with the real tool: `printf 'abcabcabcabcabcabcabcabc\n' | lz4 -l -9`.
    const REAL: &[u8] = &[
        0x02, 0x21, 0x4c, 0x18, 0x0c, 0x00, 0x00, 0x00, 0x3d, 0x61, 0x62, 0x63, 0x03, 0x00, 0x50,
        0x63, 0x61, 0x62, 0x63, 0x0a,
    ];

    #[test]
    fn a_stream_from_the_real_tool_decodes() -> io::Result<()> {
        let mut out = Vec::new();
        reader(REAL.to_vec())?.read_to_end(&mut out)?;
        assert_eq!(out, b"abcabcabcabcabcabcabcabc\n");
        Ok(())
    }

    #[test]
    fn a_repeated_magic_starts_a_new_stream() -> io::Result<()> {
        let mut twice = REAL.to_vec();
        twice.extend_from_slice(REAL);
        let mut out = Vec::new();
        reader(twice)?.read_to_end(&mut out)?;
        assert_eq!(out, b"abcabcabcabcabcabcabcabc\n".repeat(2));
        Ok(())
    }

    #[test]
    fn broken_streams_are_errors() {
        let cases: [(Vec<u8>, &str); 5] = [
            (REAL[..REAL.len() - 3].to_vec(), "ends inside a block"),
            (REAL[..6].to_vec(), "ends inside a block size"),
            (
                [&MAGIC[..], &[0xff, 0xff, 0xff, 0x7f]].concat(),
                "a block claims 2147483647 bytes",
            ),
            (
                [&MAGIC[..], &[3, 0, 0, 0, 0x00, 0x09, 0x00]].concat(),
                "points 9 bytes back",
            ),
            (
                [&MAGIC[..], &[2, 0, 0, 0, 0xf0, 0xff]].concat(),
                "ends inside a length",
            ),
        ];
        for (data, why) in cases {
            let mut out = Vec::new();
            let err = reader(data)
                .and_then(|mut r| r.read_to_end(&mut out))
                .expect_err(why);
            assert!(err.to_string().contains(why), "{err} / {why}");
        }
    }

    fn frame(data: &[u8]) -> io::Result<(Vec<u8>, Raw)> {
        let mut reader =
            Lz4FrameReader::new(Buffered::new(Box::new(io::Cursor::new(data.to_vec()))))?;
        let mut out = Vec::new();
        reader.read_to_end(&mut out)?;
        Ok((out, reader.finish()?))
    }

    fn sha256(data: &[u8]) -> String {
        use sha2::Digest;
        format!("{:x}", sha2::Sha256::digest(data))
    }

    /// Frames from the real tool (tests/fixtures/SOURCES.md): linked blocks,
    /// independent blocks with checksums and the content size, a stored block.
    #[test]
    fn frames_from_the_real_tool_decode() -> io::Result<()> {
        const REPEATED: &str = "a86fe96ff7884d4f41a9f357335b86a47a7fbb7a0c59e1b1c418841db1b0a142";
        let cases: [(&[u8], &str, usize); 3] = [
            (
                include_bytes!("../tests/fixtures/lz4/linked.lz4"),
                REPEATED,
                150_000,
            ),
            (
                include_bytes!("../tests/fixtures/lz4/independent.lz4"),
                REPEATED,
                150_000,
            ),
            (
                include_bytes!("../tests/fixtures/lz4/stored.lz4"),
                "db6fa9300d01bb04b1f7613a23d7801e40274188d12f0fe18c59d25588ff2fbc",
                300,
            ),
        ];
        for (data, digest, len) in cases {
            let mut followed = data.to_vec();
            followed.extend_from_slice(b"NEXT");
            let (out, mut rest) = frame(&followed)?;
            assert_eq!((out.len(), sha256(&out).as_str()), (len, digest));
            let mut after = Vec::new();
            rest.read_to_end(&mut after)?;
            assert_eq!(
                after, b"NEXT",
                "the frame ends at its end mark and checksum"
            );
        }
        Ok(())
    }

    #[test]
    fn broken_frames_are_errors() {
        let linked = include_bytes!("../tests/fixtures/lz4/linked.lz4");
        let unlinked = {
            // The same blocks marked independent: the second one's matches reach before it.
            let mut d = linked.to_vec();
            d[4] |= 0x20;
            d
        };
        let cases: [(Vec<u8>, &str); 6] = [
            (linked[..linked.len() - 40].to_vec(), "ends inside a block"),
            (
                [&FRAME_MAGIC[..], &[0x80, 0x40, 0]].concat(),
                "frame version 2",
            ),
            (
                [&FRAME_MAGIC[..], &[0x41, 0x40, 0]].concat(),
                "preset dictionary",
            ),
            (
                [&FRAME_MAGIC[..], &[0x60, 0x30, 0]].concat(),
                "block size code 3",
            ),
            (
                [
                    &FRAME_MAGIC[..],
                    &[0x60, 0x40, 0],
                    &[0x01, 0x00, 0x01, 0x00],
                ]
                .concat(),
                "claims 65537 bytes, more than the frame's 64 KiB blocks",
            ),
            (unlinked, "before the block's start"),
        ];
        for (data, why) in cases {
            let err = frame(&data).map(|(out, _)| out).expect_err(why);
            assert!(err.to_string().contains(why), "{err} / {why}");
        }
    }

    #[test]
    fn a_block_cannot_decode_past_its_limit() {
        // One literal, then a match of 4 + 15 + 255 * n bytes.
        let mut block = vec![0x1f, b'x', 1, 0];
        block.extend(std::iter::repeat_n(255, 40_000));
        block.push(0);
        let mut out = Vec::new();
        let err = decode_block(&block, &mut out, 0, BLOCK_MAX).expect_err("past 8 MiB");
        assert!(err.to_string().contains("more than 8192 KiB"), "{err}");
        out.clear();
        decode_block(&[0x12, b'x', 1, 0], &mut out, 0, BLOCK_MAX).expect("a short match");
        assert_eq!(out, b"xxxxxxx");
    }
}
