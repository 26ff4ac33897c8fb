//! Running commands on the [`Host`]: finding programs (the system folders,
//! then the inherited search path, skipping copies other users could have
//! replaced), running them with no shell in a fixed environment (`PATH` of
//! root-only folders, `LC_ALL=C`, `HOME=/root`, nothing else inherited), and
//! the [`Script`] a test host answers from.

use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Mutex;

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
    /// only when the program is missing ([`ProgramNotFound`]) or cannot start.
    pub fn run(&self, cmd: &Cmd) -> Result<Output> {
        let program = self.find_program(&cmd.program)?;
        match &self.runner {
            Runner::Real { search } => {
                let out = std::process::Command::new(&program)
                    .args(&cmd.args)
                    .env_clear()
                    .env("PATH", trusted_path(search))
                    .env("LC_ALL", "C")
                    .env("HOME", "/root")
                    .stdin(Stdio::null())
                    .output()
                    .with_context(|| format!("cannot start `{cmd}`"))?;
                let rc = out.status.code().unwrap_or_else(|| {
                    use std::os::unix::process::ExitStatusExt;
                    128 + out.status.signal().unwrap_or(0)
                });
                Ok(Output {
                    rc,
                    stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
                    stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
                })
            }
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
