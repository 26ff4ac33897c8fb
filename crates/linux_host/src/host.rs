//! [`Host`]: the one door to the machine. Every file read, file write and
//! command of every module goes through it.
//!
//! The real host is rooted at `/` and runs real programs. Tests root a host in
//! a temporary directory and answer its commands from a [`Script`], so
//! parsers and planners can be exercised against captured outputs while the
//! system tests use the real thing.

use std::ffi::OsString;
use std::fs::{self, File};
use std::io::{self, Read as _, Write};
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Component, Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};

use crate::command::SYSTEM_SEARCH_DIRS;
use crate::run::Script;

/// The machine a module runs on (or a test's stand-in for it).
pub struct Host {
    root: PathBuf,
    pub(crate) runner: Runner,
}

pub(crate) enum Runner {
    Real { search: Vec<PathBuf> },
    Scripted(Script),
}

/// What a file-system entry is, without following symlinks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// A regular file.
    File,
    /// A directory.
    Dir,
    /// A symbolic link.
    Symlink,
    /// Anything else (device, fifo, socket).
    Other,
}

/// A held directory lock (see [`Host::lock_dir`]); dropping it unlocks.
#[derive(Debug)]
pub struct DirLock {
    _dir: File,
}

/// A folder made by [`Host::private_dir`]; dropping it removes it.
pub struct PrivateDir<'a> {
    host: &'a Host,
    /// The folder, as the module sees it.
    pub path: PathBuf,
}

impl PrivateDir<'_> {
    /// Renames the finished folder to `target` (see
    /// [`Host::rename_durably`]) and keeps it there; on failure the folder
    /// is removed as usual.
    pub fn persist(self, target: &Path) -> Result<()> {
        self.host.rename_durably(&self.path, target)?;
        // Nothing is left at the old name to remove.
        std::mem::forget(self);
        Ok(())
    }
}

impl PrivateDir<'_> {
    /// Writes `data` as the new file `relative` in the folder, mode 0600,
    /// making missing folders on the way (0700): a tree staged for a tool
    /// that runs as root, private like every file a module creates (what
    /// the tree is turned into carries modes of its own); never through a link, and
    /// never over an existing entry. `relative` must be a plain relative
    /// path ([`formats::path::relative`]): a tree staged for a tool.
    pub fn put(&self, relative: &str, data: &[u8]) -> Result<()> {
        let target = self.inside(relative)?;
        fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .custom_flags(libc::O_NOFOLLOW)
            .open(&target)
            .and_then(|mut f| f.write_all(data))
            .with_context(|| format!("cannot write {relative} in {}", self.path.display()))
    }

    /// Makes the symbolic link `relative` → `target` in the folder.
    pub fn link(&self, relative: &str, target: &str) -> Result<()> {
        let at = self.inside(relative)?;
        std::os::unix::fs::symlink(target, &at)
            .with_context(|| format!("cannot link {relative} in {}", self.path.display()))
    }

    /// The real path of `relative` in the folder, its parents made: each
    /// must be a real folder, not a link.
    fn inside(&self, relative: &str) -> Result<PathBuf> {
        if relative.is_empty()
            || formats::path::relative(relative).ok().as_deref() != Some(relative)
        {
            bail!("{relative:?} is not a plain relative path");
        }
        let mut at = self.host.real_path(&self.path);
        let parts: Vec<&str> = relative.split('/').collect();
        for part in &parts[..parts.len() - 1] {
            at.push(part);
            match fs::DirBuilder::new().mode(0o700).create(&at) {
                Err(e) if e.kind() != io::ErrorKind::AlreadyExists => {
                    return Err(e).with_context(|| format!("cannot create {}", at.display()))
                }
                _ => {}
            }
            if !fs::symlink_metadata(&at)?.is_dir() {
                bail!("{} is not a folder", at.display());
            }
        }
        at.push(parts[parts.len() - 1]);
        Ok(at)
    }
}

impl Drop for PrivateDir<'_> {
    fn drop(&mut self) {
        let _ = self.host.remove_tree(&self.path);
    }
}

/// One entry of a directory listing.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DirEntry {
    /// File name.
    pub name: String,
    /// Path as the module sees it (not prefixed by a test root).
    pub path: PathBuf,
    /// Type, not following symlinks.
    pub kind: Kind,
}

impl Host {
    /// The real machine: root `/`; programs from the system folders, then
    /// from the absolute folders of the inherited `$PATH`.
    pub fn system() -> Self {
        Host {
            root: PathBuf::from("/"),
            runner: Runner::Real {
                search: search_dirs(std::env::var_os("PATH")),
            },
        }
    }

    /// A test host: files live under `root`, commands are answered by `script`.
    pub fn scripted(root: impl Into<PathBuf>, script: Script) -> Self {
        Host {
            root: root.into(),
            runner: Runner::Scripted(script),
        }
    }

    /// Where `path` really is on disk (the test root prefixed, if any).
    pub fn real_path(&self, path: &Path) -> PathBuf {
        let mut out = self.root.clone();
        for part in path.components() {
            match part {
                Component::Normal(p) => out.push(p),
                Component::ParentDir => out.push(".."),
                Component::RootDir | Component::CurDir | Component::Prefix(_) => {}
            }
        }
        out
    }

    /// Reads a whole file.
    pub fn read(&self, path: &Path) -> io::Result<Vec<u8>> {
        fs::read(self.real_path(path))
    }

    /// Reads a whole file as text (lossy UTF-8).
    pub fn read_text(&self, path: &Path) -> io::Result<String> {
        self.read(path)
            .map(|b| String::from_utf8_lossy(&b).into_owned())
    }

