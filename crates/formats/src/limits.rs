//! How far an input may grow in memory. Decompressed sizes and the sizes
//! archive headers claim come from outside: every decoder reads through
//! these caps, refuses a header that claims more than what is left, and
//! grows its buffers only as data arrives, so a bomb gives an error that
//! names the cap instead of an allocation failure (which aborts the
//! module without a result).

use std::io::{self, Read};

/// The most a kernel module file may decompress to (`.ko.gz`, `.ko.xz`,
/// `.ko.zst`). In-tree modules are well under 10 MiB; one with full debug
/// information may reach a few tens.
pub const MODULE_MAX: u64 = 64 << 20;

/// The most a tar archive may decompress to, and the most a cpio walk
/// (an rpm payload, an initramfs image) keeps of the files it selects.
/// Whole initramfs images may be larger: their walk streams past what it
/// does not keep.
pub const ARCHIVE_MAX: u64 = 256 << 20;

/// The most a whole initramfs image may hold when a module keeps it in
/// memory (to check it and then write exactly the bytes it checked).
/// Images with large firmware sets reach a few hundred MiB.
pub const IMAGE_MAX: u64 = 512 << 20;

/// The error for an input that goes past `cap` bytes; `what` says what
/// went past it ("the module", "the archive").
pub(crate) fn exceeded(what: &str, cap: u64) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidData,
        format!(
            "{what} holds more than {} MiB once decompressed, the limit for it",
            cap >> 20
        ),
    )
}

/// A reader that fails with [`exceeded`] once more than `cap` bytes have
/// come through it.
pub(crate) struct Limit<R> {
    inner: R,
    left: u64,
    cap: u64,
    what: &'static str,
}

impl<R: Read> Limit<R> {
    pub(crate) fn new(inner: R, cap: u64, what: &'static str) -> Self {
        Limit {
            inner,
            left: cap,
            cap,
            what,
        }
    }

    pub(crate) fn into_inner(self) -> R {
        self.inner
    }
}

impl<R: Read> Read for Limit<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.left = self
            .left
            .checked_sub(n as u64)
            .ok_or_else(|| exceeded(self.what, self.cap))?;
        Ok(n)
    }
}
