//! Running commands on the [`Host`]: finding programs (the system folders,
//! then the inherited search path, skipping copies other users could have
//! replaced), running them with no shell in a fixed environment (`PATH` of
//! root-only folders, `LC_ALL=C`, `HOME=/root`, nothing else inherited),
//! each in its own process group that dies with the module and, given a
//! [`Cmd::timeout`], is killed past it; and the [`Script`] a test host
//! answers from.

use std::fs::{self, File};
use std::io::{self, Read};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::{Path, PathBuf};
use std::process::{Child, ExitStatus, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use anyhow::{anyhow, Context, Result};

use crate::command::{Cmd, Output, ProgramNotFound};
use crate::host::{Host, Runner};

impl Host {
    /// Finds an installed program, or says where it was looked for. On the
    /// real host a copy that a user other than root could have replaced
    /// (see [`untrusted`]) is skipped, and named when no other copy is found.
    pub fn find_program(&self, program: &str) -> std::result::Result<PathBuf, ProgramNotFound> {
        match &self.runner {
            Runner::Real { search } => {
                let (candidates, searched) = if program.contains('/') {
                    (vec![PathBuf::from(program)], vec![])
                } else {
                    let found = search.iter().map(|dir| dir.join(program)).collect();
                    (found, search.clone())
                };
                let mut refused = Vec::new();
                for path in candidates.into_iter().filter(|p| is_executable(p)) {
                    match untrusted(&path) {
                        None => return Ok(path),
                        Some(why) => refused.push(why),
                    }
                }
                Err(ProgramNotFound {
                    program: program.to_string(),
                    searched,
                    refused,
                })
            }
            Runner::Scripted(script) => {
                if script.installed(program) {
                    Ok(PathBuf::from(program))
                } else {
                    Err(ProgramNotFound {
                        program: program.to_string(),
                        searched: vec![PathBuf::from("<script>")],
                        refused: vec![],
                    })
                }
            }
        }
    }

    /// Runs a command and returns its output whatever its exit code. Fails
    /// when the program is missing ([`ProgramNotFound`]) or cannot start, and
    /// when it outlives its [`Cmd::timeout`] (a [`crate::CommandFailed`] with the
    /// output so far, under a message that names the command and the limit).
    pub fn run(&self, cmd: &Cmd) -> Result<Output> {
        let program = self.find_program(&cmd.program)?;
        match &self.runner {
            Runner::Real { search } => run_real(&program, cmd, search),
            Runner::Scripted(script) => script.reply(cmd),
        }
    }

    /// Runs a command that must succeed; a non-zero exit is a [`CommandFailed`].
    pub fn run_ok(&self, cmd: &Cmd) -> Result<Output> {
        let out = self.run(cmd)?;
        if out.success() {
            Ok(out)
        } else {
            Err(out.failure(cmd).into())
        }
    }

    /// The commands a scripted host was asked to run, in order (empty for
    /// the real host, which keeps no record).
    pub fn calls(&self) -> Vec<Vec<String>> {
        match &self.runner {
            Runner::Real { .. } => Vec::new(),
            Runner::Scripted(script) => script.calls.lock().map(|c| c.clone()).unwrap_or_default(),
        }
    }
}

/// Runs `cmd` as `program`: no shell, the fixed environment plus the
/// command's own variables, its own process group, killed with the module
/// (see [`guarded`]); stdout and stderr are read as they come
/// (`poll`, no threads) while the deadline is watched, so neither a full
/// pipe nor a hung tool blocks.
fn run_real(program: &Path, cmd: &Cmd, search: &[PathBuf]) -> Result<Output> {
    let mut command = std::process::Command::new(program);
    command.args(&cmd.args).env_clear();
    for (key, value) in &cmd.env {
        command.env(key, value);
    }
    command
        .env("PATH", trusted_path(search))
        .env("LC_ALL", "C")
        .env("HOME", "/root")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0);
    guarded(&mut command);
    let mut child = command
        .spawn()
        .with_context(|| format!("cannot start `{cmd}`"))?;
    let deadline = cmd.timeout.map(|limit| Instant::now() + limit);
    let mut pipes = Pipes {
        fds: [
            child.stdout.take().map(|p| File::from(OwnedFd::from(p))),
            child.stderr.take().map(|p| File::from(OwnedFd::from(p))),
        ],
        read: [Vec::new(), Vec::new()],
    };
    let waited = (|| -> io::Result<Option<ExitStatus>> {
        if !pipes.drain(deadline)? {
            return Ok(None);
        }
        wait_until(&mut child, deadline)
    })()
    .with_context(|| format!("cannot read the output of `{cmd}`"))?;
    if let Some(status) = waited {
        return Ok(pipes.output(status));
    }
    kill_group(&child);
    let status = child
        .wait()
        .with_context(|| format!("cannot wait for `{cmd}`"))?;
    // A process that left the group may keep a pipe open: what came before
    // is enough for the message.
    let _ = pipes.drain(Some(Instant::now() + Duration::from_secs(2)));
    let limit = seconds(cmd.timeout.unwrap_or_default());
    let failed = pipes.output(status).failure(cmd);
    Err(anyhow::Error::new(failed).context(format!(
        "`{cmd}` was still running after the time limit of {limit} s (timeout): it and \
         every process it started in its process group were killed"
    )))
}

