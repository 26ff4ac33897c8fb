"""Shared by the benchmarks in tests/bench/: the command line (--rounds,
--report-only), samples and their min/median/max, the cold/warm page
cache, timed ansible-playbook runs with pipelining pinned, the table, the
targets and the exit status. The lab containers themselves are
tests/lablib.py's.

A target is a ratio of two rows' medians measured in the same run (never
absolute seconds: the machine is shared and noisy). A benchmark exits 1
when any target is missed, 0 when all are met; with --report-only it
prints the same table and verdicts and always exits 0.
"""

import argparse
import contextlib
import json
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from lablib import (  # noqa: E402
    ANSIBLE, MODULE_VERSION, NEWEST, REPO, VENDOR_VERSION, Lab, LoginKey, ansible_env, docker,
)

MIN_ROUNDS = 3


def parse_args(doc, add_arguments=None):
    """The benchmark's options: --rounds (samples per row, at least 3 for a
    verdict) and --report-only, plus any `add_arguments(parser)` adds."""
    parser = argparse.ArgumentParser(description=doc.splitlines()[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter, epilog=doc)
    parser.add_argument("--rounds", type=int, default=MIN_ROUNDS,
                        help=f"samples per row (default and minimum for a verdict: {MIN_ROUNDS})")
    parser.add_argument("--report-only", action="store_true",
                        help="print the table and verdicts, always exit 0 (fewer rounds allowed)")
    if add_arguments:
        add_arguments(parser)
    args = parser.parse_args()
    if args.rounds < 1 or (args.rounds < MIN_ROUNDS and not args.report_only):
        parser.error(f"--rounds must be at least {MIN_ROUNDS} (or at least 1 with --report-only)")
    return args


def require_image(tag, how):
    """Exits with a message naming `how` to make the image when `tag` is missing."""
    if docker("image", "inspect", tag, check=False).returncode != 0:
        sys.exit(f"image {tag} is missing: run {how}")


def drop_caches():
    """Drops the host's page cache, dentries and inodes. Lab containers share
    the host kernel, so this makes the next read of an image layer, a kernel
    module or an initramfs come from disk again, in the containers too."""
    subprocess.run(["sync"], check=True)
    Path("/proc/sys/vm/drop_caches").write_text("3\n")


def alternated(variants, round_index):
    """The variants in order for one round: as given in even rounds, reversed
    in odd ones (ABBA...), so that neither always runs first."""
    return list(variants) if round_index % 2 == 0 else list(reversed(variants))


class Samples:
    """Figures per row (seconds, unless a benchmark says otherwise), in the
    order rows were first sampled."""

    def __init__(self):
        self.rows = {}

    def add(self, row, seconds):
        self.rows.setdefault(row, []).append(seconds)

    def median(self, row):
        return statistics.median(self.rows[row])

    def spread(self, row):
        """(min, median, max) of a row."""
        values = self.rows[row]
        return min(values), statistics.median(values), max(values)


class Target:
    """A figure `value(samples)` (a ratio of medians of this run) compared
    with `bound`: at most (`op` "<=") or at least (">=")."""

    def __init__(self, text, value, op, bound):
        assert op in ("<=", ">=")
        self.text, self.value, self.op, self.bound = text, value, op, bound

    def met(self, samples):
        value = self.value(samples)
        return value <= self.bound if self.op == "<=" else value >= self.bound


def ratio(numerator, denominator):
    """For a Target: the median of row `numerator` over that of `denominator`."""
    return lambda samples: samples.median(numerator) / samples.median(denominator)


def print_table(title, samples, columns, key_of, extra=(), unit="s", digits=2):
    """Prints one markdown row per sampled row: the cells `key_of(row)`
    under `columns`, n, min/median/max (in `unit`, seconds unless said),
    then one cell per (header, cell_of(row)) of `extra`."""
    print(f"\n{title}\n")
    headers = [*columns, "n", f"min {unit}", f"median {unit}", f"max {unit}", *(header for header, _ in extra)]
    print("| " + " | ".join(headers) + " |")
    print("|" + "---|" * len(columns) + "---:|" * (len(headers) - len(columns)))
    for row in samples.rows:
        low, mid, high = samples.spread(row)
        cells = [*key_of(row), str(len(samples.rows[row])), f"{low:,.{digits}f}", f"{mid:,.{digits}f}",
                 f"{high:,.{digits}f}", *(cell_of(row) for _, cell_of in extra)]
        print("| " + " | ".join(cells) + " |")


def finish(samples, targets, args):
    """Prints each target's verdict; exits 1 when one is missed (unless
    --report-only), else 0."""
    print("\nTargets (medians of this run):")
    missed = 0
    for target in targets:
        met = target.met(samples)
        missed += not met
        print(f"  {target.text}: {target.value(samples):.3f} (bound {target.op} {target.bound}) "
              f"{'met' if met else 'MISSED'}")
    if args.rounds < MIN_ROUNDS:
        print(f"  (only {args.rounds} round(s): exploration only)")
    if missed and not args.report_only:
        print(f"\n{missed} of {len(targets)} target(s) missed", file=sys.stderr)
        sys.exit(1)
    sys.exit(0)


def timed_playbook(inventory_path, path, pipelining, extra_vars=None, ok_tasks=None, forks=None):
    """Wall seconds of one ansible-playbook run of the newest venv, with
    ANSIBLE_PIPELINING set to `pipelining` (never inherited). A failed run
    (non-zero exit, or fewer than `ok_tasks` ok tasks on a host) is an
    error, not a sample."""
    return measured_playbook(inventory_path, path, pipelining, extra_vars, ok_tasks, forks)[0]


def measured_playbook(inventory_path, path, pipelining, extra_vars=None, ok_tasks=None, forks=None):
    """`timed_playbook`'s run; returns its wall seconds and the CPU seconds
    (user and system) the controller spent in it: ansible-playbook, its
    workers and their ssh processes."""
    env = dict(ansible_env(), ANSIBLE_PIPELINING="True" if pipelining else "False")
    extra = ["-e", json.dumps(extra_vars)] if extra_vars is not None else []
    if forks is not None:
        extra += ["--forks", str(forks)]
    used = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.monotonic()
    proc = subprocess.run(
        [str(ANSIBLE[NEWEST] / "ansible-playbook"), "-i", str(inventory_path), str(path), *extra],
        cwd=REPO, env=env, capture_output=True, text=True, stdin=subprocess.DEVNULL,
    )
    seconds = time.monotonic() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - used.ru_utime) + (after.ru_stime - used.ru_stime)
    if proc.returncode != 0 or (ok_tasks is not None and f"ok={ok_tasks} " not in proc.stdout):
        sys.exit(f"{path} (pipelining {pipelining}) failed ({proc.returncode}):\n"
                 f"{proc.stdout[-3000:]}\n{proc.stderr[-2000:]}")
    return seconds, cpu