    /// Opens a file for streaming reads.
    pub fn open(&self, path: &Path) -> io::Result<File> {
        File::open(self.real_path(path))
    }

    /// Lists a directory, sorted by name.
    pub fn read_dir(&self, path: &Path) -> io::Result<Vec<DirEntry>> {
        let mut entries = Vec::new();
        for entry in fs::read_dir(self.real_path(path))? {
            let entry = entry?;
            let file_type = entry.file_type()?;
            let kind = if file_type.is_symlink() {
                Kind::Symlink
            } else if file_type.is_dir() {
                Kind::Dir
            } else if file_type.is_file() {
                Kind::File
            } else {
                Kind::Other
            };
            let name = entry.file_name().to_string_lossy().into_owned();
            entries.push(DirEntry {
                path: path.join(&name),
                name,
                kind,
            });
        }
        entries.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(entries)
    }

    /// The target of a symbolic link, as stored in the link.
    pub fn read_link(&self, path: &Path) -> io::Result<PathBuf> {
        fs::read_link(self.real_path(path))
    }

    /// True when something (even a dangling symlink) is at `path`.
    pub fn exists(&self, path: &Path) -> bool {
        fs::symlink_metadata(self.real_path(path)).is_ok()
    }

    /// True when `path` is a directory (following symlinks).
    pub fn is_dir(&self, path: &Path) -> bool {
        self.real_path(path).is_dir()
    }

    /// Writes `data` to `path` so that readers see either the old file or the
    /// whole new one: a new temporary file in the same directory is written,
    /// fsynced and renamed over `path`, then the directory is fsynced.
    pub fn write_atomic(&self, path: &Path, data: &[u8], mode: u32) -> Result<()> {
        self.write_atomic_with(path, data, mode, false)
    }

    fn write_atomic_with(&self, path: &Path, data: &[u8], mode: u32, root: bool) -> Result<()> {
        let target = self.real_path(path);
        let dir = target
            .parent()
            .ok_or_else(|| anyhow!("{} has no parent directory", path.display()))?;
        let name = target
            .file_name()
            .ok_or_else(|| anyhow!("{} has no file name", path.display()))?;
        let (tmp, mut file) =
            create_temp(dir, name).with_context(|| format!("cannot write {}", path.display()))?;
        let written = (|| -> io::Result<()> {
            if root {
                let meta = file.metadata()?;
                if meta.uid() != 0 || meta.gid() != 0 {
                    std::os::unix::fs::fchown(&file, Some(0), Some(0))?;
                }
            }
            file.write_all(data)?;
            file.set_permissions(fs::Permissions::from_mode(mode))?;
            file.sync_all()?;
            fs::rename(&tmp, &target)?;
            File::open(dir)?.sync_all()
        })();
        if written.is_err() {
            let _ = fs::remove_file(&tmp);
        }
        written.with_context(|| format!("cannot write {}", path.display()))
    }

    /// Like [`Host::write_atomic`], and the new file belongs to root (uid
    /// and gid 0) before it takes the place of the old one: what files under
    /// `/lib/modules` must be, whoever ran the module.
    pub fn write_atomic_as_root(&self, path: &Path, data: &[u8], mode: u32) -> Result<()> {
        self.write_atomic_with(path, data, mode, true)
    }

    /// Fails unless `path` lies below `base` (no `..`) and neither it nor a
    /// folder between `base` and it is a symbolic link: what a module writes
    /// or removes below `base` must not land anywhere else. Parts that do
    /// not exist yet are fine.
    pub fn refuse_links_below(&self, base: &Path, path: &Path) -> Result<()> {
        let rest = path
            .strip_prefix(base)
            .ok()
            .filter(|r| {
                r.components().next().is_some()
                    && r.components().all(|c| matches!(c, Component::Normal(_)))
            })
            .ok_or_else(|| anyhow!("{} is not inside {}", path.display(), base.display()))?;
        let mut at = base.to_path_buf();
        for part in rest.components() {
            at.push(part);
            match fs::symlink_metadata(self.real_path(&at)) {
                Ok(meta) if meta.file_type().is_symlink() => {
                    let to = self
                        .read_link(&at)
                        .map(|t| t.display().to_string())
                        .unwrap_or_default();
                    bail!(
                        "{} is a symbolic link (to {to}): nothing is written or removed through a link below {}",
                        at.display(),
                        base.display()
                    );
                }
                Ok(_) => {}
                Err(_) => break,
            }
        }
        Ok(())
    }

    /// Fails unless `path` (absolute) is a private folder of root's: it and
    /// every folder above it are real folders (no link on the way) of root
    /// (or of this process's owner) that no one else may write, and `path`
    /// itself has no permission bits for group or others. Missing folders
    /// are created with mode 0700 when `create` is set. Files kept there
    /// (a cache a root process trusts) cannot be planted or swapped by
    /// another user.
    pub fn private_folder(&self, path: &Path, create: bool) -> Result<()> {
        if !is_plain_absolute(path) {
            bail!(
                "{} is not an absolute path without `.` or `..`",
                path.display()
            );
        }
        let uid = process_uid();
        let mut at = PathBuf::from("/");
        let mut parts = path.components().skip(1).peekable();
        loop {
            let last = parts.peek().is_none();
            let meta = match fs::symlink_metadata(self.real_path(&at)) {
                Err(e) if e.kind() == io::ErrorKind::NotFound && create => {
                    self.create_dir(&at, 0o700)?;
                    fs::symlink_metadata(self.real_path(&at))
                }
                other => other,
            }
            .with_context(|| format!("cannot use {}", at.display()))?;
            let private = if last { 0o077 } else { 0o022 };
            if !meta.is_dir()
                || (meta.uid() != 0 && meta.uid() != uid)
                || meta.mode() & private != 0
            {
                bail!(
                    "{} is not a real folder of root's that only root may {} (owner uid {}, mode {:o}{})",
                    at.display(),
                    if last { "enter" } else { "write" },
                    meta.uid(),
                    meta.mode() & 0o7777,
                    if meta.file_type().is_symlink() { ", a symbolic link" } else { "" }
                );
            }
            match parts.next() {
                Some(part) => at.push(part),
                None => return Ok(()),
            }
        }
    }