/// `limit` in seconds, `1` or `0.5`: integer formatting only, since
/// formatting a float links about 9 KB of the standard library into every
/// module binary.
fn seconds(limit: Duration) -> String {
    let (whole, millis) = (limit.as_secs(), limit.subsec_millis());
    if millis == 0 {
        return whole.to_string();
    }
    let fraction = format!("{millis:03}");
    format!("{whole}.{}", fraction.trim_end_matches('0'))
}

/// The child's exit status, or `None` when `deadline` passed first.
fn wait_until(child: &mut Child, deadline: Option<Instant>) -> io::Result<Option<ExitStatus>> {
    let Some(deadline) = deadline else {
        return child.wait().map(Some);
    };
    loop {
        if let Some(status) = child.try_wait()? {
            return Ok(Some(status));
        }
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Ok(None);
        }
        std::thread::sleep(left.min(Duration::from_millis(50)));
    }
}

/// A command's stdout and stderr (each `None` once closed), and what was
/// read from them.
struct Pipes {
    fds: [Option<File>; 2],
    read: [Vec<u8>; 2],
}

impl Pipes {
    /// Reads until both pipes are closed (true) or `deadline` passes
    /// (false).
    fn drain(&mut self, deadline: Option<Instant>) -> io::Result<bool> {
        loop {
            let open: Vec<usize> = (0..2).filter(|&i| self.fds[i].is_some()).collect();
            if open.is_empty() {
                return Ok(true);
            }
            let wait = match deadline {
                None => None,
                Some(d) => match d.checked_duration_since(Instant::now()) {
                    Some(left) if !left.is_zero() => Some(left),
                    _ => return Ok(false),
                },
            };
            let fds: Vec<BorrowedFd<'_>> = open
                .iter()
                .filter_map(|&i| self.fds[i].as_ref().map(|f| f.as_fd()))
                .collect();
            let ready = poll_readable(&fds, wait)?;
            for (&i, ready) in open.iter().zip(ready) {
                if !ready {
                    continue;
                }
                let mut chunk = [0u8; 8192];
                let n = match &mut self.fds[i] {
                    Some(file) => match file.read(&mut chunk) {
                        Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                        n => n?,
                    },
                    None => 0,
                };
                if n == 0 {
                    self.fds[i] = None;
                } else {
                    self.read[i].extend_from_slice(&chunk[..n]);
                }
            }
        }
    }

    fn output(&self, status: ExitStatus) -> Output {
        let text = |d: &[u8]| String::from_utf8_lossy(d).into_owned();
        Output {
            rc: status
                .code()
                .unwrap_or_else(|| 128 + status.signal().unwrap_or(0)),
            stdout: text(&self.read[0]),
            stderr: text(&self.read[1]),
        }
    }
}

