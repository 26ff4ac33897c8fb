"""The crash-consistency harness of issue 12: kill a module run (and every
process it started) at one write-side system call after another, then prove
that the next runs repair the host. Everything is observed from outside the
binaries: the modules carry no test hook.

How a kill point is reached
---------------------------
A normal run is traced first (the *enumeration run*); a kill point is the
pair (system call S, N) at which strace, in a second run, holds the process
that is first to make its N-th call of S (`-e inject=S:delay_enter=600s:
when=N`). strace's inject counters are per process and per system call, so
the point is the same call in both runs as long as the run is deterministic;
the held call is read back from the log and compared with the enumerated
one, and a run that ends without being held fails the point (it took
another path). The moment strace holds the call (its log ends in the
call's unfinished entry and the process is in tracing stop), every process
of the session gets `kill -9`: the module, the guards it forks for its
tools and the tools (each in a process group of its own, so a kill of the
session's group would miss them), and strace last, so the held process,
stopped while its tracer lives, never runs the held call. A kill point is
"just before call N", which is the same state as "just after the call
before it".

Why not the alternatives: `inject=S:signal=KILL` kills only the process
that makes the call (a module killed while dracut runs leaves dracut
writing /boot, a real crash would not), and strace 6.1 has no
`--kill-on-exit`; PDEATHSIG would need code in the module.

Two scopes, because the counters are per process:

- `module`: strace without `-f`; only the module's own calls are counted,
  so each of them can be reached, including the ones after a tool ran. The
  module's clone/vfork calls are kill points too: the state just before a
  tool (depmod, dracut, dkms) starts.
- `tree`: strace `-f`; the point is the N-th call of the process that is
  first to make N of them, kept only when that process is a child (the
  module's own calls are the other scope). This reaches depmod's writes in
  a kmod_update run. Calls of a later child whose count an earlier child
  reached first cannot be singled out this way; the summary counts only
  reachable points. initramfs_regen has no tree scope: dracut and
  mkinitramfs write nowhere but the run's private folder (tens of
  thousands of calls no crash of /boot depends on), and the module's own
  calls write the image into /boot. aacraid_build has none either: dkms compiles a kernel module
  (thousands of writes in its own build folder, which dkms rebuilds from
  scratch); its points are the module's own calls, each dkms command being
  covered by the kill just before it starts.

Write-side calls: open/openat/creat with O_WRONLY, O_RDWR, O_CREAT or
O_TRUNC; write, pwrite64, writev, pwritev, copy_file_range, sendfile and
splice to a file (not a pipe); rename*,
unlink*, mkdir*, rmdir, link*, symlink*, chmod/fchmod*, chown/fchown*,
truncate/ftruncate, fsync, fdatasync; execve; and in the module scope
clone/clone3/vfork/fork. The log is read with `-y` so every descriptor
carries its path.

What a kill cannot show: the page cache survives a killed process, so a
kill proves the order of the steps, not that they reach the disk. That is
what `fsync_order` checks in the log of a normal run: every file renamed
into place was fsynced before the rename, and its folder after every rename
and unlink.

strace is not in the lab images (adding it to tests/lab/build-image.sh
would invalidate every cached image); the host's strace and the three
libunwind libraries it needs are copied in, since the host and the lab are
both Debian 12, and run through the dynamic loader with `--library-path`,
so no environment variable reaches the traced module.
"""

import os
import re
import shlex
import time
from dataclasses import dataclass, field

from lablib import docker

STRACE_LIBS = ("libunwind-ptrace.so.0", "libunwind-x86_64.so.8", "libunwind.so.8")
STRACE = "/lib64/ld-linux-x86-64.so.2 --library-path /opt/strace/lib /opt/strace/strace"
WORK = "/tmp/crash"
HOLD = "600s"

OPENS = {"open", "openat", "creat"}
WRITES = {"write", "pwrite64", "writev", "pwritev", "pwritev2",
          # what cp (coreutils 9) and friends copy with, in the kernel
          "copy_file_range", "sendfile", "splice"}
RENAMES = {"rename", "renameat", "renameat2"}
UNLINKS = {"unlink", "unlinkat", "rmdir"}
SYNCS = {"fsync", "fdatasync"}
SPAWNS = {"clone", "clone3", "vfork", "fork"}
OTHER = {"mkdir", "mkdirat", "link", "linkat", "symlink", "symlinkat", "chmod", "fchmod", "fchmodat",
         "chown", "fchown", "fchownat", "lchown", "truncate", "ftruncate", "execve", "execveat"}
