//! Failures that Ansible reports in a particular shape: a command that
//! failed (the `cmd`, `rc`, `stdout` and `stderr` keys of Python's
//! `fail_json` after `run_command`), and options that only a module's
//! controller-side action plugin can carry out.

use std::fmt;

/// A command that ran and failed where success was required. Anywhere in an
/// error's chain, it adds `cmd`, `rc`, `stdout` and `stderr` to the failed
/// result.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CommandFailed {
    /// The command line, shell-quoted.
    pub cmd: String,
    /// Its exit code.
    pub rc: i32,
    /// Its standard output.
    pub stdout: String,
    /// Its standard error.
    pub stderr: String,
}

impl CommandFailed {
    /// The last `lines` lines of what the command printed, standard output
    /// first: the part of a long tool output worth putting in a message.
    pub fn tail(&self, lines: usize) -> String {
        last_lines(format!("{}\n{}", self.stdout, self.stderr).trim(), lines)
    }
}

impl fmt::Display for CommandFailed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "`{}` failed with rc {}", self.cmd, self.rc)?;
        let last_line = |text: &str| {
            text.lines()
                .rev()
                .find(|l| !l.trim().is_empty())
                .map(str::to_string)
        };
        let detail = last_line(&self.stderr).or_else(|| last_line(&self.stdout));
        if let Some(line) = detail {
            write!(f, ": {}", line.trim())?;
        }
        Ok(())
    }
}

impl std::error::Error for CommandFailed {}

/// The last `count` lines of `text`.
pub fn last_lines(text: &str, count: usize) -> String {
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(count)..].join("\n")
}

/// The failure of a module binary run without its action plugin for an
/// option only that plugin can carry out (moving files between the
/// controller and the host). `options` names them as the task sets them.
pub fn needs_action_plugin(options: &[&str]) -> anyhow::Error {
    anyhow::anyhow!(
        "{} move files between the controller and the host: they are carried out by this module's action \
         plugin (plugins/action/ in this repository, found through ansible.cfg's action_plugins), which was not \
         used for this run",
        options.join(" and ")
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn message_names_command_rc_and_last_stderr_line() {
        let failed = CommandFailed {
            cmd: "dkms build -m x".into(),
            rc: 10,
            stdout: "building\n".into(),
            stderr: "first\nmake failed\n\n".into(),
        };
        assert_eq!(
            failed.to_string(),
            "`dkms build -m x` failed with rc 10: make failed"
        );
        assert_eq!(failed.tail(2), "first\nmake failed");
        assert_eq!(last_lines("a\nb\nc", 5), "a\nb\nc");
    }
}
