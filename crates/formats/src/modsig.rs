//! The signature a kernel module file carries at its end, read from the
//! file itself: the marker `~Module signature appended~\n`, before it the
//! kernel's 12-byte `struct module_signature` (algorithm, hash, identifier
//! type, signer and key-identifier lengths, padding, big-endian signature
//! length), and before that the signature. For the PKCS#7 type, the one
//! `sign-file` writes, the signer (the issuer's common name, else its
//! organisation), the key identifier (the certificate's serial number, or
//! its subject key identifier) and the hash algorithm come from the DER
//! SignedData's first SignerInfo, as `modinfo` shows them (`signer`,
//! `sig_key`, `sig_hashalgo`). Nothing is allocated from a length field: the
//! parser only slices the file.

use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};

/// What ends a signed module file.
pub const MARKER: &[u8] = b"~Module signature appended~\n";

/// `struct module_signature`'s size.
const INFO_LEN: usize = 12;

/// A module's appended signature.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Signature {
    /// `PKCS#7` (what current kernels and `sign-file` use), `X509` or `PGP`.
    pub id_type: Option<String>,
    /// Who signed: the certificate issuer's common name (else its
    /// organisation), as `modinfo -F signer` prints it.
    pub signer: Option<String>,
    /// The key: the certificate's serial number, or the subject key
    /// identifier when the signature names the key that way (`sign-file
    /// -k`); upper-case hex bytes joined by `:`, as `modinfo -F sig_key`.
    pub key_id: Option<String>,
    /// `sha256`, `sha512`, ...; the dotted OID of a digest not known here.
    pub hash_algo: Option<String>,
    /// Why the signature could not be read (the module ends with the
    /// marker, but what comes before it is damaged).
    pub error: Option<String>,
}

/// The signature of `module` for facts: `None` when unsigned, a
/// [`Signature`] with only `error` set when the trailer is damaged.
pub fn of(module: &[u8]) -> Option<Signature> {
    read(module).unwrap_or_else(|e| {
        Some(Signature {
            error: Some(format!("{e:#}")),
            ..Signature::default()
        })
    })
}

/// The signature at the end of `module` (a decompressed module file);
/// `None` when it carries none.
pub fn read(module: &[u8]) -> Result<Option<Signature>> {
    let Some(body) = module.strip_suffix(MARKER) else {
        return Ok(None);
    };
    let (body, info) =
        split_end(body, INFO_LEN).context("module signature: no signature header")?;
    let (id_type, signer_len, key_id_len) = (info[2], usize::from(info[3]), usize::from(info[4]));
    let sig_len = u32::from_be_bytes([info[8], info[9], info[10], info[11]]) as usize;
    let (body, signature) = split_end(body, sig_len).with_context(|| {
        format!("module signature: {sig_len} bytes claimed, the file is shorter")
    })?;
    let (body, key_id) =
        split_end(body, key_id_len).context("module signature: truncated key identifier")?;
    let (_, signer) = split_end(body, signer_len).context("module signature: truncated signer")?;
    match id_type {
        2 => pkcs7(signature).context("module signature: PKCS#7"),
        0 | 1 => Ok(Some(Signature {
            id_type: Some(if id_type == 0 { "PGP" } else { "X509" }.to_string()),
            signer: (!signer.is_empty()).then(|| String::from_utf8_lossy(signer).into_owned()),
            key_id: (!key_id.is_empty()).then(|| hex(key_id)),
            hash_algo: LEGACY_HASHES
                .get(usize::from(info[1]))
                .map(|h| h.to_string()),
            error: None,
        })),
        other => bail!("module signature: unknown identifier type {other}"),
    }
}

/// The kernel's `hash_algo` numbering, as the legacy signature types use it.
const LEGACY_HASHES: [&str; 8] = [
    "md4", "md5", "sha1", "rmd160", "sha256", "sha384", "sha512", "sha224",
];

