//! External commands: how they are described, run and reported.
//!
//! Every command runs with `LC_ALL=C` so the parsers in this crate see the
//! same output whatever the host's locale. A command that exits non-zero when
//! the caller needed success becomes a [`CommandFailed`] error, which the
//! protocol crate turns into the `cmd`, `rc`, `stdout` and `stderr` keys of a
//! failed result, the way Python's `fail_json` reports `run_command` errors.

use std::ffi::OsString;
use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use ansible_protocol::CommandFailed;

/// A program and its arguments, not yet run.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Cmd {
    /// Program name (looked up on the search path) or absolute path.
    pub program: String,
    /// Arguments, passed as they are (no shell).
    pub args: Vec<OsString>,
    /// Variables added to the fixed environment (see [`Cmd::env`]).
    pub env: Vec<(String, OsString)>,
    /// How long it may run before its whole process group is killed; `None`
    /// waits for as long as it takes.
    pub timeout: Option<Duration>,
}

impl Cmd {
    /// A command with no arguments yet.
    pub fn new(program: impl Into<String>) -> Self {
        Cmd {
            program: program.into(),
            args: Vec::new(),
            env: Vec::new(),
            timeout: None,
        }
    }

    /// Adds one variable to the fixed environment the command runs with
    /// (`TMPDIR` for a tool that takes its work folder from it). The fixed
    /// variables (`PATH`, `LC_ALL`, `HOME`) cannot be replaced.
    pub fn env(mut self, key: impl Into<String>, value: impl Into<OsString>) -> Self {
        self.env.push((key.into(), value.into()));
        self
    }

    /// Bounds the run: past `limit` the command and every process it
    /// started in its process group are killed, and the run fails.
    pub fn timeout(mut self, limit: Duration) -> Self {
        self.timeout = Some(limit);
        self
    }

    /// Appends one argument.
    pub fn arg(mut self, arg: impl Into<OsString>) -> Self {
        self.args.push(arg.into());
        self
    }

    /// The command as a shell-quoted line, for messages and the `cmd` key.
    pub fn display(&self) -> String {
        std::iter::once(self.program.clone())
            .chain(self.args.iter().map(|a| a.to_string_lossy().into_owned()))
            .map(|word| shell_quote(&word))
            .collect::<Vec<_>>()
            .join(" ")
    }

    /// Program followed by arguments, lossily as strings (what fakes match on).
    pub fn argv(&self) -> Vec<String> {
        std::iter::once(self.program.clone())
            .chain(self.args.iter().map(|a| a.to_string_lossy().into_owned()))
            .collect()
    }
}

impl fmt::Display for Cmd {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.display())
    }
}

fn shell_quote(word: &str) -> String {
    let plain = !word.is_empty()
        && word
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./=:,+@%".contains(c));
    if plain {
        word.to_string()
    } else {
        format!("'{}'", word.replace('\'', r"'\''"))
    }
}

/// What a finished command left behind. Output is decoded lossily as UTF-8
/// because the result JSON must be valid UTF-8.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Output {
    /// Exit code; a command killed by a signal reports `128 + signal`.
    pub rc: i32,
    /// Standard output.
    pub stdout: String,
    /// Standard error.
    pub stderr: String,
}

impl Output {
    /// True when the command exited 0.
    pub fn success(&self) -> bool {
        self.rc == 0
    }

    /// The failure of `cmd`, which left this output: the one way a failed
    /// command becomes an error (see [`CommandFailed`]).
    pub fn failure(self, cmd: &Cmd) -> CommandFailed {
        CommandFailed {
            cmd: cmd.display(),
            rc: self.rc,
            stdout: self.stdout,
            stderr: self.stderr,
        }
    }
}

/// A program that is not installed (not on the search path), or found
/// only where users other than root could have replaced it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProgramNotFound {
    /// The program that was looked for.
    pub program: String,
    /// Where it was looked for.
    pub searched: Vec<PathBuf>,
    /// Copies that were found but refused, each with the reason.
    pub refused: Vec<String>,
}

impl fmt::Display for ProgramNotFound {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let dirs: Vec<String> = self
            .searched
            .iter()
            .map(|d| d.display().to_string())
            .collect();
        if self.refused.is_empty() {
            write!(f, "`{}` is not installed (searched ", self.program)?;
        } else {
            write!(
                f,
                "`{}` is refused: {}; a tool that runs as root must be writable by root only (searched ",
                self.program,
                self.refused.join("; ")
            )?;
        }
        write!(f, "{})", dirs.join(":"))
    }
}

impl std::error::Error for ProgramNotFound {}

/// Directories searched first, before the inherited `$PATH`, in the order
/// of sudo's `secure_path` (root's own overrides in `/usr/local` first): a
/// become method that keeps the user's `PATH` must not make root run the
/// user's `depmod`. They also cover the sbin folders Ansible's non-login
/// shell often lacks.
pub const SYSTEM_SEARCH_DIRS: &[&str] = &[
    "/usr/local/sbin",
    "/usr/local/bin",
    "/usr/sbin",
    "/usr/bin",
    "/sbin",
    "/bin",
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_quotes_only_what_needs_it() {
        let cmd = Cmd::new("modinfo")
            .arg("-k")
            .arg("6.1.0-56-amd64")
            .arg("it's here")
            .arg("");
        assert_eq!(
            cmd.display(),
            r"modinfo -k 6.1.0-56-amd64 'it'\''s here' ''"
        );
    }
}
