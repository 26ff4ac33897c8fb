//! Builders of small but well-formed kernel-module files and initramfs
//! archives, for the unit tests of this crate and of the module crates
//! (enabled by the `testing` feature). System tests use real ones.

/// A minimal little-endian ELF64 object with a `.modinfo` section, laid
/// out as the kernel's build writes one (enough for the section walk).
pub fn fake_module(modinfo: &[(&str, &str)]) -> Vec<u8> {
    let mut info = Vec::new();
    for (k, v) in modinfo {
        info.extend_from_slice(format!("{k}={v}").as_bytes());
        info.push(0);
    }
    let names = b"\0.shstrtab\0.modinfo\0".to_vec();
    let mut elf = vec![0u8; 64];
    elf[..4].copy_from_slice(b"\x7fELF");
    elf[4] = 2;
    elf[5] = 1;
    elf[6] = 1;
    let names_off = elf.len() as u64;
    elf.extend_from_slice(&names);
    let info_off = elf.len() as u64;
    elf.extend_from_slice(&info);
    while !elf.len().is_multiple_of(8) {
        elf.push(0);
    }
    let shoff = elf.len() as u64;
    let mut shdr = |name: u32, kind: u32, off: u64, len: u64| {
        let mut h = vec![0u8; 64];
        h[0..4].copy_from_slice(&name.to_le_bytes());
        h[4..8].copy_from_slice(&kind.to_le_bytes());
        h[0x18..0x20].copy_from_slice(&off.to_le_bytes());
        h[0x20..0x28].copy_from_slice(&len.to_le_bytes());
        elf.extend_from_slice(&h);
    };
    shdr(0, 0, 0, 0);
    shdr(1, 3, names_off, names.len() as u64);
    shdr(11, 1, info_off, info.len() as u64);
    elf[0x28..0x30].copy_from_slice(&shoff.to_le_bytes());
    elf[0x3a..0x3c].copy_from_slice(&64u16.to_le_bytes());
    elf[0x3c..0x3e].copy_from_slice(&3u16.to_le_bytes());
    elf[0x3e..0x40].copy_from_slice(&1u16.to_le_bytes());
    elf
}

/// Builds a `newc` archive of regular files (with one directory entry
/// first), as dracut and initramfs-tools write them.
pub fn cpio(files: &[(&str, &[u8])]) -> Vec<u8> {
    let entry = |path: &str, folder: bool, data: &[u8]| crate::cpio::Entry {
        path: path.into(),
        mode: if folder { 0o755 } else { 0o644 },
        folder,
        data: data.to_vec(),
    };
    let mut entries = vec![entry("usr", true, b"")];
    entries.extend(files.iter().map(|(name, data)| entry(name, false, data)));
    crate::cpio::write(&entries)
}

/// A regular file as a cpio walk returns it (mode 0644).
pub fn member(path: &str, data: &[u8]) -> crate::cpio::Member {
    crate::cpio::Member {
        path: path.into(),
        mode: 0o644,
        regular: true,
        data: data.to_vec(),
    }
}

/// `data` as an LZ4 legacy stream (`lz4 -l`) of literal-only blocks: a
/// valid stream any decoder must read back, though not a compressed one.
pub fn lz4_literals(data: &[u8]) -> Vec<u8> {
    let mut out = vec![0x02, 0x21, 0x4c, 0x18];
    for chunk in data.chunks(1 << 16) {
        let mut block = vec![(chunk.len().min(15) as u8) << 4];
        if let Some(mut left) = chunk.len().checked_sub(15) {
            while left >= 255 {
                block.push(255);
                left -= 255;
            }
            block.push(left as u8);
        }
        block.extend_from_slice(chunk);
        out.extend_from_slice(&(block.len() as u32).to_le_bytes());
        out.extend_from_slice(&block);
    }
    out
}

/// `data` as a legacy LZMA stream (`lzma`).
pub fn lzma(data: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    // Compressing into a Vec cannot fail.
    let _ = lzma_rs::lzma_compress(&mut std::io::Cursor::new(data), &mut out);
    out
}

/// gzip-compresses `data` (as dracut and initramfs-tools may compress images).
pub fn gzip(data: &[u8]) -> Vec<u8> {
    use std::io::Write;
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    // Writing into a Vec cannot fail.
    let _ = enc.write_all(data);
    enc.finish().unwrap_or_default()
}
