//! LZ4 in the legacy frame format that the kernel's initramfs decompressor
//! reads (`lz4 -l`, Ubuntu 20.04's default for initramfs images): the magic
//! `02 21 4c 18`, then blocks, each a little-endian 32-bit compressed size
//! and an LZ4 block that decodes to at most 8 MiB. A repeated magic starts a
//! new stream and is skipped; the stream ends where the input ends.

use std::io::{self, Read};

use crate::compress::Raw;

/// The legacy frame magic, as it appears on disk.
pub(crate) const MAGIC: [u8; 4] = [0x02, 0x21, 0x4c, 0x18];

/// The most one legacy block decodes to.
const BLOCK_MAX: usize = 8 << 20;

/// The most one compressed block may take: LZ4's bound for [`BLOCK_MAX`].
const COMPRESSED_MAX: u32 = (BLOCK_MAX + BLOCK_MAX / 255 + 16) as u32;

/// Reads an LZ4 legacy stream block by block; the compressed block is read
/// as it arrives (not allocated from its size field), and a block that
/// decodes past 8 MiB is an error.
pub(crate) struct Lz4Reader {
    input: Raw,
    block: Vec<u8>,
    at: usize,
    ended: bool,
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
            block: Vec::new(),
            at: 0,
            ended: false,
        })
    }

    /// The input after the stream (its end: the format has no end marker).
    pub(crate) fn finish(self) -> io::Result<Raw> {
        if self.ended {
            Ok(self.input)
        } else {
            Err(io::Error::other("the lz4 stream was not read to its end"))
        }
    }

    /// Decodes the next block into `self.block`; false at the end.
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
            self.block.clear();
            decode_block(&packed, &mut self.block, BLOCK_MAX)?;
            self.at = 0;
            return Ok(true);
        }
    }
}

impl Read for Lz4Reader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        while self.at == self.block.len() {
            if self.ended || !self.next_block()? {
                self.ended = true;
                return Ok(0);
            }
        }
        let n = buf.len().min(self.block.len() - self.at);
        buf[..n].copy_from_slice(&self.block[self.at..self.at + n]);
        self.at += n;
        Ok(n)
    }
}

/// Decodes one LZ4 block (sequences of literals and back-references) onto
/// the end of `out`, which may grow by at most `max` bytes.
pub(crate) fn decode_block(packed: &[u8], out: &mut Vec<u8>, max: usize) -> io::Result<()> {
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
            return Err(invalid("lz4: a block decodes to more than 8 MiB"));
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
        if offset == 0 || offset > out.len() - start {
            return Err(invalid(&format!(
                "lz4: a match points {offset} bytes back, before the block's start"
            )));
        }
        let matched = length(token & 15, &mut input)?.saturating_add(4);
        if out.len() - start + matched > max {
            return Err(invalid("lz4: a block decodes to more than 8 MiB"));
        }
        // Byte by byte: a match may overlap what it copies.
        let from = out.len() - offset;
        for i in 0..matched {
            out.push(out[from + i]);
        }
    }
    Ok(())
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

    #[test]
    fn a_block_cannot_decode_past_its_limit() {
        // One literal, then a match of 4 + 15 + 255 * n bytes.
        let mut block = vec![0x1f, b'x', 1, 0];
        block.extend(std::iter::repeat_n(255, 40_000));
        block.push(0);
        let mut out = Vec::new();
        let err = decode_block(&block, &mut out, BLOCK_MAX).expect_err("past 8 MiB");
        assert!(err.to_string().contains("more than 8 MiB"), "{err}");
        out.clear();
        decode_block(&[0x12, b'x', 1, 0], &mut out, BLOCK_MAX).expect("a short match");
        assert_eq!(out, b"xxxxxxx");
    }
}