TRACED = OPENS | WRITES | RENAMES | UNLINKS | SYNCS | SPAWNS | OTHER
WRITE_FLAGS = ("O_WRONLY", "O_RDWR", "O_CREAT", "O_TRUNC")

# Where a run may leave a temporary file, orphan or staging folder.
LEFTOVER_ROOTS = ("/lib/modules", "/var/lib/kmod_update", "/boot", "/usr/src", "/var/lib/dkms",
                  "/root/artifacts", "/var/tmp")
LEFTOVER_NAMES = (".*tmp*", "*.initramfs_regen*", "modules.*.[0-9]*.[0-9]*.[0-9]*", ".aacraid_build-*",
                  "dracut.*", "mkinitramfs*")
# An intent journal is a leftover once the run is over (not searched in
# /usr/src, where kernel headers hold journal-head.h).
JOURNAL_ROOTS = ("/lib/modules", "/var/lib/kmod_update", "/boot")


def install_strace(lab):
    """Copies the host's strace and its libunwind libraries into the lab."""
    lab.sh(f"mkdir -p /opt/strace/lib {WORK}")
    docker("cp", "-L", "/usr/bin/strace", f"{lab.name}:/opt/strace/strace")
    for lib in STRACE_LIBS:
        docker("cp", "-L", f"/lib/x86_64-linux-gnu/{lib}", f"{lab.name}:/opt/strace/lib/{lib}")


# ---- reading strace logs -------------------------------------------------

@dataclass
class Call:
    """One system call of a `-y` log: who made it, its ordinal among that
    process's calls of the same name (what strace's `when=` counts), the
    raw arguments and result."""
    pid: int
    name: str
    nth: int
    args: str
    result: str = ""
    line: int = 0

    def fds(self):
        """Paths of the descriptors among the arguments (`-y` style)."""
        return re.findall(r"\b-?\d+<([^>]*)>", self.args) + re.findall(r"AT_FDCWD<([^>]*)>", self.args)

    def strings(self):
        """The quoted string arguments, unescaped enough for paths."""
        return [s.encode().decode("unicode_escape") for s in re.findall(r'"((?:[^"\\]|\\.)*)"', self.args)]

    def is_write_side(self):
        if self.name in OPENS:
            return self.name == "creat" or any(f in self.args for f in WRITE_FLAGS)
        if self.name in WRITES:
            return any(p.startswith("/") and not p.startswith(("/dev/", WORK)) for p in self.written())
        return self.name in TRACED

    def written(self):
        """Paths of the descriptors a write-family call writes to (the
        first, but the third of copy_file_range and splice)."""
        fds = re.findall(r"\b-?\d+<([^>]*)>", self.args)
        if self.name in ("copy_file_range", "splice"):
            return fds[1:2]
        return fds[:1]

    def paths(self):
        """Every path the call names (descriptors and strings), absolute
        where the log says how."""
        found = [p for p in self.fds() if p.startswith("/")]
        base = re.match(r"\s*(?:AT_FDCWD|-?\d+)<([^>]*)>", self.args)
        for s in self.strings():
            if s.startswith("/"):
                found.append(s)
            elif base and s and not s.startswith("\\"):
                found.append(os.path.join(base.group(1), s))
        return found

    def show(self):
        return f"{self.name}#{self.nth} pid {self.pid}: {self.name}({self.args[:160]}"


ENTRY = re.compile(r"^(?:(\d+)\s+)?([a-z_0-9]+)\((.*)$")
RESUMED = re.compile(r"^(?:(\d+)\s+)?<\.\.\. ([a-z_0-9]+) resumed>(.*)$")


