//! Running commands on the [`Host`]: finding programs (the search path plus
//! the sbin folders Ansible's non-login shell lacks), running them with
//! `LC_ALL=C` and no shell, and the [`Script`] a test host answers from.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Mutex;

use anyhow::{anyhow, Context, Result};

use crate::command::{Cmd, Output, ProgramNotFound};
use crate::host::{Host, Runner};

impl Host {
    /// Finds an installed program, or says where it was looked for.
    pub fn find_program(&self, program: &str) -> std::result::Result<PathBuf, ProgramNotFound> {
        match &self.runner {
            Runner::Real { search } => {
                if program.contains('/') {
                    let path = PathBuf::from(program);
                    return if is_executable(&path) {
                        Ok(path)
                    } else {
                        Err(ProgramNotFound {
                            program: program.to_string(),
                            searched: vec![],
                        })
                    };
                }
                search
                    .iter()
                    .map(|dir| dir.join(program))
                    .find(|p| is_executable(p))
                    .ok_or_else(|| ProgramNotFound {
                        program: program.to_string(),
                        searched: search.clone(),
                    })
            }
            Runner::Scripted(script) => {
                if script.installed(program) {
                    Ok(PathBuf::from(program))
                } else {
                    Err(ProgramNotFound {
                        program: program.to_string(),
                        searched: vec![PathBuf::from("<script>")],
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
            Runner::Real { .. } => {
                let out = std::process::Command::new(&program)
                    .args(&cmd.args)
                    .env("LC_ALL", "C")
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