    /// Creates a new folder `<parent>/.<prefix>-<pid>-<n>` that only its
    /// owner can enter, for files that must not be seen or swapped before
    /// use (an rpm that `rpm -i` then reads, a tool's work folder).
    /// `parent` must be a real folder of root (or of this process's owner)
    /// that no other user can write, or a sticky one (`/var/tmp`), where
    /// others cannot rename or remove it. The folder and its files are
    /// removed when the guard is dropped.
    pub fn private_dir(&self, parent: &Path, prefix: &str) -> Result<PrivateDir<'_>> {
        let real_parent = self.real_path(parent);
        let meta = fs::symlink_metadata(&real_parent)
            .with_context(|| format!("cannot use {} for temporary files", parent.display()))?;
        let owner = meta.uid() == 0 || meta.uid() == process_uid();
        // In a sticky folder (`/var/tmp`) others cannot rename or remove
        // what we create, and the new folder's name is never reused.
        let sticky = meta.mode() & 0o1000 != 0;
        if !meta.is_dir() || !owner || (meta.mode() & 0o022 != 0 && !sticky) {
            bail!(
                "{} is not a folder only root can write (owner uid {}, mode {:o}): refusing to stage files there",
                parent.display(),
                meta.uid(),
                meta.mode() & 0o7777
            );
        }
        let pid = std::process::id();
        for n in 0..64 {
            let path = parent.join(format!(".{prefix}-{pid}-{n}"));
            match fs::DirBuilder::new()
                .mode(0o700)
                .create(self.real_path(&path))
            {
                Ok(()) => return Ok(PrivateDir { host: self, path }),
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
                Err(e) => {
                    return Err(e).with_context(|| format!("cannot create {}", path.display()))
                }
            }
        }
        bail!(
            "every temporary folder name in {} is taken",
            parent.display()
        )
    }

    /// Exclusive advisory lock (`flock`) on a directory, held until the
    /// returned guard is dropped. Opening a directory writes nothing, so
    /// this works on read-only file systems and in check mode.
    pub fn lock_dir(&self, path: &Path) -> Result<DirLock> {
        self.lock_dir_within(path, LOCK_WAIT)
    }

    /// [`Host::lock_dir`], failing after `wait` with a message that names
    /// the process holding the lock.
    pub fn lock_dir_within(&self, path: &Path, wait: Duration) -> Result<DirLock> {
        let dir = File::open(self.real_path(path))
            .with_context(|| format!("cannot open {} to lock it", path.display()))?;
        let deadline = Instant::now() + wait;
        loop {
            match dir.try_lock() {
                Ok(()) => return Ok(DirLock { _dir: dir }),
                Err(fs::TryLockError::WouldBlock) if Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(100));
                }
                Err(fs::TryLockError::WouldBlock) => {
                    let holder = dir
                        .metadata()
                        .ok()
                        .and_then(|m| lock_holder(m.dev(), m.ino()))
                        .unwrap_or_else(|| "another process".to_string());
                    bail!(
                        "{} is still locked by {holder} after {} s: another run is working on it; \
                         retry when it is done",
                        path.display(),
                        wait.as_secs()
                    );
                }
                Err(fs::TryLockError::Error(e)) => {
                    return Err(e).with_context(|| format!("cannot lock {}", path.display()))
                }
            }
        }
    }

    /// The path with every symlink resolved, as the module sees it (a test
    /// root stripped again).
    pub fn canonicalize(&self, path: &Path) -> io::Result<PathBuf> {
        let real = fs::canonicalize(self.real_path(path))?;
        let root = fs::canonicalize(&self.root)?;
        Ok(match real.strip_prefix(&root) {
            Ok(rest) => Path::new("/").join(rest),
            Err(_) => real,
        })
    }

    /// Size in bytes of a file (following symlinks).
    pub fn file_size(&self, path: &Path) -> io::Result<u64> {
        Ok(fs::metadata(self.real_path(path))?.len())
    }

    /// Sets a file's permission bits.
    pub fn set_mode(&self, path: &Path, mode: u32) -> Result<()> {
        fs::set_permissions(self.real_path(path), fs::Permissions::from_mode(mode))
            .with_context(|| format!("cannot set the mode of {}", path.display()))
    }

    /// Makes `link` a second name of `original` (same file system).
    pub fn hard_link(&self, original: &Path, link: &Path) -> Result<()> {
        fs::hard_link(self.real_path(original), self.real_path(link))
            .with_context(|| format!("cannot link {} to {}", link.display(), original.display()))
    }

    /// Puts a finished file in place of `target`: fsyncs it, renames it
    /// over `target` (atomic on one file system) and fsyncs the folder, so
    /// after a crash `target` is either the old file or the whole new one.
    pub fn rename_durably(&self, from: &Path, target: &Path) -> Result<()> {
        let (real_from, real_target) = (self.real_path(from), self.real_path(target));
        (|| -> io::Result<()> {
            File::open(&real_from)?.sync_all()?;
            fs::rename(&real_from, &real_target)?;
            if let Some(dir) = real_target.parent() {
                File::open(dir)?.sync_all()?;
            }
            Ok(())
        })()
        .with_context(|| format!("cannot move {} to {}", from.display(), target.display()))
    }

    /// Removes a file (not a directory) and fsyncs its folder, so the
    /// removal survives a power cut.
    pub fn remove_file(&self, path: &Path) -> Result<()> {
        let real = self.real_path(path);
        fs::remove_file(&real)
            .and_then(|()| sync_parent(&real))
            .with_context(|| format!("cannot remove {}", path.display()))
    }

    /// fsyncs every regular file of `dir` whose name `wanted` accepts,
    /// then `dir` itself: what another program (depmod) wrote there is on
    /// disk before the run reports success.
    pub fn sync_files(&self, dir: &Path, wanted: impl Fn(&str) -> bool) -> Result<()> {
        let real = self.real_path(dir);
        (|| -> io::Result<()> {
            for entry in fs::read_dir(&real)? {
                let entry = entry?;
                let name = entry.file_name();
                if entry.file_type()?.is_file() && name.to_str().is_some_and(&wanted) {
                    File::open(entry.path())?.sync_all()?;
                }
            }
            File::open(&real)?.sync_all()
        })()
        .with_context(|| format!("cannot sync the files of {}", dir.display()))
    }

    /// Flushes a folder's entries to disk (after files were created or
    /// renamed in it).
    pub fn sync_dir(&self, path: &Path) -> Result<()> {
        File::open(self.real_path(path))
            .and_then(|d| d.sync_all())
            .with_context(|| format!("cannot sync {}", path.display()))
    }

    /// Permission bits of a file (following symlinks).
    pub fn mode(&self, path: &Path) -> io::Result<u32> {
        Ok(fs::metadata(self.real_path(path))?.permissions().mode() & 0o7777)
    }

    /// Owner uid and gid of a file (following symlinks).
    pub fn owner(&self, path: &Path) -> io::Result<(u32, u32)> {
        let meta = fs::metadata(self.real_path(path))?;
        Ok((meta.uid(), meta.gid()))
    }

    /// Removes a folder and everything in it, then fsyncs its parent;
    /// links inside are removed, not followed, and a link at `path` itself
    /// is removed as a link.
    pub fn remove_tree(&self, path: &Path) -> Result<()> {
        let real = self.real_path(path);
        let removed = match fs::symlink_metadata(&real) {
            Ok(meta) if meta.is_dir() => fs::remove_dir_all(&real),
            Ok(_) => fs::remove_file(&real),
            Err(e) => Err(e),
        };
        removed
            .and_then(|()| sync_parent(&real))
            .with_context(|| format!("cannot remove {}", path.display()))
    }

    /// What is at `path`, not following a link there.
    pub fn symlink_metadata(&self, path: &Path) -> io::Result<fs::Metadata> {
        fs::symlink_metadata(self.real_path(path))
    }

    /// Reads the regular file at `path` (not through a link there) and its
    /// permission bits; fails past `cap` bytes without reading further.
    pub fn read_capped(&self, path: &Path, cap: u64) -> Result<(Vec<u8>, u32)> {
        self.read_regular(path, cap, libc::O_NOFOLLOW)
            .with_context(|| format!("cannot read {}", path.display()))
    }

    /// Reads a file the task names (a `src`): links followed, but only a
    /// regular file, and at most `cap` bytes (a device, a pipe or a file
    /// past the cap would fill memory; it fails with an error naming why).
    pub fn read_input(&self, path: &Path, cap: u64) -> io::Result<Vec<u8>> {
        self.read_regular(path, cap, 0).map(|(data, _)| data)
    }

    /// `O_NONBLOCK`: opening a pipe with no writer must not hang before the
    /// check that refuses it.
    fn read_regular(&self, path: &Path, cap: u64, flags: i32) -> io::Result<(Vec<u8>, u32)> {
        let file = fs::OpenOptions::new()
            .read(true)
            .custom_flags(flags | libc::O_NONBLOCK)
            .open(self.real_path(path))?;
        let meta = file.metadata()?;
        if !meta.is_file() {
            return Err(io::Error::other("not a regular file"));
        }
        let mut data = Vec::new();
        io::Read::take(&file, cap.saturating_add(1)).read_to_end(&mut data)?;
        if data.len() as u64 > cap {
            return Err(io::Error::other(format!(
                "larger than {} MiB, the limit",
                cap >> 20
            )));
        }
        Ok((data, meta.mode() & 0o7777))
    }

    /// Removes an empty directory and fsyncs its parent.
    pub fn remove_dir(&self, path: &Path) -> Result<()> {
        let real = self.real_path(path);
        fs::remove_dir(&real)
            .and_then(|()| sync_parent(&real))
            .with_context(|| format!("cannot remove directory {}", path.display()))
    }

    /// Creates one directory with `mode` (its parent must exist; an entry
    /// already there, a symlink included, is an error) and fsyncs the
    /// parent.
    pub fn create_dir(&self, path: &Path, mode: u32) -> Result<()> {
        let real = self.real_path(path);
        fs::DirBuilder::new()
            .mode(mode)
            .create(&real)
            .and_then(|()| fs::set_permissions(&real, fs::Permissions::from_mode(mode)))
            .and_then(|()| sync_parent(&real))
            .with_context(|| format!("cannot create directory {}", path.display()))
    }

    /// Creates a directory and its missing parents (mode 0755), fsyncing
    /// the parent of each one created.
    pub fn create_dir_all(&self, path: &Path) -> Result<()> {
        let real = self.real_path(path);
        let missing: Vec<&Path> = real.ancestors().take_while(|d| !d.exists()).collect();
        fs::create_dir_all(&real)
            .and_then(|()| missing.iter().rev().try_for_each(|d| sync_parent(d)))
            .with_context(|| format!("cannot create directory {}", path.display()))
    }
}