/// Which of `fds` can be read without blocking (data or end of file),
/// waiting up to `wait` (`None`: for as long as it takes) for one.
#[allow(unsafe_code)]
fn poll_readable(fds: &[BorrowedFd<'_>], wait: Option<Duration>) -> io::Result<Vec<bool>> {
    let mut polled: Vec<libc::pollfd> = fds
        .iter()
        .map(|f| libc::pollfd {
            fd: f.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        })
        .collect();
    let timeout = wait.map_or(-1, |w| {
        libc::c_int::try_from(w.as_millis().max(1)).unwrap_or(libc::c_int::MAX)
    });
    // SAFETY: `polled` is a live array of `polled.len()` pollfd structs
    // that poll(2) only reads and fills in; the descriptors stay open (the
    // borrows outlive the call).
    let n = unsafe { libc::poll(polled.as_mut_ptr(), polled.len() as libc::nfds_t, timeout) };
    if n < 0 {
        let e = io::Error::last_os_error();
        if e.kind() == io::ErrorKind::Interrupted {
            return Ok(vec![false; fds.len()]);
        }
        return Err(e);
    }
    Ok(polled.iter().map(|p| p.revents != 0).collect())
}

/// Makes the command, and every process it starts in its process group,
/// die with the module. The forked child becomes a guard: it leads the
/// group, forks the process that runs the program, waits for it and exits
/// with its exit code (128 plus the signal's number when a signal ended it,
/// the code [`Pipes::output`] gives). The kernel sends the guard `SIGTERM`
/// when the module's thread that started it ends (`PR_SET_PDEATHSIG`; a
/// thread waits for the command it started, so before that only the
/// module's death ends it), and the guard then kills its whole group: a killed module leaves neither the tool nor what the tool
/// started (compressors under dracut, make under dkms) writing on. The tool
/// itself gets `SIGKILL` if the guard dies. A module or guard that died
/// before its child's `prctl` is caught by the parent checks. The guard
/// closes every descriptor it inherited, so std's exec-error pipe and the
/// output pipes belong to the tool alone. [`kill_group`] kills the same group
/// on a timeout.
#[allow(unsafe_code)]
fn guarded(command: &mut std::process::Command) {
    let module = std::process::id();
    let inherited = highest_open_fd().saturating_add(SPAWN_FDS);
    // SAFETY: the hook runs between fork and exec and makes only the
    // async-signal-safe system calls of `become_guard`: no allocation, no
    // lock.
    unsafe {
        command.pre_exec(move || become_guard(module, inherited));
    }
}

/// More than the descriptors std opens while it spawns (the stdio pipes,
/// `/dev/null`, the exec-error pipe).
const SPAWN_FDS: libc::c_int = 32;

/// The highest descriptor open now; 1024 when `/proc/self/fd` cannot be read.
fn highest_open_fd() -> libc::c_int {
    fs::read_dir("/proc/self/fd")
        .map(|dir| {
            dir.filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
                .max()
                .unwrap_or(2)
        })
        .unwrap_or(1024)
}

/// The guard's part of [`guarded`], in the forked child: returns (to exec
/// the program) only in the grandchild.
#[allow(unsafe_code)]
fn become_guard(module: u32, inherited: libc::c_int) -> io::Result<()> {
    let check = |rc: libc::c_int| {
        if rc == -1 {
            Err(io::Error::last_os_error())
        } else {
            Ok(())
        }
    };
    // SAFETY: sigaction, prctl, getppid, getpid, fork, waitpid, close and
    // _exit are system calls, async-signal safe, as a forked child requires;
    // `action` is a zeroed plain C struct that sigaction only reads.
    unsafe {
        let mut action: libc::sigaction = std::mem::zeroed();
        action.sa_sigaction = kill_own_group as extern "C" fn(libc::c_int) as libc::sighandler_t;
        check(libc::sigemptyset(&mut action.sa_mask))?;
        check(libc::sigaction(
            libc::SIGTERM,
            &action,
            std::ptr::null_mut(),
        ))?;
        check(set_parent_death_signal(libc::SIGTERM))?;
        if u32::try_from(libc::getppid()).ok() != Some(module) {
            return Err(io::ErrorKind::BrokenPipe.into());
        }
        let guard = libc::getpid();
        let tool = libc::fork();
        if tool == 0 {
            libc::signal(libc::SIGTERM, libc::SIG_DFL);
            check(set_parent_death_signal(libc::SIGKILL))?;
            if libc::getppid() != guard {
                return Err(io::ErrorKind::BrokenPipe.into());
            }
            return Ok(());
        }
        check(tool)?;
        if libc::syscall(libc::SYS_close_range, 0u32, u32::MAX, 0u32) != 0 {
            for fd in 0..=inherited {
                libc::close(fd);
            }
        }
        let mut status = 0;
        while libc::waitpid(tool, &mut status, 0) != tool {
            if io::Error::last_os_error().kind() != io::ErrorKind::Interrupted {
                libc::_exit(127);
            }
        }
        if libc::WIFEXITED(status) {
            libc::_exit(libc::WEXITSTATUS(status));
        }
        libc::_exit(128 + libc::WTERMSIG(status));
    }
}

/// `prctl(PR_SET_PDEATHSIG, signal)`.
#[allow(unsafe_code)]
fn set_parent_death_signal(signal: libc::c_int) -> libc::c_int {
    // SAFETY: prctl with integer arguments touches no memory of ours.
    unsafe {
        libc::prctl(
            libc::PR_SET_PDEATHSIG,
            signal as libc::c_ulong,
            0 as libc::c_ulong,
            0 as libc::c_ulong,
            0 as libc::c_ulong,
        )
    }
}

/// The guard's `SIGTERM` handler: `SIGKILL` to its process group, itself
/// included.
#[allow(unsafe_code)]
extern "C" fn kill_own_group(_: libc::c_int) {
    // SAFETY: kill(2) is async-signal safe and takes two integers.
    unsafe {
        libc::kill(0, libc::SIGKILL);
    }
}

/// Sends `SIGKILL` to the child's process group (the child, the guard,
/// leads it).
#[allow(unsafe_code)]
fn kill_group(child: &Child) {
    if let Ok(group) = libc::pid_t::try_from(child.id()) {
        // SAFETY: kill(2) takes two integers and touches no memory of ours.
        unsafe {
            libc::kill(-group, libc::SIGKILL);
        }
    }
}

/// Why `path` (a program, or a folder) could have been replaced by a user
/// other than root: it, the folder that names it, or a folder above either
/// (links resolved) is not owned by root or is writable by another user. A
/// world-writable folder with the sticky bit (`/tmp`) does not count: other
/// users cannot rename or remove what root owns in it.
fn untrusted(path: &Path) -> Option<String> {
    let real = match fs::canonicalize(path) {
        Ok(real) => real,
        Err(e) => return Some(format!("{}: {e}", path.display())),
    };
    let named_in = path.parent().and_then(|p| fs::canonicalize(p).ok());
    let chains = real
        .ancestors()
        .chain(named_in.iter().flat_map(|p| p.ancestors()));
    for (i, p) in chains.enumerate() {
        let meta = match fs::metadata(p) {
            Ok(meta) => meta,
            Err(e) => return Some(format!("{}: {e}", p.display())),
        };
        let mode = meta.mode();
        let sticky_dir = meta.is_dir() && mode & 0o1000 != 0 && i > 0;
        let why = if meta.uid() != 0 {
            format!("is owned by uid {}", meta.uid())
        } else if mode & 0o002 != 0 && !sticky_dir {
            "is writable by every user".to_string()
        } else if mode & 0o020 != 0 && meta.gid() != 0 && !sticky_dir {
            format!("is writable by group {}", meta.gid())
        } else {
            continue;
        };
        return Some(if p == path {
            format!("{} {why}", path.display())
        } else {
            format!("{} is in {}, which {why}", path.display(), p.display())
        });
    }
    None
}

/// The `PATH` commands run with: the search folders root alone can write.
/// Tools such as dracut and dkms are scripts that run further programs.
fn trusted_path(search: &[PathBuf]) -> std::ffi::OsString {
    let dirs = search
        .iter()
        .filter(|d| d.is_dir() && untrusted(d).is_none());
    std::env::join_paths(dirs).unwrap_or_default()
}

fn is_executable(path: &Path) -> bool {
    fs::metadata(path)
        .map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        .unwrap_or(false)
}

/// Canned answers for a test host: each entry is an exact argv and the
/// output to return. Programs not named in any entry count as not installed.
#[derive(Default)]
pub struct Script {
    answers: Vec<(Vec<String>, Output)>,
    calls: Mutex<Vec<Vec<String>>>,
}

impl Script {
    /// An empty script: every program is missing.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds an answer for the exact command line `argv`.
    pub fn answer(mut self, argv: &[&str], rc: i32, stdout: &str, stderr: &str) -> Self {
        self.answers.push((
            argv.iter().map(|s| s.to_string()).collect(),
            Output {
                rc,
                stdout: stdout.to_string(),
                stderr: stderr.to_string(),
            },
        ));
        self
    }

    fn installed(&self, program: &str) -> bool {
        self.answers.iter().any(|(argv, _)| argv[0] == program)
    }

    fn reply(&self, cmd: &Cmd) -> Result<Output> {
        let argv = cmd.argv();
        if let Ok(mut calls) = self.calls.lock() {
            calls.push(argv.clone());
        }
        self.answers
            .iter()
            .find(|(expected, _)| *expected == argv)
            .map(|(_, out)| out.clone())
            .ok_or_else(|| anyhow!("test script has no answer for `{cmd}`"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Whether process `pid` is gone (or a zombie waiting for its reaper).
    fn gone(pid: &str) -> bool {
        match fs::read_to_string(format!("/proc/{pid}/stat")) {
            Err(_) => true,
            Ok(stat) => stat
                .rsplit_once(") ")
                .is_some_and(|(_, rest)| rest.starts_with('Z')),
        }
    }

    fn gone_within(pid: &str, wait: Duration) -> bool {
        let deadline = Instant::now() + wait;
        while !gone(pid) {
            if Instant::now() > deadline {
                return false;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        true
    }

    #[test]
    fn a_timeout_kills_the_whole_process_group_and_names_the_limit() -> Result<()> {
        let cmd = Cmd::new("sh")
            .arg("-c")
            .arg("sleep 60 & echo $!; echo started >&2; sleep 60")
            .timeout(Duration::from_millis(500));
        let started = Instant::now();
        let err = Host::system().run(&cmd).expect_err("past its limit");
        let took = started.elapsed();
        assert!(took >= Duration::from_millis(500), "{took:?}");
        assert!(took < Duration::from_secs(5), "{took:?}");
        let msg = format!("{err:#}");
        assert!(msg.contains("time limit of 0.5 s (timeout)"), "{msg}");
        assert!(msg.contains("sleep 60 &"), "the command is named: {msg}");
        let failed = err
            .downcast_ref::<crate::CommandFailed>()
            .expect("CommandFailed");
        assert_eq!(failed.rc, 128 + libc::SIGKILL);
        assert_eq!(failed.stderr, "started\n");
        let background = failed.stdout.trim();
        assert!(!background.is_empty(), "{failed:?}");
        assert!(
            gone_within(background, Duration::from_secs(2)),
            "the background sleep {background} of the killed shell is dead"
        );
        Ok(())
    }

    #[test]
    fn a_command_within_its_limit_gives_all_its_output() -> Result<()> {
        // More than a pipe holds on both streams: read while waiting.
        let cmd = Cmd::new("sh")
            .arg("-c")
            .arg("head -c 200000 /dev/zero; head -c 100000 /dev/zero >&2; exit 4")
            .env("TMPDIR", "/nonexistent")
            .timeout(Duration::from_secs(30));
        for cmd in [
            cmd.clone(),
            Cmd {
                timeout: None,
                ..cmd
            },
        ] {
            let out = Host::system().run(&cmd)?;
            assert_eq!(
                (out.rc, out.stdout.len(), out.stderr.len()),
                (4, 200000, 100000)
            );
        }
        let env = Host::system().run_ok(&Cmd::new("env").env("TMPDIR", "/var/tmp/x"))?;
        assert!(env.stdout.contains("TMPDIR=/var/tmp/x\n"), "{}", env.stdout);
        Ok(())
    }

    /// Fields 1 to 5 of a `/proc/<pid>/stat` line: pid, state, ppid, pgrp.
    fn stat_fields(line: &str) -> (String, String, String) {
        let pid = line.split(' ').next().unwrap_or_default().to_string();
        let rest: Vec<&str> = line
            .rsplit_once(") ")
            .map(|(_, rest)| rest.split(' ').collect())
            .unwrap_or_default();
        let field = |i: usize| rest.get(i).copied().unwrap_or_default().to_string();
        (pid, field(1), field(2))
    }

    #[test]
    fn a_command_runs_under_a_guard_that_leads_its_process_group() -> Result<()> {
        let out = Host::system().run_ok(
            &Cmd::new("sh")
                .arg("-c")
                .arg("cat /proc/$$/stat; cat /proc/$PPID/stat"),
        )?;
        let lines: Vec<&str> = out.stdout.lines().collect();
        let [tool, guard] = lines[..] else {
            panic!("two stat lines: {}", out.stdout)
        };
        let (tool_pid, tool_parent, tool_group) = stat_fields(tool);
        let (guard_pid, guard_parent, guard_group) = stat_fields(guard);
        assert_ne!(tool_pid, guard_pid);
        assert_eq!(tool_parent, guard_pid, "{}", out.stdout);
        assert_eq!(tool_group, guard_pid, "{}", out.stdout);
        assert_eq!(guard_group, guard_pid, "{}", out.stdout);
        assert_eq!(guard_parent, std::process::id().to_string());
        Ok(())
    }

    #[test]
    fn the_guard_gives_the_tools_exit_code_or_128_plus_its_signal() -> Result<()> {
        let rc = |script: &str| -> Result<i32> {
            Ok(Host::system()
                .run(&Cmd::new("sh").arg("-c").arg(script))?
                .rc)
        };
        assert_eq!(rc("exit 0")?, 0);
        assert_eq!(rc("exit 3")?, 3);
        assert_eq!(rc("kill -TERM $$")?, 128 + libc::SIGTERM);
        assert_eq!(rc("kill -KILL $$")?, 128 + libc::SIGKILL);
        Ok(())
    }

    const PIDFILE: &str = "LINUX_HOST_TEST_PIDFILE";

    /// Run by [`a_command_dies_with_the_module`] in a process of its own:
    /// starts a long command that starts another in the background, writes
    /// both pids, and waits to be killed.
    #[test]
    #[ignore = "a helper process of a_command_dies_with_the_module"]
    fn helper_runs_a_long_command() -> Result<()> {
        if let Some(pidfile) = std::env::var_os(PIDFILE) {
            let cmd = Cmd::new("sh")
                .arg("-c")
                .arg("sleep 60 & echo \"$$ $!\" > \"$0\"; wait")
                .arg(pidfile);
            Host::system().run(&cmd)?;
        }
        Ok(())
    }

    #[test]
    fn a_command_dies_with_the_module() -> Result<()> {
        let dir = tempfile::tempdir()?;
        let pidfile = dir.path().join("pid");
        let mut module = std::process::Command::new(std::env::current_exe()?)
            .args([
                "--exact",
                "run::tests::helper_runs_a_long_command",
                "--ignored",
            ])
            .env(PIDFILE, &pidfile)
            .stdout(Stdio::null())
            .spawn()?;
        let deadline = Instant::now() + Duration::from_secs(30);
        let pids = loop {
            let text = fs::read_to_string(&pidfile).unwrap_or_default();
            if text.ends_with('\n') {
                break text
                    .split_whitespace()
                    .map(String::from)
                    .collect::<Vec<_>>();
            }
            assert!(Instant::now() < deadline, "the helper never started");
            std::thread::sleep(Duration::from_millis(20));
        };
        let [shell, background] = &pids[..] else {
            panic!("two pids: {pids:?}")
        };
        let cmdline = fs::read(format!("/proc/{background}/cmdline"))?;
        assert!(cmdline.starts_with(b"sleep\0"), "{cmdline:?}");
        module.kill()?;
        module.wait()?;
        // The shell got no signal from the kernel for the module's death, nor
        // did the sleep it started: the guard killed both.
        for pid in [shell, background] {
            assert!(
                gone_within(pid, Duration::from_secs(2)),
                "{pid} outlived the module"
            );
        }
        Ok(())
    }
}