def parse(text, root_pid=None):
    """The calls of a strace log, in the order they were entered. A log
    without pids (no -f) is the process `root_pid` (0 when unknown)."""
    calls, counts, open_calls = [], {}, {}
    for number, line in enumerate(text.splitlines()):
        resumed = RESUMED.match(line)
        if resumed:
            pid = int(resumed.group(1) or root_pid or 0)
            call = open_calls.pop((pid, resumed.group(2)), None)
            if call is not None:
                call.args += resumed.group(3)
                call.result = call.args.rpartition(") = ")[2]
            continue
        entry = ENTRY.match(line)
        if not entry:
            continue
        pid, name, rest = int(entry.group(1) or root_pid or 0), entry.group(2), entry.group(3)
        counts[(pid, name)] = counts.get((pid, name), 0) + 1
        call = Call(pid, name, counts[(pid, name)], rest, line=number)
        if rest.endswith("<unfinished ...>"):
            call.args = rest[: -len("<unfinished ...>")].rstrip()
            open_calls[(pid, name)] = call
        else:
            call.result = rest.rpartition(") = ")[2]
        calls.append(call)
    return calls


@dataclass(frozen=True)
class Point:
    """A kill point: scope, system call, N (strace's `when=`), and what the
    enumeration run did there."""
    scope: str
    name: str
    nth: int
    what: str
    order: int
    call: Call = field(default=None, compare=False, hash=False, repr=False)

    def label(self):
        return f"{self.scope}:{self.name}#{self.nth} [{self.what}]"


def module_points(calls):
    """Kill points of a module-scope log: each write-side call (and spawn)
    of the module but its own start."""
    return [Point("module", c.name, c.nth, c.show(), i, c) for i, c in enumerate(calls)
            if c.is_write_side() and not (i == 0 and c.name == "execve")]


def tree_points(calls, module_pid, offset=0):
    """Kill points of a tree-scope log: (S, N) is reached in the process
    that first makes its N-th call of S; kept when that is a child of the
    module and the call is write-side."""
    first = {}
    for c in calls:
        first.setdefault((c.name, c.nth), c)
    points = []
    for i, c in enumerate(calls):
        if first[(c.name, c.nth)] is c and c.pid != module_pid and c.name not in SPAWNS and c.is_write_side():
            points.append(Point("tree", c.name, c.nth, c.show(), offset + i, c))
    return points


def distinct(points):
    """The points that leave different states: of a run of writes by one
    process to one file with no other write-side call of that process in
    between, only the first and the last are kept (the ones in between
    differ from those only in how much of that file is written)."""
    kept, run = [], []

    def flush():
        kept.extend(run[:1] + run[1:][-1:])
        run.clear()

    for p in points:
        call = p.call
        if call.name in WRITES and run and (run[-1].call.pid, run[-1].call.written()) == (call.pid, call.written()):
            run.append(p)
            continue
        flush()
        if call.name in WRITES:
            run.append(p)
        else:
            kept.append(p)
    flush()
    return kept


def sample(points, size):
    """A deterministic spread of at most `size` points: the first and last
    point of every system call name, then evenly spaced ones."""
    if size is None or len(points) <= size:
        return list(points)
    chosen = set()
    by_name = {}
    for p in points:
        by_name.setdefault(p.name, []).append(p)
    for group in by_name.values():
        chosen.update({group[0], group[-1]})
    chosen = set(sorted(chosen, key=lambda p: p.order)[: size])
    step = len(points) / max(1, size - len(chosen)) if size > len(chosen) else None
    i = 0.0
    while step and len(chosen) < size and i < len(points):
        chosen.add(points[int(i)])
        i += step
    return sorted(chosen, key=lambda p: p.order)


def canonical(path):
    """The path with Debian's merged /usr links resolved (-y shows /usr/lib
    for what the module names /lib)."""
    for top in ("/lib/", "/lib64/", "/bin/", "/sbin/"):
        if path.startswith(top):
            return "/usr" + path
    return path


def fsync_order(calls):
    """Order problems in the calls of one process: a file renamed into
    place that was not fsynced after its last write, a folder not fsynced
    after a rename or unlink in it. Returns messages (empty: in order)."""
    problems = []

    def fds(call):
        return [canonical(p) for p in call.fds()]

    def synced(folder_or_file, among):
        return any(d.name in SYNCS and folder_or_file in fds(d) for d in among)

    for i, c in enumerate(calls):
        if c.name in RENAMES:
            paths = [canonical(p) for p in c.paths()]
            if len(paths) < 2:
                problems.append(f"cannot read the paths of {c.show()}")
                continue
            old, new = paths[-2], paths[-1]
            last_write = max((j for j, d in enumerate(calls[:i])
                              if d.name in WRITES and old in [canonical(p) for p in d.written()]),
                             default=-1)
            if not synced(old, calls[last_write + 1:i]):
                problems.append(f"{old} renamed to {new} without an fsync of it after its last write: {c.show()}")
            if not synced(os.path.dirname(new), calls[i + 1:]):
                problems.append(f"{os.path.dirname(new)} not fsynced after the rename to {new}")
        elif c.name in UNLINKS:
            gone = unlinked(c)
            if gone is None:
                problems.append(f"cannot read the path of {c.show()}")
                continue
            folder = os.path.dirname(gone)
            # A folder the run removes afterwards (a private work folder)
            # needs no sync of its own; its parent's is checked at its removal.
            removed_later = any(d.name in UNLINKS and unlinked(d) == folder for d in calls[i + 1:])
            if not removed_later and not synced(folder, calls[i + 1:]):
                problems.append(f"{folder} not fsynced after {c.name} of {gone}")
    return problems