/// fsyncs the folder holding `path`, after an entry in it was added,
/// renamed or removed.
fn sync_parent(path: &Path) -> io::Result<()> {
    match path.parent() {
        Some(dir) => File::open(dir)?.sync_all(),
        None => Ok(()),
    }
}

/// How long [`Host::lock_dir`] waits: longer than initramfs_regen's default
/// `timeout` of one tool run (30 minutes), so that a run holding the lock
/// while its tool hangs has the tool killed and fails before a waiting run
/// gives up; short enough that a hung run is reported.
pub const LOCK_WAIT: Duration = Duration::from_secs(35 * 60);

/// Who holds a `flock` on the file `dev`:`ino`, from `/proc/locks`
/// (`1: FLOCK ADVISORY WRITE <pid> <major>:<minor>:<inode> 0 EOF`), as
/// `pid <pid> (<command line>)`.
fn lock_holder(dev: u64, ino: u64) -> Option<String> {
    // Linux's dev_t packing (major bits 8-19 and 32-43, minor the rest).
    let major = ((dev >> 8) & 0xfff) | ((dev >> 32) & !0xfff);
    let minor = (dev & 0xff) | ((dev >> 12) & !0xff);
    let wanted = format!("{major:02x}:{minor:02x}:{ino}");
    let locks = fs::read_to_string("/proc/locks").ok()?;
    let pid = locks.lines().find_map(|line| {
        let fields: Vec<&str> = line.split_whitespace().collect();
        (fields.get(1) == Some(&"FLOCK") && fields.get(5) == Some(&wanted.as_str()))
            .then(|| fields.get(4).map(|p| p.to_string()))
            .flatten()
    })?;
    let cmdline = fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
    let shown: Vec<String> = cmdline
        .split(|b| *b == 0)
        .filter(|a| !a.is_empty())
        .map(|a| String::from_utf8_lossy(a).into_owned())
        .collect();
    Some(format!("pid {pid} ({})", shown.join(" ")))
}