def fleet_shape(servers):
    """(name, lab variant, group) of a fleet: a dracut build host and
    `servers` RAID servers, dracut and initramfs-tools in turn, the last one
    initramfs-tools and keeping only the newer kernel (see `fleet`)."""
    variants = ["dracut" if i % 2 == 0 else "initramfs-tools" for i in range(servers - 1)] + ["initramfs-tools"]
    return [("build", "dracut", "build_hosts")] + [
        (f"s{i + 1}", variant, "raid_servers") for i, variant in enumerate(variants)]


@contextlib.contextmanager
def fleet(prefix, suffix, tmp, shape, debian_dracut=True):
    """Starts the fleet `shape` (removed on exit), reached over SSH with a
    key made for it, dracut compressing as Debian configures it (unless
    `debian_dracut` is false: the lab's gzip -1, tests/lab/README.md); the
    last host keeps only the newer kernel. Yields (inventory path,
    containers)."""
    folder = Path(tempfile.mkdtemp(prefix=f"{prefix}-", dir=tmp))
    key = LoginKey(folder)
    with contextlib.ExitStack() as stack:
        hosts = []
        groups = {"build_hosts": [], "raid_servers": []}
        for name, variant, group in shape:
            lab = stack.enter_context(Lab(variant, *key.docker_args(), image=f"aacraid-lab:{variant}{suffix}",
                                          prefix=f"{prefix}-{name}"))
            if debian_dracut:
                lab.debian_dracut()
            hosts.append(lab)
            groups[group].append(f"{lab.name} ansible_host={key.trust(lab)}")
        old = hosts[-1].kernels[1]
        hosts[-1].sh(f"rm -rf /lib/modules/{old} /boot/*-{old}")
        inv = folder / "inventory.ini"
        lines = []
        for group, names in groups.items():
            lines += [f"[{group}]", *names]
        lines += ["[all:vars]", *key.inventory_vars()]
        inv.write_text("\n".join(lines) + "\n")
        yield inv, hosts


def rollout_vars(notes, package, fetch_dir, kernels, method=None):
    """The extra variables of one rollout run: of tests/bench/notes.yml when
    `notes`, else of playbooks/aacraid.yml (with `method` for the servers'
    images when given); `kernels` are the build host's."""
    if notes:
        return {"notes_package": package, "notes_version": VENDOR_VERSION, "notes_kernels": kernels,
                "notes_fetch_dir": fetch_dir}
    extra = {"aacraid_build_host_package": package, "aacraid_build_host_fetch_dir": fetch_dir,
             "aacraid_server_driver_version": MODULE_VERSION}
    if method is not None:
        extra["aacraid_server_initramfs_method"] = method
    return extra


def received_bytes(hosts):
    """What the hosts' eth0 received so far, in all (/proc/net/dev, read
    through `docker exec`, which is not network traffic)."""
    total = 0
    for lab in hosts:
        for line in lab.sh("cat /proc/net/dev").splitlines():
            name, _, fields = line.partition(":")
            if name.strip() == "eth0":
                total += int(fields.split()[0])
    return total

