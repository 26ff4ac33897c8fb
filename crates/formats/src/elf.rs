//! The `.modinfo` section of a kernel module (an ELF relocatable object):
//! NUL-separated `key=value` strings such as `version=1.2-1.41024dkms`,
//! `srcversion=…`, `vermagic=…`, `name=aacraid`. This is what `modinfo`
//! prints for a file, read here without running anything.

use anyhow::{bail, ensure, Context, Result};

/// The `key=value` pairs of the `.modinfo` section, in file order
/// (keys such as `alias` repeat).
pub fn modinfo_section(elf: &[u8]) -> Result<Vec<(String, String)>> {
    ensure!(
        elf.len() >= 64 && elf.starts_with(b"\x7fELF"),
        "not an ELF file"
    );
    let class64 = match elf[4] {
        1 => false,
        2 => true,
        c => bail!("bad ELF class {c}"),
    };
    let little = match elf[5] {
        1 => true,
        2 => false,
        d => bail!("bad ELF data encoding {d}"),
    };
    let rd = Reader { elf, little };
    let (shoff, shentsize, shnum, shstrndx) = if class64 {
        (rd.u64(0x28)?, rd.u16(0x3a)?, rd.u16(0x3c)?, rd.u16(0x3e)?)
    } else {
        (
            u64::from(rd.u32(0x20)?),
            rd.u16(0x2e)?,
            rd.u16(0x30)?,
            rd.u16(0x32)?,
        )
    };
    let section = |index: u16| -> Result<(u32, u64, u64)> {
        // Header offsets are the file's word: a forged one must not wrap.
        let base = usize::try_from(shoff)
            .ok()
            .and_then(|off| off.checked_add(usize::from(index) * usize::from(shentsize)))
            .context("ELF section header offset overflows")?;
        Ok(if class64 {
            (
                rd.u32(base)?,
                rd.u64(base.saturating_add(0x18))?,
                rd.u64(base.saturating_add(0x20))?,
            )
        } else {
            (
                rd.u32(base)?,
                u64::from(rd.u32(base.saturating_add(0x10))?),
                u64::from(rd.u32(base.saturating_add(0x14))?),
            )
        })
    };
    ensure!(
        shstrndx < shnum,
        "ELF section name table index out of range"
    );
    let (_, names_off, names_len) = section(shstrndx)?;
    let names = rd.slice(names_off, names_len)?;
    for index in 0..shnum {
        let (name_off, off, len) = section(index)?;
        let name = names
            .get(usize::try_from(name_off)?..)
            .and_then(|rest| rest.split(|&b| b == 0).next())
            .context("ELF section name out of range")?;
        if name == b".modinfo" {
            return Ok(parse_pairs(rd.slice(off, len)?));
        }
    }
    bail!("no .modinfo section: not a kernel module")
}

fn parse_pairs(section: &[u8]) -> Vec<(String, String)> {
    section
        .split(|&b| b == 0)
        .filter(|s| !s.is_empty())
        .filter_map(|s| {
            let text = String::from_utf8_lossy(s);
            text.split_once('=')
                .map(|(k, v)| (k.to_string(), v.to_string()))
        })
        .collect()
}

struct Reader<'a> {
    elf: &'a [u8],
    little: bool,
}

impl Reader<'_> {
    fn bytes<const N: usize>(&self, at: usize) -> Result<[u8; N]> {
        let slice = at
            .checked_add(N)
            .and_then(|end| self.elf.get(at..end))
            .context("ELF header points past the end of the file")?;
        let mut out = [0; N];
        out.copy_from_slice(slice);
        Ok(out)
    }
    fn u16(&self, at: usize) -> Result<u16> {
        let b = self.bytes(at)?;
        Ok(if self.little {
            u16::from_le_bytes(b)
        } else {
            u16::from_be_bytes(b)
        })
    }
    fn u32(&self, at: usize) -> Result<u32> {
        let b = self.bytes(at)?;
        Ok(if self.little {
            u32::from_le_bytes(b)
        } else {
            u32::from_be_bytes(b)
        })
    }
    fn u64(&self, at: usize) -> Result<u64> {
        let b = self.bytes(at)?;
        Ok(if self.little {
            u64::from_le_bytes(b)
        } else {
            u64::from_be_bytes(b)
        })
    }
    fn slice(&self, off: u64, len: u64) -> Result<&[u8]> {
        let start = usize::try_from(off)?;
        let end = start
            .checked_add(usize::try_from(len)?)
            .context("ELF section size overflows")?;
        self.elf
            .get(start..end)
            .context("ELF section lies past the end of the file")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::fake_module;

    #[test]
    fn reads_modinfo_pairs() -> Result<()> {
        let elf = fake_module(&[
            ("version", "1.2-1.41024dkms"),
            ("alias", "pci:v00009005d00000285sv*sd*bc*sc*i*"),
            (
                "vermagic",
                "6.1.0-56-amd64 SMP preempt mod_unload modversions ",
            ),
        ]);
        let pairs = modinfo_section(&elf)?;
        assert_eq!(pairs[0], ("version".into(), "1.2-1.41024dkms".into()));
        assert_eq!(
            pairs[2].1,
            "6.1.0-56-amd64 SMP preempt mod_unload modversions "
        );
        Ok(())
    }

    /// Found by `tests/fuzz.rs` (`elf_forged_header_fields`): a section
    /// header offset near `u64::MAX` overflowed the offset arithmetic.
    #[test]
    fn forged_section_header_offsets_are_errors() {
        for shoff in [u64::MAX, u64::MAX - 0x10, u64::MAX - 0x40 * 2] {
            let mut elf = fake_module(&[("version", "1")]);
            elf[0x28..0x30].copy_from_slice(&shoff.to_le_bytes());
            assert!(modinfo_section(&elf).is_err(), "{shoff:#x}");
        }
    }

    #[test]
    fn rejects_non_modules() {
        assert!(modinfo_section(b"#!/bin/sh\necho not a module\n").is_err());
        let mut elf = fake_module(&[("version", "1")]);
        elf.truncate(100);
        assert!(modinfo_section(&elf).is_err());
    }
}