/// The program search list: the system folders, then the absolute entries
/// of the inherited search path (a relative or empty entry would search the
/// current folder, which the user chose).
fn search_dirs(inherited: Option<OsString>) -> Vec<PathBuf> {
    let mut search: Vec<PathBuf> = SYSTEM_SEARCH_DIRS.iter().map(PathBuf::from).collect();
    let inherited = inherited
        .map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .unwrap_or_default();
    for dir in inherited.into_iter().filter(|d| d.is_absolute()) {
        if !search.contains(&dir) {
            search.push(dir);
        }
    }
    search
}

/// Whether `path` is absolute and names each folder below `/` by name,
/// without `.` or `..`.
pub fn is_plain_absolute(path: &Path) -> bool {
    path.is_absolute()
        && path
            .components()
            .skip(1)
            .all(|c| matches!(c, Component::Normal(_)))
}

/// The user this process runs as (root when that cannot be told).
pub fn process_uid() -> u32 {
    fs::metadata("/proc/self").map(|m| m.uid()).unwrap_or(0)
}

/// Whether `name` is a folder [`Host::private_dir`] made with `prefix`
/// (`.<prefix>-<pid>-<n>`): what a run killed before removing it leaves.
pub fn is_private_dir_name(name: &str, prefix: &str) -> bool {
    let numbers = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    name.strip_prefix('.')
        .and_then(|rest| rest.strip_prefix(prefix))
        .and_then(|rest| rest.strip_prefix('-'))
        .and_then(|rest| rest.split_once('-'))
        .is_some_and(|(pid, n)| numbers(pid) && numbers(n))
}

/// Whether `name` is one of the temporary names [`Host::write_atomic`]
/// gives a new `target` (`.<target>.tmp<pid>.<n>`): what a writer killed
/// before its rename leaves behind.
pub fn is_temp_name_of(name: &str, target: &str) -> bool {
    temp_writer_of(name, target).is_some()
}

/// The process id in a temporary name of [`Host::write_atomic`] for
/// `target` (`.<target>.tmp<pid>.<n>`), or `None` for any other name.
fn temp_writer_of<'a>(name: &'a str, target: &str) -> Option<&'a str> {
    let numbers = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    name.strip_prefix('.')
        .and_then(|rest| rest.strip_prefix(target))
        .and_then(|rest| rest.strip_prefix(".tmp"))
        .and_then(|rest| rest.split_once('.'))
        .filter(|(pid, n)| numbers(pid) && numbers(n))
        .map(|(pid, _)| pid)
}

/// The process that wrote a temporary name of [`Host::write_atomic`]
/// (`.<target>.tmp<pid>.<n>` gives `<pid>`), or `None` for any other name.
pub fn temp_writer(name: &str) -> Option<&str> {
    temp_target(name).and_then(|target| temp_writer_of(name, target))
}

/// The `target` a temporary name of [`Host::write_atomic`] stands for
/// (`.<target>.tmp<pid>.<n>` gives `<target>`), or `None` for any other name.
pub fn temp_target(name: &str) -> Option<&str> {
    name.strip_prefix('.')
        .and_then(|rest| rest.rsplit_once(".tmp"))
        .map(|(target, _)| target)
        .filter(|target| is_temp_name_of(name, target))
}