def creation_problems(calls):
    """Files the process created without O_EXCL and O_NOFOLLOW, or with a
    mode other than 0600 (issue 11: no planted name reused, no link
    followed, nothing readable before it is complete). Returns messages."""
    problems = []
    for c in calls:
        if c.name == "creat":
            problems.append(f"created with creat (no O_EXCL): {c.show()}")
            continue
        found = re.search(r", (O_[A-Z0-9_|]+)(?:, (0[0-7]*))?\)(?: = |$)", c.args)
        if c.name not in ("open", "openat") or not found or "O_CREAT" not in found.group(1).split("|"):
            continue
        flags, mode = found.group(1).split("|"), found.group(2)
        missing = [f for f in ("O_EXCL", "O_NOFOLLOW") if f not in flags]
        if mode != "0600":
            missing.append(f"mode 0600 (mode {mode})")
        if missing:
            problems.append(f"created without {', '.join(missing)}: {c.show()}")
    return problems


def unlinked(call):
    """The path an unlink, unlinkat or rmdir call removes (None if unread)."""
    named = [canonical(p) for p in call.paths() if p not in call.fds()] or [canonical(p) for p in call.paths()]
    return named[-1] if named else None


# ---- running a module under strace, holding and killing it ---------------

def strace_command(lab, program, args_file, scope, inject=None):
    """The shell line that runs `program` under strace in a new session,
    writing the session id to {WORK}/pgid and the log to {WORK}/trace."""
    opts = ["-y", "-s", "256", "-o", f"{WORK}/trace", "-e", f"trace={','.join(sorted(TRACED))}"]
    if scope == "tree":
        # With seccomp-bpf the tracees stop only at the traced calls, not
        # at every call (dracut makes hundreds of thousands).
        opts[:0] = ["-f", "--seccomp-bpf"]
    if inject is not None:
        opts += ["-e", f"inject={inject.name}:delay_enter={HOLD}:when={inject.nth}"]
    inner = (f"echo $$ > {WORK}/pgid; exec {STRACE} {' '.join(map(shlex.quote, opts))} "
             f"{program} {args_file} > {WORK}/out 2> {WORK}/err")
    return f"rm -rf {WORK}/trace {WORK}/out {WORK}/err {WORK}/pgid; mkdir -p {WORK}; setsid -w sh -c {shlex.quote(inner)}"


def traced_run(lab, binary, scope, **options):
    """A normal run under strace: the module's JSON result and the log."""
    program = lab.install(binary)
    args_file = lab.args_file(binary, **options)
    lab.sh(strace_command(lab, program, args_file, scope), check=False)
    out = lab.sh(f"cat {WORK}/out")
    log = lab.sh(f"cat {WORK}/trace")
    lab.sh(f"rm -f {args_file}")
    return out, log