/// `module` without its appended signature (the whole of it when it
/// carries none); `None` when the trailer is damaged.
pub fn without_signature(module: &[u8]) -> Option<&[u8]> {
    let Some(body) = module.strip_suffix(MARKER) else {
        return Some(module);
    };
    let (body, info) = split_end(body, INFO_LEN)?;
    let lengths = [
        usize::from(info[3]),
        usize::from(info[4]),
        u32::from_be_bytes([info[8], info[9], info[10], info[11]]) as usize,
    ];
    let total = lengths.iter().try_fold(0usize, |a, n| a.checked_add(*n))?;
    split_end(body, total).map(|(unsigned, _)| unsigned)
}

/// What a signature made with an X.509 certificate shows as its `signer`
/// and `key_id` (`sign-file` names the certificate by issuer and serial
/// number): the certificate's issuer and its serial number. `cert` is DER,
/// or PEM (the first `CERTIFICATE` block).
pub fn certificate_names(cert: &[u8]) -> Result<(Option<String>, String)> {
    let der = match pem_certificate(cert) {
        Some(decoded) => decoded?,
        None => cert.to_vec(),
    };
    let (certificate, _) = expect(&der, SEQUENCE, "certificate")?;
    let (tbs, _) = expect(certificate, SEQUENCE, "to-be-signed certificate")?;
    let rest = match tbs.first() {
        Some(0xa0) => tlv(tbs)?.2,
        _ => tbs,
    };
    let (serial, rest) = expect(rest, INTEGER, "serial number")?;
    let (_, rest) = expect(rest, SEQUENCE, "signature algorithm")?;
    let (issuer, _) = expect(rest, SEQUENCE, "issuer")?;
    Ok((issuer_name(issuer)?, integer_hex(serial)))
}

/// The DER of the first PEM `CERTIFICATE` block of `text`; `None` when
/// `text` holds no such block (it may be DER).
fn pem_certificate(text: &[u8]) -> Option<Result<Vec<u8>>> {
    const BEGIN: &[u8] = b"-----BEGIN CERTIFICATE-----";
    const END: &[u8] = b"-----END CERTIFICATE-----";
    let start = text.windows(BEGIN.len()).position(|w| w == BEGIN)? + BEGIN.len();
    let body = &text[start..];
    let Some(end) = body.windows(END.len()).position(|w| w == END) else {
        return Some(Err(anyhow::anyhow!("the PEM certificate has no END line")));
    };
    Some(base64(&body[..end]))
}

/// Decodes base64, skipping white space.
fn base64(text: &[u8]) -> Result<Vec<u8>> {
    let mut out = Vec::with_capacity(text.len() / 4 * 3);
    let (mut acc, mut bits) = (0u32, 0u32);
    for &c in text.iter().filter(|c| !c.is_ascii_whitespace()) {
        let value = match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            b'=' => break,
            _ => bail!("the PEM certificate is not base64 (byte {c:#04x})"),
        };
        acc = (acc << 6) | u32::from(value);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
        }
    }
    Ok(out)
}

/// `data` without its last `n` bytes, and those bytes.
fn split_end(data: &[u8], n: usize) -> Option<(&[u8], &[u8])> {
    data.len().checked_sub(n).map(|at| data.split_at(at))
}