/// Creates `.<name>.tmp<pid>.<n>` in `dir`, a file no one else had: the
/// exclusive create fails on anything already there, a symlink included,
/// and the file stays mode 0600 until its writer gives it its final mode.
fn create_temp(dir: &Path, name: &std::ffi::OsStr) -> io::Result<(PathBuf, File)> {
    let pid = std::process::id();
    for n in 0..64 {
        let mut tmp_name = OsString::from(".");
        tmp_name.push(name);
        tmp_name.push(format!(".tmp{pid}.{n}"));
        let tmp = dir.join(tmp_name);
        match fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .custom_flags(libc::O_NOFOLLOW)
            .mode(0o600)
            .open(&tmp)
        {
            Ok(file) => return Ok((tmp, file)),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(e),
        }
    }
    Err(io::Error::new(
        io::ErrorKind::AlreadyExists,
        format!(
            "every temporary name for {} is taken",
            name.to_string_lossy()
        ),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::command::{Cmd, ProgramNotFound};

    #[test]
    fn write_atomic_replaces_whole_file_and_sets_mode() -> Result<()> {
        let dir = tempfile::tempdir()?;
        let host = Host::scripted(dir.path(), Script::new());
        fs::create_dir_all(dir.path().join("etc"))?;
        fs::write(
            dir.path().join("etc/x.conf"),
            "old contents that are longer",
        )?;
        host.write_atomic(Path::new("/etc/x.conf"), b"new", 0o640)?;
        assert_eq!(fs::read(dir.path().join("etc/x.conf"))?, b"new");
        let mode = fs::metadata(dir.path().join("etc/x.conf"))?
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o640);
        let names: Vec<_> = host
            .read_dir(Path::new("/etc"))?
            .into_iter()
            .map(|e| e.name)
            .collect();
        assert_eq!(names, ["x.conf"], "no temporary file is left behind");
        Ok(())
    }

    /// Attack: a local user plants a symlink (or a file they keep open) at
    /// the temporary name, so that root's write lands elsewhere or can be
    /// rewritten before the rename.
    #[test]
    fn write_atomic_never_reuses_a_planted_temporary_name() -> Result<()> {
        let dir = tempfile::tempdir()?;
        let host = Host::scripted(dir.path(), Script::new());
        fs::create_dir_all(dir.path().join("etc"))?;
        let victim = dir.path().join("victim");
        fs::write(&victim, "precious")?;
        let pid = std::process::id();
        let planted = dir.path().join(format!("etc/.x.conf.tmp{pid}.0"));
        std::os::unix::fs::symlink(&victim, &planted)?;
        std::os::unix::fs::symlink(&victim, dir.path().join(format!("etc/.x.conf.tmp{pid}")))?;
        host.write_atomic(Path::new("/etc/x.conf"), b"new", 0o600)?;
        assert_eq!(fs::read(&victim)?, b"precious", "the link was not followed");
        assert_eq!(fs::read(dir.path().join("etc/x.conf"))?, b"new");
        assert!(fs::symlink_metadata(dir.path().join("etc/x.conf"))?.is_file());
        assert!(fs::symlink_metadata(&planted)?.file_type().is_symlink());
        Ok(())
    }

    #[test]
    fn temp_names_are_recognised_and_capped_reads_refuse_links_and_excess() -> Result<()> {
        let dir = tempfile::tempdir()?;
        let host = Host::scripted(dir.path(), Script::new());
        let (tmp, _file) = create_temp(dir.path(), std::ffi::OsStr::new("initrd.img-6.1"))?;
        let name = tmp
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        assert!(is_temp_name_of(&name, "initrd.img-6.1"));
        assert_eq!(temp_target(&name), Some("initrd.img-6.1"));
        assert_eq!(temp_target(".a.tmp.tgz.tmp12.3"), Some("a.tmp.tgz"));
        for theirs in [
            ".initrd.img-6.1.tmp",
            ".initrd.img-6.1.tmp1",
            "initrd.img-6.1.tmp1.0",
        ] {
            assert!(!is_temp_name_of(theirs, "initrd.img-6.1"), "{theirs}");
            assert_eq!(temp_target(theirs), None, "{theirs}");
        }
        fs::write(dir.path().join("image"), b"12345")?;
        fs::set_permissions(dir.path().join("image"), fs::Permissions::from_mode(0o640))?;
        assert_eq!(
            host.read_capped(Path::new("/image"), 5)?,
            (b"12345".to_vec(), 0o640)
        );
        let over = host.read_capped(Path::new("/image"), 4).expect_err("5 > 4");
        assert!(format!("{over:#}").contains("the limit"), "{over:#}");
        std::os::unix::fs::symlink(dir.path().join("image"), dir.path().join("link"))?;
        host.read_capped(Path::new("/link"), 5)
            .expect_err("a link is not followed");
        host.remove_tree(Path::new("/link"))?;
        assert!(
            dir.path().join("image").exists(),
            "the link alone is removed"
        );
        Ok(())
    }

    #[test]
    fn links_below_a_base_are_refused() -> Result<()> {
        let dir = tempfile::tempdir()?;
        let host = Host::scripted(dir.path(), Script::new());
        let base = Path::new("/lib/modules/6.1.0-1");
        fs::create_dir_all(dir.path().join("lib/modules/6.1.0-1/kernel"))?;
        fs::create_dir_all(dir.path().join("etc"))?;
        std::os::unix::fs::symlink(
            dir.path().join("etc"),
            dir.path().join("lib/modules/6.1.0-1/updates"),
        )?;
        host.refuse_links_below(base, &base.join("kernel/new/aacraid.ko"))?;
        let through = host
            .refuse_links_below(base, &base.join("updates/aacraid.ko"))
            .expect_err("a link on the way");
        assert!(
            through
                .to_string()
                .contains("/lib/modules/6.1.0-1/updates is a symbolic link"),
            "{through}"
        );
        let last = host
            .refuse_links_below(base, &base.join("updates"))
            .expect_err("the path itself is a link");
        assert!(last.to_string().contains("symbolic link"), "{last}");
        for outside in [
            "/etc/cron.d/x",
            "/lib/modules/6.1.0-1/../x",
            "/lib/modules/6.1.0-1",
        ] {
            let err = host
                .refuse_links_below(base, Path::new(outside))
                .expect_err(outside);
            assert!(err.to_string().contains("is not inside"), "{err}");
        }
        Ok(())
    }

    /// A test host rooted in a new temporary folder holding `folder`, a
    /// real folder with mode 0755.
    fn host_with_folder(folder: &str) -> Result<(tempfile::TempDir, Host)> {
        let dir = tempfile::tempdir()?;
        let host = Host::scripted(dir.path(), Script::new());
        fs::create_dir_all(dir.path().join(folder))?;
        fs::set_permissions(dir.path().join(folder), fs::Permissions::from_mode(0o755))?;
        Ok((dir, host))
    }

    #[test]
    fn private_dir_is_new_closed_and_removed() -> Result<()> {
        let (dir, host) = host_with_folder("usr/src")?;
        let taken = dir
            .path()
            .join(format!("usr/src/.stage-{}-0", std::process::id()));
        std::os::unix::fs::symlink("/etc", &taken)?;
        let made = host.private_dir(Path::new("/usr/src"), "stage")?;
        let real = host.real_path(&made.path);
        assert_ne!(real, taken, "a taken name is skipped");
        let meta = fs::symlink_metadata(&real)?;
        assert!(meta.is_dir());
        assert_eq!(meta.mode() & 0o7777, 0o700);
        host.write_atomic(&made.path.join("f"), b"x", 0o600)?;
        drop(made);
        assert!(!real.exists(), "removed with its files");

        fs::set_permissions(
            dir.path().join("usr/src"),
            fs::Permissions::from_mode(0o777),
        )?;
        let err = host
            .private_dir(Path::new("/usr/src"), "stage")
            .err()
            .expect("a world-writable parent");
        assert!(
            err.to_string().contains("not a folder only root can write"),
            "{err}"
        );
        fs::set_permissions(
            dir.path().join("usr/src"),
            fs::Permissions::from_mode(0o1777),
        )?;
        let sticky = host.private_dir(Path::new("/usr/src"), "stage")?;
        assert_eq!(
            fs::symlink_metadata(host.real_path(&sticky.path))?.mode() & 0o7777,
            0o700
        );
        drop(sticky);
        std::os::unix::fs::symlink(dir.path().join("usr/src"), dir.path().join("usr/link"))?;
        let err = host
            .private_dir(Path::new("/usr/link"), "stage")
            .err()
            .expect("a link as the parent");
        assert!(
            err.to_string().contains("not a folder only root can write"),
            "{err}"
        );
        Ok(())
    }

    /// A tree staged with `put` stays inside the folder: parents are made,
    /// nothing goes through a link or over an existing entry, and a name
    /// that is not plain is refused.
    #[test]
    fn put_writes_inside_the_private_dir_only() -> Result<()> {
        let (dir, host) = host_with_folder("var/tmp")?;
        let made = host.private_dir(Path::new("/var/tmp"), "stage")?;
        let real = host.real_path(&made.path);
        made.put("lib/modules/k/updates/a.ko", b"A")?;
        assert_eq!(fs::read(real.join("lib/modules/k/updates/a.ko"))?, b"A");
        assert_eq!(
            fs::metadata(real.join("lib/modules/k/updates/a.ko"))?.mode() & 0o777,
            0o600
        );
        assert_eq!(
            fs::metadata(real.join("lib/modules/k/updates"))?.mode() & 0o777,
            0o700
        );
        assert!(
            made.put("lib/modules/k/updates/a.ko", b"B").is_err(),
            "never over an entry"
        );
        fs::create_dir_all(dir.path().join("etc"))?;
        std::os::unix::fs::symlink(dir.path().join("etc"), real.join("out"))?;
        assert!(made.put("out/passwd", b"x").is_err(), "a link on the way");
        assert!(made.put("out", b"x").is_err(), "a link as the file");
        for bad in ["../x", "/x", "a/../b", "", "a//b"] {
            assert!(made.put(bad, b"x").is_err(), "{bad:?}");
        }
        assert!(!dir.path().join("etc/passwd").exists() && !dir.path().join("x").exists());
        made.link("usr/lib/modules", "../../lib/modules")?;
        assert_eq!(fs::read(real.join("usr/lib/modules/k/updates/a.ko"))?, b"A");
        Ok(())
    }

    #[test]
    fn a_persisted_private_dir_stays_and_remove_tree_skips_links() -> Result<()> {
        let (dir, host) = host_with_folder("usr/src")?;
        let made = host.private_dir(Path::new("/usr/src"), "stage")?;
        let staged = made.path.clone();
        host.write_atomic(&made.path.join("f"), b"x", 0o644)?;
        made.persist(Path::new("/usr/src/tree"))?;
        assert_eq!(fs::read(dir.path().join("usr/src/tree/f"))?, b"x");
        assert!(!host.exists(&staged));

        fs::create_dir_all(dir.path().join("etc/keep"))?;
        std::os::unix::fs::symlink(dir.path().join("etc"), dir.path().join("usr/src/link"))?;
        host.remove_tree(Path::new("/usr/src/link"))?;
        assert!(
            !host.exists(Path::new("/usr/src/link")),
            "the link is removed"
        );
        assert!(dir.path().join("etc/keep").is_dir(), "and not followed");
        std::os::unix::fs::symlink(dir.path().join("etc"), dir.path().join("usr/src/tree/in"))?;
        host.remove_tree(Path::new("/usr/src/tree"))?;
        assert!(!host.exists(Path::new("/usr/src/tree")));
        assert!(
            dir.path().join("etc/keep").is_dir(),
            "the link inside was not followed"
        );
        Ok(())
    }

    /// Attack: under a become method that keeps the user's `PATH`, root
    /// would run the user's `depmod`, or run dracut with the user's folder
    /// first on its `PATH`.
    #[test]
    fn system_folders_come_first_and_relative_entries_are_dropped() {
        let search = search_dirs(Some(OsString::from("/home/u/bin::.:/usr/sbin:/opt/x/bin")));
        let system: Vec<PathBuf> = SYSTEM_SEARCH_DIRS.iter().map(PathBuf::from).collect();
        assert_eq!(search[..system.len()], system[..]);
        assert_eq!(
            search[system.len()..],
            [PathBuf::from("/home/u/bin"), PathBuf::from("/opt/x/bin")]
        );
    }

    #[test]
    fn a_program_others_can_replace_is_refused_and_named() -> Result<()> {
        let dir = tempfile::tempdir()?;
        let open = dir.path().join("open");
        fs::create_dir(&open)?;
        fs::set_permissions(&open, fs::Permissions::from_mode(0o777))?;
        let tool = open.join("kmod-test-tool");
        fs::write(&tool, "#!/bin/sh\necho replaced\n")?;
        fs::set_permissions(&tool, fs::Permissions::from_mode(0o755))?;
        let host = Host {
            root: PathBuf::from("/"),
            runner: Runner::Real {
                search: vec![open.clone()],
            },
        };
        let err = host
            .find_program("kmod-test-tool")
            .expect_err("a world-writable folder");
        assert_eq!(err.refused.len(), 1, "{err}");
        let shown = err.to_string();
        assert!(shown.contains("is refused"), "{shown}");
        assert!(shown.contains("which is writable by every user"), "{shown}");
        let by_path = host
            .find_program(&tool.display().to_string())
            .expect_err("an explicit path is checked too");
        assert_eq!(by_path.refused.len(), 1, "{by_path}");
        Ok(())
    }

    #[test]
    fn commands_get_a_fixed_environment() -> Result<()> {
        // Nothing of this process's environment (LD_PRELOAD, BASH_ENV, a
        // user's HOME with its .rpmmacros) reaches the tools.
        let out = Host::system().run_ok(&Cmd::new("env"))?;
        let mut names: Vec<&str> = out
            .stdout
            .lines()
            .filter_map(|l| l.split_once('=').map(|(k, _)| k))
            .collect();
        names.sort_unstable();
        assert_eq!(names, ["HOME", "LC_ALL", "PATH"], "{}", out.stdout);
        assert!(out.stdout.contains("HOME=/root\n"), "{}", out.stdout);
        Ok(())
    }

    #[test]
    fn a_held_lock_is_waited_for_then_reported_with_its_holder() -> Result<()> {
        let dir = tempfile::tempdir()?;
        let host = Host::scripted(dir.path(), Script::new());
        fs::create_dir(dir.path().join("boot"))?;
        let held = host.lock_dir(Path::new("/boot"))?;
        let started = Instant::now();
        let err = host
            .lock_dir_within(Path::new("/boot"), Duration::from_millis(300))
            .expect_err("the lock is held");
        assert!(started.elapsed() >= Duration::from_millis(300));
        let msg = err.to_string();
        assert!(
            msg.contains(&format!(
                "/boot is still locked by pid {} (",
                std::process::id()
            )),
            "{msg}"
        );
        drop(held);
        host.lock_dir_within(Path::new("/boot"), Duration::from_millis(300))?;
        Ok(())
    }

    #[test]
    fn write_atomic_failure_leaves_old_file() -> Result<()> {
        let dir = tempfile::tempdir()?;
        let host = Host::scripted(dir.path(), Script::new());
        let err = host
            .write_atomic(Path::new("/missing/dir/file"), b"x", 0o644)
            .expect_err("parent directory does not exist");
        assert!(err.to_string().contains("/missing/dir/file"), "{err}");
        Ok(())
    }

    #[test]
    fn scripted_host_answers_and_records() -> Result<()> {
        let host = Host::scripted(
            "/nonexistent",
            Script::new().answer(&["modinfo", "-n", "x"], 1, "", "not found\n"),
        );
        let out = host.run(&Cmd::new("modinfo").arg("-n").arg("x"))?;
        assert_eq!(out.rc, 1);
        let err = host
            .run_ok(&Cmd::new("modinfo").arg("-n").arg("x"))
            .expect_err("rc 1");
        let failed = err
            .downcast_ref::<crate::CommandFailed>()
            .expect("CommandFailed");
        assert_eq!(failed.stderr, "not found\n");
        let missing = host.run(&Cmd::new("dkms")).expect_err("dkms missing");
        assert!(missing.downcast_ref::<ProgramNotFound>().is_some());
        assert_eq!(host.calls().len(), 2, "a missing program is never run");
        Ok(())
    }

    #[test]
    fn real_host_runs_with_c_locale() -> Result<()> {
        let host = Host::system();
        let out = host.run_ok(&Cmd::new("sh").arg("-c").arg("echo $LC_ALL; echo err >&2"))?;
        assert_eq!(out.stdout, "C\n");
        assert_eq!(out.stderr, "err\n");
        let failed = host
            .run_ok(&Cmd::new("sh").arg("-c").arg("exit 3"))
            .expect_err("exit 3");
        assert_eq!(
            failed.downcast_ref::<crate::CommandFailed>().map(|f| f.rc),
            Some(3)
        );
        Ok(())
    }
}
