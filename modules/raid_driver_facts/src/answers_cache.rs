//! The tools' half of the facts cache: what `modinfo -n` and `dkms status`
//! answered, kept with a [`Stamp`] of everything the answer depends on, so
//! that a gather of an unchanged host runs neither (`dkms status` is a shell
//! script of about a dozen processes, `modinfo` one process per kernel: most
//! of a warm gather's time before this cache).
//!
//! The caller says what the tool reads (the stamp); the program itself, as
//! found on the search path, is added here. An answer is kept only from a
//! real run, when the stamp is keepable and the tool exited by itself (an
//! exit status below 126: not a signal, not a program that failed to start).

use std::path::{Path, PathBuf};
use std::time::SystemTime;

use anyhow::Result;
use formats::modinfo::sha256_hex;
use linux_host::{Cmd, Host, Output};
use serde::{Deserialize, Serialize};

use crate::image_cache::Cache;
use crate::stamp::Stamp;

/// A kept answer is a tool's short report; past this it is not one of ours.
const ANSWER_MAX: u64 = 1 << 20;

#[derive(Serialize, Deserialize)]
struct AnswerEntry {
    binary: String,
    command: String,
    /// The path whose removal makes the answer useless (a kernel's module
    /// tree), if any.
    subject: Option<String>,
    stamp: Stamp,
    rc: i32,
    stdout: String,
    stderr: String,
}

/// Files of answer entries start with this.
pub const PREFIX: &str = "answer-";

impl Cache {
    fn answer_path(&self, command: &str) -> PathBuf {
        let id = sha256_hex(command.as_bytes());
        self.dir.join(format!("{PREFIX}{id}.json"))
    }

    fn answer(&self, host: &Host, command: &str, stamp: &Stamp) -> Option<Output> {
        let (entry, _): (AnswerEntry, _) =
            self.read_entry(host, &self.answer_path(command), ANSWER_MAX)?;
        (entry.binary == self.binary && entry.command == command && stamp.matches(&entry.stamp))
            .then_some(Output {
                rc: entry.rc,
                stdout: entry.stdout,
                stderr: entry.stderr,
            })
    }
}

/// What `cmd` answers: the kept answer while the stamp `reads` takes
/// matches the one kept with it, else a run of `cmd` (kept for the next
/// gather when it may be). `subject`: see [`AnswerEntry`]. Without a cache,
/// just a run.
pub fn run(
    cache: Option<&Cache>,
    host: &Host,
    cmd: &Cmd,
    reads: impl FnOnce(&mut Stamp),
    subject: Option<&Path>,
) -> Result<Output> {
    let Some(cache) = cache else {
        return host.run(cmd);
    };
    let started = SystemTime::now();
    let mut stamp = Stamp::default();
    if let Ok(program) = host.find_program(&cmd.program) {
        stamp.value("program", &program.display().to_string());
        stamp.followed(host, &program);
    }
    reads(&mut stamp);
    let command = cmd.display();
    if let Some(kept) = cache.answer(host, &command, &stamp) {
        return Ok(kept);
    }
    let out = host.run(cmd)?;
    if stamp.keepable(started) && (0..126).contains(&out.rc) {
        let entry = AnswerEntry {
            binary: cache.binary.clone(),
            command: command.clone(),
            subject: subject.map(|s| s.display().to_string()),
            stamp,
            rc: out.rc,
            stdout: out.stdout.clone(),
            stderr: out.stderr.clone(),
        };
        if let Ok(bytes) = serde_json::to_vec(&entry) {
            cache.queue_bytes(cache.answer_path(&command), bytes);
        }
    }
    Ok(out)
}

/// The path an answer entry depends on, if it names one.
pub fn subject(bytes: &[u8]) -> Option<PathBuf> {
    let entry: AnswerEntry = serde_json::from_slice(bytes).ok()?;
    entry.subject.map(PathBuf::from)
}