# The poller, run in the container: waits until the last unfinished entry
# of the injected call in the log stays the same, with its process in
# tracing stop, for five polls in a row (0.5 s; strace holds it for ten
# minutes), or until the tracer is gone.
POLL = r"""
pgid=$(cat {work}/pgid 2>/dev/null); stable=0; seen=""
end=$(( $(date +%s) + {timeout} ))
while [ "$(date +%s)" -lt "$end" ]; do
    [ -z "$pgid" ] && pgid=$(cat {work}/pgid 2>/dev/null)
    if [ -n "$pgid" ] && [ ! -d /proc/$pgid ]; then echo DONE; exit 0; fi
    line=$(tail -n 40 {work}/trace 2>/dev/null | grep -E '^([0-9]+ +)?{name}\(' | grep -v ') = ' | tail -n1)
    pid=${{line%% *}}
    case "$pid" in ''|*[!0-9]*) pid=$(cut -d' ' -f1 /proc/$pgid/task/$pgid/children 2>/dev/null);; esac
    state=$(sed -n 's/^State:[[:space:]]*\(.\).*/\1/p' /proc/${{pid:-0}}/status 2>/dev/null)
    if [ -n "$line" ] && [ "$state" = t ] && [ "$line" = "$seen" ]; then stable=$((stable + 1)); else stable=0; fi
    seen=$line
    if [ "$stable" -ge 5 ]; then echo "HELD $pid"; printf '%s\n' "$line"; exit 0; fi
    sleep 0.1
done
echo TIMEOUT
"""

# Kills the session and waits until none of its processes is left: every
# process whose session is the run's, tools included (each leads a process
# group of its own, under the module's guard), so the held call never runs.
KILL = r"""
sid=$(cat {work}/pgid)
for i in $(seq 100); do
    left=""
    for s in /proc/[0-9]*/stat; do
        read -r st < $s 2>/dev/null || continue
        rest=${{st##*) }}; set -- $rest
        # A killed child of strace is reparented to the container's init,
        # which never reaps: a zombie is dead.
        [ "$4" = "$sid" ] && [ "$1" != Z ] && left="$left ${{s#/proc/}}"
    done
    [ -z "$left" ] && exit 0
    # strace (the session leader) last: a held tracee whose tracer died
    # first would go on and run the held call.
    for p in $left; do [ "${{p%/stat}}" = "$sid" ] || kill -9 ${{p%/stat}} 2>/dev/null; done
    kill -9 $sid 2>/dev/null
    sleep 0.1
done
echo "still alive:$left"; exit 1
"""


def kill_at(lab, binary, point, timeout=600, **options):
    """Runs the module until strace holds `point`, then kills the whole
    session. Returns (held line or None, what happened)."""
    program = lab.install(binary)
    args_file = lab.args_file(binary, **options)
    docker("exec", "-d", lab.name, "sh", "-c", strace_command(lab, program, args_file, point.scope, point))
    polled = lab.sh(POLL.format(work=WORK, timeout=timeout, name=point.name), check=False).splitlines()
    verdict = polled[0] if polled else "TIMEOUT"
    killed = lab.sh(KILL.format(work=WORK), check=False)
    if "still alive" in killed:
        raise AssertionError(f"the session of the run survived kill -9: {killed}")
    lab.sh(f"rm -f {args_file}")
    if verdict.startswith("HELD"):
        return polled[1] if len(polled) > 1 else "", "held"
    return None, verdict.lower()


# ---- what every kill point must leave -------------------------------------

def strays(lab):
    """Processes in the container other than its init and this check."""
    script = r"""
for s in /proc/[0-9]*/stat; do
    read -r st < $s 2>/dev/null || continue
    pid=${st%% *}; rest=${st##*) }; set -- $rest
    [ "$pid" = 1 ] || [ "$pid" = $$ ] || [ "$2" = $$ ] || [ "$1" = Z ] && continue
    echo "$pid $(cat /proc/$pid/cmdline 2>/dev/null | tr '\0' ' ')"
done
"""
    return [line for line in lab.sh(script).splitlines() if line.strip()]


def held_locks(lab, folders):
    """/proc/locks entries on any of `folders` (matched by inode)."""
    inodes = set(lab.sh(f"stat -c %i {' '.join(folders)} 2>/dev/null", check=False).split())
    held = []
    for line in lab.sh("cat /proc/locks").splitlines():
        fields = line.split()
        where = next((f for f in fields if f.count(":") == 2), "")
        if where.rpartition(":")[2] in inodes:
            held.append(line)
    return held


def leftovers(lab):
    names = " -o ".join(f"-name {shlex.quote(n)}" for n in LEFTOVER_NAMES)
    roots = " ".join(LEFTOVER_ROOTS)
    found = lab.sh(f"find {roots} \\( {names} \\) -print 2>/dev/null", check=False).split()
    found += lab.sh(f"find {' '.join(JOURNAL_ROOTS)} -name '*journal*' -print 2>/dev/null", check=False).split()
    return found


