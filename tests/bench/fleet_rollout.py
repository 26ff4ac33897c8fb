"""Benchmark: the rollout on a fleet of --servers RAID servers (default 20)
plus a build host, over SSH with --forks (default 20), first and second
run, against the notes transcribed (tests/bench/notes.yml), with the wall
time, the controller's CPU seconds and the bytes the hosts received.

The fleet (benchlib.fleet_shape): a dracut build host, then servers dracut
and initramfs-tools in turn, the last one with only the newer kernel; dracut
compresses as Debian configures it (--lab-dracut keeps the lab's faster gzip -1 on
every host). Our playbook runs on the lab images (no
Python) twice, once per `aacraid_server_initramfs_method` (rebuild: dracut or
mkinitramfs per stale image, as the notes; append: one segment appended to
each image, no tool run); the notes run on the -python images with
pipelining on (their faster setting, tests/bench/rollout_vs_notes.py). Each
row gets a fresh fleet; the first run finds nothing installed, the second
runs at once after it.
- controller CPU: user and system seconds of ansible-playbook and every
  process it waited for (its workers, ssh);
- bytes: what the hosts' eth0 received during the run, summed (the SSH
  streams, framing and all, /proc/net/dev read through docker exec).

Targets (issue 14), medians of the same run: our second run at most 1/10 of
the notes' second run (both methods); our first run with `append` at most
1/2 of the notes' first run. Then a projection to 1,000 servers at the same
forks: controller CPU and bytes scaled by 1,000 / --servers, minutes by the
number of batches of --forks servers (the build host's share scaled too, so
an upper bound).

Usage (from the repository root, after `make build` and
`tests/lab/build-image.sh --python all`):
    .venv/core-latest/bin/python tests/bench/fleet_rollout.py [--servers N] [--forks N] [--rounds N] [--report-only]
"""

import math
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchlib import (  # noqa: E402
    Samples, Target, alternated, finish, fleet, fleet_shape, measured_playbook, parse_args, print_table, ratio,
    received_bytes, require_image, rollout_vars,
)
from lablib import REPO, make_vendor_package  # noqa: E402

APPEND = "playbooks/aacraid.yml, method append"
REBUILD = "playbooks/aacraid.yml, method rebuild"
NOTES = "notes transcribed (python3 on the hosts)"
RUNS = ("first", "second")
PROJECTED = 1000


def options(parser):
    parser.add_argument("--servers", type=int, default=20, help="RAID servers in the fleet (default 20)")
    parser.add_argument("--forks", type=int, default=20, help="ansible-playbook --forks (default 20)")
    parser.add_argument("--lab-dracut", action="store_true",
                        help="keep the lab's dracut setting (gzip -1, about 5 times faster than Debian's), on both "
                             "sides alike")
    parser.add_argument("--skip-rebuild", action="store_true",
                        help="leave out our playbook with method rebuild (its targets then are not judged)")


def main():
    args = parse_args(__doc__, options)
    for variant in ("dracut", "initramfs-tools"):
        require_image(f"aacraid-lab:{variant}-python", "tests/lab/build-image.sh --python all")
    shape = fleet_shape(args.servers)
    wall, cpu, sent = Samples(), Samples(), Samples()
    # label → (short name, fleet image suffix, playbook, method)
    variants = {
        APPEND: ("append", "", REPO / "playbooks/aacraid.yml", "append"),
        REBUILD: ("rebuild", "", REPO / "playbooks/aacraid.yml", "rebuild"),
        NOTES: ("notes", "-python", REPO / "tests/bench/notes.yml", None),
    }
    if args.skip_rebuild:
        del variants[REBUILD]
    with tempfile.TemporaryDirectory() as tmp:
        package = make_vendor_package(tmp)
        for r in range(args.rounds):
            for label in alternated(variants, r):
                short, suffix, path, method = variants[label]
                with fleet(f"fleet-{short}", suffix, tmp, shape, not args.lab_dracut) as (inv, hosts):
                    out = f"{tmp}/{short}-{r}"
                    extra_vars = rollout_vars(method is None, package, out, hosts[0].kernels, method)
                    for run in RUNS:
                        before = received_bytes(hosts)
                        seconds, used = measured_playbook(inv, path, True, extra_vars, forks=args.forks)
                        wall.add((label, run), seconds)
                        cpu.add((label, run), used)
                        sent.add((label, run), received_bytes(hosts) - before)

    title = (f"fleet: a build host and {args.servers} servers (dracut and initramfs-tools), over SSH, "
             f"forks {args.forks}, pipelining on, {args.rounds} round(s)")
    versus = [("median vs notes", lambda row: f"{ratio(row, (NOTES, row[1]))(wall):.3f}")]
    print_table(f"{title}: wall seconds per ansible-playbook", wall, ("playbook", "run"), lambda row: row,
                extra=versus)
    print_table(f"{title}: controller CPU seconds", cpu, ("playbook", "run"), lambda row: row)
    print_table(f"{title}: bytes the hosts received", sent, ("playbook", "run"), lambda row: row, unit="bytes",
                digits=0)

    # Bytes and CPU grow with the servers; time with the batches of --forks servers each.
    scale = PROJECTED / args.servers
    batches = math.ceil(PROJECTED / args.forks) / math.ceil(args.servers / args.forks)
    print(f"\nProjection to {PROJECTED:,} servers at forks {args.forks}: this run's medians, minutes times "
          f"{batches:g} (batches), CPU and bytes times {scale:g} (servers):\n")
    print("| playbook | run | minutes | controller CPU minutes | GB sent |")
    print("|---|---|---:|---:|---:|")
    for row in wall.rows:
        print(f"| {row[0]} | {row[1]} | {wall.median(row) * batches / 60:,.1f} | "
              f"{cpu.median(row) * scale / 60:,.1f} | {sent.median(row) * scale / 1e9:,.2f} |")

    targets = [Target(f"second run, {label.split(', ')[1]} / notes", ratio((label, RUNS[1]), (NOTES, RUNS[1])),
                      "<=", 0.1) for label in variants if label != NOTES]
    targets.append(Target("first run, append / notes", ratio((APPEND, RUNS[0]), (NOTES, RUNS[0])), "<=", 0.5))
    finish(wall, targets, args)


if __name__ == "__main__":
    main()