fn pkcs7(der: &[u8]) -> Result<Option<Signature>> {
    let (content_info, _) = expect(der, SEQUENCE, "ContentInfo")?;
    let (oid, rest) = expect(content_info, OID, "content type")?;
    if oid != SIGNED_DATA {
        bail!("the content is not SignedData");
    }
    let (explicit, _) = expect(rest, 0xa0, "SignedData wrapper")?;
    let (signed_data, _) = expect(explicit, SEQUENCE, "SignedData")?;
    let (_, rest) = expect(signed_data, INTEGER, "version")?;
    let (_, rest) = expect(rest, SET, "digest algorithms")?;
    let (_, mut rest) = expect(rest, SEQUENCE, "content")?;
    // Optional certificates [0] and CRLs [1].
    while let Some(&tag) = rest.first() {
        if tag != 0xa0 && tag != 0xa1 {
            break;
        }
        rest = tlv(rest)?.2;
    }
    let (signer_infos, _) = expect(rest, SET, "signer infos")?;
    let (info, _) = expect(signer_infos, SEQUENCE, "SignerInfo")?;
    let (_, rest) = expect(info, INTEGER, "SignerInfo version")?;
    let (tag, sid, rest) = tlv(rest)?;
    let (signer, key_id) = match tag {
        SEQUENCE => {
            let (issuer, after) = expect(sid, SEQUENCE, "issuer")?;
            let (serial, _) = expect(after, INTEGER, "serial number")?;
            (issuer_name(issuer)?, integer_hex(serial))
        }
        // [0] IMPLICIT SubjectKeyIdentifier.
        0x80 => (None, hex(sid)),
        other => bail!("unexpected signer identifier (tag {other:#04x})"),
    };
    let (algorithm, _) = expect(rest, SEQUENCE, "digest algorithm")?;
    let (digest, _) = expect(algorithm, OID, "digest algorithm OID")?;
    Ok(Some(Signature {
        id_type: Some("PKCS#7".to_string()),
        signer,
        key_id: Some(key_id),
        hash_algo: Some(hash_name(digest)),
        error: None,
    }))
}

const SEQUENCE: u8 = 0x30;
const SET: u8 = 0x31;
const INTEGER: u8 = 0x02;
const OID: u8 = 0x06;
/// 1.2.840.113549.1.7.2
const SIGNED_DATA: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x07, 0x02];
/// 2.5.4.3 and 2.5.4.10
const COMMON_NAME: &[u8] = &[0x55, 0x04, 0x03];
const ORGANISATION: &[u8] = &[0x55, 0x04, 0x0a];

/// One DER element: its tag, its content and what follows it.
fn tlv(data: &[u8]) -> Result<(u8, &[u8], &[u8])> {
    let (&tag, rest) = data.split_first().context("an element is missing")?;
    if tag & 0x1f == 0x1f {
        bail!("multi-byte tags are not DER SignedData");
    }
    let (&first, rest) = rest.split_first().context("an element has no length")?;
    let (len, rest) = if first < 0x80 {
        (usize::from(first), rest)
    } else {
        let n = usize::from(first & 0x7f);
        if n == 0 || n > 4 || rest.len() < n {
            bail!("bad length form {first:#04x}");
        }
        let len = rest[..n]
            .iter()
            .fold(0usize, |acc, b| (acc << 8) | usize::from(*b));
        (len, &rest[n..])
    };
    if len > rest.len() {
        bail!("an element claims {len} bytes, {} are left", rest.len());
    }
    let (content, rest) = rest.split_at(len);
    Ok((tag, content, rest))
}

/// The element that must come next (`tag`), and what follows it.
fn expect<'a>(data: &'a [u8], tag: u8, what: &str) -> Result<(&'a [u8], &'a [u8])> {
    let (found, content, rest) = tlv(data).with_context(|| format!("reading the {what}"))?;
    if found != tag {
        bail!("expected the {what} (tag {tag:#04x}), found tag {found:#04x}");
    }
    Ok((content, rest))
}

/// The common name of an X.501 name, else its organisation.
fn issuer_name(name: &[u8]) -> Result<Option<String>> {
    let (mut common, mut organisation) = (None, None);
    let mut rest = name;
    while !rest.is_empty() {
        let (set, after) = expect(rest, SET, "name component")?;
        rest = after;
        let mut attributes = set;
        while !attributes.is_empty() {
            let (attribute, after) = expect(attributes, SEQUENCE, "name attribute")?;
            attributes = after;
            let (oid, value) = expect(attribute, OID, "name attribute type")?;
            let (_, text, _) = tlv(value)?;
            let text = String::from_utf8_lossy(text).into_owned();
            if oid == COMMON_NAME {
                common.get_or_insert(text);
            } else if oid == ORGANISATION {
                organisation.get_or_insert(text);
            }
        }
    }
    Ok(common.or(organisation))
}