def tree_state(lab, *roots):
    """Every entry under `roots` (created when missing) with name, type,
    mode, owner, size and link target, and the sha256 of every file; for
    the kernels' own modules (`*/kernel/*`, thousands of files no module
    writes) mtime and ctime stand in for the bytes, since any write changes
    the ctime. Sorted lines, so that two states can be diffed."""
    where = " ".join(roots)
    return lab.sh(
        f"mkdir -p {where}; "
        f"find {where} \\( -path '*/kernel/*' -type f -printf '%p %y %m %U:%G %s %T@ %C@\\n' \\) "
        f"-o \\( -type d -printf '%p %y %m %U:%G\\n' \\) -o -printf '%p %y %m %U:%G %s %l\\n'; "
        f"find {where} -path '*/kernel/*' -prune -o -type f -print0 | xargs -0 -r sha256sum"
    ).splitlines()


def state_diff(before, after, limit=12):
    """The lines only one of two tree_state results has."""
    gone, new = sorted(set(before) - set(after)), sorted(set(after) - set(before))
    return [f"- {line}" for line in gone[:limit]] + [f"+ {line}" for line in new[:limit]]


def image_shas(lab):
    """Image path → sha256 of every initramfs image in /boot."""
    out = lab.sh("cd /boot && for f in initrd.img-* initramfs-*; do [ -f \"$f\" ] && sha256sum \"$f\"; done; true")
    return {f"/boot/{name}": sha for sha, name in (line.split() for line in out.splitlines())}


def image_member_sha(lab, image, kernel, relative):
    """sha256 of `usr/lib/modules/<kernel>/<relative>` in `image`, read by
    the lab's own tool (lsinitrd for dracut, unmkinitramfs otherwise), or
    None when the image does not hold it or cannot be read in full."""
    member = f"usr/lib/modules/{kernel}/{relative}"
    if lab.variant == "dracut":
        listing = lab.sh(f"lsinitrd {image} 2>&1", check=False)
        if member not in listing:
            return None
        out = lab.sh(f"lsinitrd -f {member} {image} > /tmp/member && sha256sum < /tmp/member; rm -f /tmp/member",
                     check=False)
        return out.split()[0] if out else None
    out = lab.sh(f"rm -rf /tmp/unpacked && unmkinitramfs {image} /tmp/unpacked && "
                 f"cd /tmp/unpacked && find . -path '*/{member}' -exec sha256sum {{}} + ; rm -rf /tmp/unpacked",
                 check=False)
    shas = [line.split()[0] for line in out.splitlines() if line.strip()]
    return shas[0] if len(shas) == 1 else None


def resolved(lab, kernel):
    return lab.sh(f"modinfo -k {kernel} -n aacraid", check=False).strip()


def file_sha(lab, path):
    return lab.sh(f"sha256sum < {path}").split()[0]


@dataclass
class Tally:
    """Per-module figures for the closing note."""
    module: str
    unit: str = "kill points"
    enumerated: int = 0
    distinct: int = 0
    tried: int = 0
    recovered: int = 0
    started: float = field(default_factory=time.monotonic)
    failures: dict = field(default_factory=dict)

    def line(self):
        enumerated = f"enumerated {self.enumerated} ({self.distinct} distinct), " if self.enumerated else ""
        return (f"CRASH {self.module}: {self.unit} {enumerated}tried {self.tried}, "
                f"recovered {self.recovered}, failed {len(self.failures)}, "
                f"{time.monotonic() - self.started:.0f} s")

    def report(self):
        lines = [self.line()]
        for label, problems in self.failures.items():
            lines.append(f"  FAIL {label}")
            lines.extend(f"    - {p}" for p in problems)
        return "\n".join(lines)


def only(points):
    """The points whose label matches CRASH_ONLY (a regular expression), to
    try a few points again; all of them when it is not set."""
    pattern = os.environ.get("CRASH_ONLY")
    return points if not pattern else [p for p in points if re.search(pattern, p.label())]


def sweep_size(default):
    """Points per scenario: `default` in `make test` (or CRASH_SAMPLE),
    every point with CRASH_SWEEP=full (`make crash`)."""
    return None if os.environ.get("CRASH_SWEEP") == "full" else int(os.environ.get("CRASH_SAMPLE", default))


# Reports of this session, printed by conftest's terminal summary.
SUMMARY = []


def record_summary(tally):
    SUMMARY.append(tally.report())
    print("\n" + tally.report())
