//! Reading an rpm package without rpm: its name, version and release, and
//! the files of its payload.
//!
//! Layout (rpm format version 3, what every rpm since 4.0 writes): a
//! 96-byte lead (magic `ed ab ee db`), the signature header padded to a
//! multiple of 8 bytes, the main header, then the payload: a cpio archive,
//! compressed (gzip, xz or zstd on the distributions we meet). A header is
//! `8e ad e8 01`, four reserved bytes, the entry count and the data size
//! (big-endian u32), the index entries (tag, type, offset, count), then the
//! data.
//!
//! The payload is walked by [`crate::cpio`] (names, modes, caps, hard
//! links); selected entries must be regular files, each named once.

use anyhow::{bail, ensure, Context, Result};

use crate::cpio::{self, Member};
use crate::path;

const LEAD_MAGIC: [u8; 4] = [0xed, 0xab, 0xee, 0xdb];
const HEADER_MAGIC: [u8; 4] = [0x8e, 0xad, 0xe8, 0x01];
const TAG_NAME: u32 = 1000;
const TAG_VERSION: u32 = 1001;
const TAG_RELEASE: u32 = 1002;
const TYPE_STRING: u32 = 6;

/// What an rpm says about itself, and the payload files a caller selected.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Package {
    /// `Name:`.
    pub name: String,
    /// `Version:`.
    pub version: String,
    /// `Release:`.
    pub release: String,
    /// Selected regular files of the payload (paths without the leading
    /// `/`), each path once.
    pub files: Vec<Member>,
}

/// Reads the package in `bytes`, keeping payload files `select` accepts.
pub fn read(bytes: &[u8], select: impl FnMut(&str) -> bool) -> Result<Package> {
    ensure!(
        bytes.len() > 96 && bytes[..4] == LEAD_MAGIC,
        "not an rpm package (no rpm lead)"
    );
    let (_, signature_end) = header(bytes, 96).context("bad rpm signature header")?;
    let main_start = signature_end.next_multiple_of(8);
    let (tags, payload_start) = header(bytes, main_start).context("bad rpm header")?;
    let text = |tag: u32| -> Result<String> {
        tags.iter()
            .find(|t| t.tag == tag)
            .and_then(|t| t.string.clone())
            .with_context(|| format!("rpm header has no string tag {tag}"))
    };
    let payload = bytes[payload_start..].to_vec();
    let scan =
        cpio::scan(std::io::Cursor::new(payload), select).context("cannot read the rpm payload")?;
    if let Some(link) = scan.files.iter().find(|f| !f.regular) {
        bail!(
            "rpm payload entry {:?} is a symbolic link or special file: only regular files and folders are accepted",
            link.path
        );
    }
    path::check_tree(scan.files.iter().map(|f| (f.path.as_str(), false)))
        .context("bad rpm payload")?;
    Ok(Package {
        name: text(TAG_NAME)?,
        version: text(TAG_VERSION)?,
        release: text(TAG_RELEASE)?,
        files: scan.files,
    })
}

/// Reads only the lead and headers: `Some((name, version))` for an rpm,
/// `None` for anything else.
pub fn identify(bytes: &[u8]) -> Option<(String, String)> {
    if bytes.len() <= 96 || bytes[..4] != LEAD_MAGIC {
        return None;
    }
    let (_, signature_end) = header(bytes, 96).ok()?;
    let (tags, _) = header(bytes, signature_end.next_multiple_of(8)).ok()?;
    let get = |tag| tags.iter().find(|t| t.tag == tag)?.string.clone();
    Some((get(TAG_NAME)?, get(TAG_VERSION)?))
}

struct Tag {
    tag: u32,
    string: Option<String>,
}