/// A positive INTEGER's bytes without the sign byte, as hex.
fn integer_hex(content: &[u8]) -> String {
    let start = content
        .iter()
        .take(content.len().saturating_sub(1))
        .take_while(|b| **b == 0)
        .count();
    hex(&content[start..])
}

fn hex(bytes: &[u8]) -> String {
    bytes
        .iter()
        .map(|b| format!("{b:02X}"))
        .collect::<Vec<_>>()
        .join(":")
}

/// The name of a digest algorithm OID (the dotted OID when unknown).
fn hash_name(oid: &[u8]) -> String {
    const NIST: &[u8] = &[0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02];
    let known = match oid {
        [0x2b, 0x0e, 0x03, 0x02, 0x1a] => Some("sha1"),
        [0x2a, 0x81, 0x1c, 0xcf, 0x55, 0x01, 0x83, 0x11] => Some("sm3"),
        [prefix @ .., last] if prefix == NIST => match last {
            1 => Some("sha256"),
            2 => Some("sha384"),
            3 => Some("sha512"),
            4 => Some("sha224"),
            8 => Some("sha3-256"),
            9 => Some("sha3-384"),
            10 => Some("sha3-512"),
            _ => None,
        },
        _ => None,
    };
    known.map_or_else(|| dotted(oid), str::to_string)
}

/// An OID's dotted form (`1.2.840...`).
fn dotted(oid: &[u8]) -> String {
    let mut parts = Vec::new();
    let mut value: u64 = 0;
    for b in oid {
        value = value
            .saturating_mul(128)
            .saturating_add(u64::from(b & 0x7f));
        if b & 0x80 == 0 {
            if parts.is_empty() {
                let first = (value / 40).min(2);
                parts.push(first);
                parts.push(value - first * 40);
            } else {
                parts.push(value);
            }
            value = 0;
        }
    }
    parts
        .iter()
        .map(u64::to_string)
        .collect::<Vec<_>>()
        .join(".")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture(name: &str) -> Vec<u8> {
        let path = format!(
            "{}/tests/fixtures/modsig/{name}",
            env!("CARGO_MANIFEST_DIR")
        );
        std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
    }

    /// The end of Debian 12's in-tree aacraid.ko; modinfo says: signer
    /// "Build time autogenerated kernel key", sig_key 7A:7D:...:A3,
    /// sig_hashalgo sha256.
    #[test]
    fn a_debian_in_tree_module() -> Result<()> {
        let sig = read(&fixture("debian-aacraid-tail.bin"))?.expect("signed");
        assert_eq!(
            sig,
            Signature {
                id_type: Some("PKCS#7".into()),
                signer: Some("Build time autogenerated kernel key".into()),
                key_id: Some("7A:7D:A6:18:91:67:01:DB:FC:E1:EF:7C:E7:E5:26:14:31:FB:67:A3".into()),
                hash_algo: Some("sha256".into()),
                error: None,
            }
        );
        Ok(())
    }

    /// Signed here by the kernel's sign-file with a throwaway key (CN
    /// "aacraid test signing key", O "aacraid lab"; serial 0E41...7035,
    /// subject key identifier 26:7F:...:9F): by serial with sha256 and
    /// sha512, and by key identifier (`sign-file -k`).
    #[test]
    fn modules_signed_with_a_throwaway_key() -> Result<()> {
        let serial = "0E:41:77:C6:13:A4:1C:AF:B9:88:BE:8F:9E:39:13:8D:12:C8:70:35";
        for (file, hash) in [
            ("small-sha256.bin", "sha256"),
            ("small-sha512.bin", "sha512"),
        ] {
            let sig = read(&fixture(file))?.expect("signed");
            assert_eq!(
                sig.signer.as_deref(),
                Some("aacraid test signing key"),
                "{file}"
            );
            assert_eq!(sig.key_id.as_deref(), Some(serial), "{file}");
            assert_eq!(sig.hash_algo.as_deref(), Some(hash), "{file}");
        }
        let sig = read(&fixture("small-keyid.bin"))?.expect("signed");
        assert_eq!(sig.signer, None);
        assert_eq!(
            sig.key_id.as_deref(),
            Some("26:7F:48:C6:FE:D0:F9:24:68:19:81:93:DE:9D:12:9F:32:5D:CD:9F")
        );
        assert_eq!(sig.hash_algo.as_deref(), Some("sha256"));
        Ok(())
    }

    /// fixture-cert.pem/.der: a throwaway certificate made here (O "aacraid
    /// lab", CN "aacraid fixture key", serial C0FFEE0123456789, as
    /// `openssl x509 -serial -issuer` prints); fixture-signed-tail.bin: what
    /// the kernel's sign-file appended with it to the already signed
    /// tests/fixtures/uio_pci_generic.ko (modinfo: signer "aacraid
    /// fixture key", sig_key C0:FF:EE:01:23:45:67:89).
    #[test]
    fn a_certificate_names_the_signatures_it_makes() -> Result<()> {
        let expected = (
            Some("aacraid fixture key".to_string()),
            "C0:FF:EE:01:23:45:67:89".to_string(),
        );
        assert_eq!(certificate_names(&fixture("fixture-cert.pem"))?, expected);
        assert_eq!(certificate_names(&fixture("fixture-cert.der"))?, expected);
        let module = std::fs::read(format!(
            "{}/tests/fixtures/uio_pci_generic.ko",
            env!("CARGO_MANIFEST_DIR")
        ))?;
        let mut signed = module.clone();
        signed.extend(fixture("fixture-signed-tail.bin"));
        let sig = read(&signed)?.expect("signed");
        assert_eq!((sig.signer, sig.key_id.unwrap_or_default()), expected);
        assert_eq!(without_signature(&signed), Some(module.as_slice()));
        // The fixture module carries Debian's signature under it.
        let bare = without_signature(&module).expect("readable trailer");
        assert!(bare.len() < module.len() && bare.starts_with(b"\x7fELF"));
        assert_eq!(without_signature(bare), Some(bare));
        assert_eq!(
            without_signature(&signed[..signed.len() - 40]),
            Some(&signed[..signed.len() - 40])
        );
        let mut broken = signed.clone();
        let at = broken.len() - MARKER.len() - 4;
        broken[at..at + 4].copy_from_slice(&u32::MAX.to_be_bytes());
        assert_eq!(without_signature(&broken), None);

        let pem = String::from_utf8(fixture("fixture-cert.pem"))?;
        assert!(
            certificate_names(pem.replace("-----END CERTIFICATE-----", "").as_bytes()).is_err()
        );
        assert!(certificate_names(pem.replacen('M', "*", 1).as_bytes()).is_err());
        assert!(certificate_names(b"not a certificate").is_err());
        Ok(())
    }

    #[test]
    fn unsigned_and_broken_trailers() {
        assert_eq!(read(b"\x7fELF unsigned").ok(), Some(None));
        let signed = fixture("small-sha256.bin");
        let mut claims_more = signed.clone();
        let at = claims_more.len() - MARKER.len() - 4;
        claims_more[at..at + 4].copy_from_slice(&u32::MAX.to_be_bytes());
        let err = read(&claims_more)
            .expect_err("longer than the file")
            .to_string();
        assert!(err.contains("4294967295 bytes claimed"), "{err}");
        let mut unknown = signed;
        let at = unknown.len() - MARKER.len() - INFO_LEN + 2;
        unknown[at] = 9;
        let err = read(&unknown).expect_err("type 9").to_string();
        assert!(err.contains("unknown identifier type 9"), "{err}");
    }

    #[test]
    fn oids_are_named_or_dotted() {
        assert_eq!(
            hash_name(&[0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x03]),
            "sha512"
        );
        assert_eq!(dotted(SIGNED_DATA), "1.2.840.113549.1.7.2");
        assert_eq!(hash_name(&[0x2a, 0x03]), "1.2.3");
    }
}