/// Parses the header at `start`; returns its tags and where it ends.
fn header(bytes: &[u8], start: usize) -> Result<(Vec<Tag>, usize)> {
    let u32_at = |at: usize| -> Result<u32> {
        let b = bytes
            .get(at..at + 4)
            .context("rpm header runs past the end of the file")?;
        Ok(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    };
    if bytes.get(start..start + 4) != Some(&HEADER_MAGIC[..]) {
        bail!("no header magic at byte {start}");
    }
    let count = usize::try_from(u32_at(start + 8)?)?;
    let size = usize::try_from(u32_at(start + 12)?)?;
    ensure!(
        count < 100_000 && size < 256 << 20,
        "implausible rpm header size"
    );
    let index = start + 16;
    let data = index + count * 16;
    let end = data + size;
    ensure!(
        end <= bytes.len(),
        "rpm header runs past the end of the file"
    );
    let mut tags = Vec::with_capacity(count);
    for i in 0..count {
        let entry = index + i * 16;
        let (tag, kind, offset) = (u32_at(entry)?, u32_at(entry + 4)?, u32_at(entry + 8)?);
        let string = (kind == TYPE_STRING)
            .then(|| {
                let from = data + usize::try_from(offset).ok()?;
                let rest = bytes.get(from..end)?;
                let len = rest.iter().position(|&b| b == 0)?;
                Some(String::from_utf8_lossy(&rest[..len]).into_owned())
            })
            .flatten();
        tags.push(Tag { tag, string });
    }
    Ok((tags, end))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cpio::tests::{archive, entry};
    use crate::testing::gzip;

    /// A minimal rpm: lead, empty signature header, a header with name,
    /// version and release, then `payload`.
    fn rpm(payload: &[u8]) -> Vec<u8> {
        let mut out = LEAD_MAGIC.to_vec();
        out.resize(96, 0);
        let header = |tags: &[(u32, &str)]| {
            let mut index = Vec::new();
            let mut data = Vec::new();
            for (tag, text) in tags {
                for n in [*tag, TYPE_STRING, data.len() as u32, 1] {
                    index.extend(n.to_be_bytes());
                }
                data.extend(text.as_bytes());
                data.push(0);
            }
            let mut h = HEADER_MAGIC.to_vec();
            h.extend([0; 4]);
            h.extend((tags.len() as u32).to_be_bytes());
            h.extend((data.len() as u32).to_be_bytes());
            h.extend(index);
            h.extend(data);
            h
        };
        out.extend(header(&[]));
        out.extend(header(&[
            (TAG_NAME, "aacraid"),
            (TAG_VERSION, "1.2"),
            (TAG_RELEASE, "1"),
        ]));
        out.extend(payload);
        out
    }

    fn sources(payload: &[Vec<u8>]) -> Result<Package> {
        read(&rpm(&gzip(&archive(payload))), |p| {
            p.starts_with("usr/src/")
        })
    }

    const FILE: u32 = 0o100644;

    /// `usr/src/aacraid-1.2//etc/cron.d/x` used to come out with an empty
    /// component, which made the part after `usr/src/aacraid-1.2/`
    /// absolute; `..` used to pass.
    #[test]
    fn payload_names_stay_in_their_tree() -> Result<()> {
        let package = sources(&[
            entry("./usr/src/aacraid-1.2/dkms.conf", FILE, 2, 1, 1, b"c"),
            entry(
                "./usr/src/aacraid-1.2//etc/cron.d/x",
                0o104777,
                3,
                1,
                1,
                b"x",
            ),
        ])?;
        assert_eq!(package.name, "aacraid");
        assert_eq!(package.files[1].path, "usr/src/aacraid-1.2/etc/cron.d/x");
        assert_eq!(package.files[1].mode, 0o775, "no setuid, no world-write");
        let err = sources(&[entry(
            "./usr/src/aacraid-1.2/../../../etc/x",
            FILE,
            2,
            1,
            1,
            b"x",
        )])
        .expect_err("..");
        assert!(format!("{err:#}").contains("`..`"), "{err:#}");
        Ok(())
    }

    /// Symlinks used to be dropped silently, a second copy of a name kept
    /// next to the first, and a hard-linked file written empty.
    #[test]
    fn links_and_duplicates() -> Result<()> {
        for (payload, why) in [
            (
                vec![entry("./usr/src/aacraid-1.2/l", 0o120777, 2, 1, 4, b"/etc")],
                "\"usr/src/aacraid-1.2/l\" is a symbolic link",
            ),
            (
                vec![
                    entry("./usr/src/aacraid-1.2/x.c", FILE, 2, 1, 1, b"a"),
                    entry("./usr/src/aacraid-1.2/x.c", FILE, 3, 1, 1, b"b"),
                ],
                "appears twice",
            ),
            (
                vec![entry(
                    "./usr/src/aacraid-1.2/big.c",
                    FILE,
                    2,
                    1,
                    u32::MAX,
                    b"",
                )],
                "claims 4294967295 bytes: more than the 256 MiB",
            ),
        ] {
            let err = sources(&payload).expect_err(why);
            assert!(format!("{err:#}").contains(why), "{err:#}");
        }
        let package = sources(&[
            entry("./usr/src/aacraid-1.2/a.c", FILE, 9, 2, 0, b""),
            entry("./usr/src/aacraid-1.2/b.c", FILE, 9, 2, 4, b"code"),
        ])?;
        assert_eq!(package.files[0].data, b"code");
        Ok(())
    }
}
