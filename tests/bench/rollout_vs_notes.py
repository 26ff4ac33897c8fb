"""Benchmark: playbooks/aacraid.yml against the notes transcribed literally
(tests/bench/notes.yml: copy, shell, command and fetch tasks), each run twice on
a fresh fleet of the shape of the Molecule `fleet` scenario: a dracut build
host, a dracut server, an initramfs-tools server, and an initramfs-tools server
with only the newer kernel. Our fleet uses the lab images (no Python); the
baseline's uses the -python images (`tests/lab/build-image.sh --python all`).
Both reach their hosts over SSH (ControlPersist on, from ansible.cfg), with a key
made per fleet and host keys checked. Wall time of each ansible-playbook run.

Every run sets ANSIBLE_PIPELINING itself (never inherited). The notes, being
Python modules, are measured both ways (pipelining off: about five remote
commands per task; on: one); ours is measured once, with pipelining on, as the
repository's ansible.cfg sets it (a task of our modules is then one remote
command, the binary run from the host's module cache).

Per round, three fresh fleets (ours, notes without pipelining, notes with it)
in alternating order (as listed, then reversed). On each: the host's page cache
is dropped (sync; echo 3 > /proc/sys/vm/drop_caches; root needed; the containers
share the host's kernel and page cache), then the first run (cold), then at once
the second run (warm: every file was just read). A failed run is an error.

Targets (kept from the first version of this benchmark), against each baseline
row, medians of the same run: our first run no slower than the baseline's
(ratio at most 1.0); our second run at most 1/5 of the baseline's second run
(it should find everything current and start no tool).

Usage (from the repository root, after `make build` and
`tests/lab/build-image.sh --python all`):
    .venv/core-latest/bin/python tests/bench/rollout_vs_notes.py [--rounds N] [--report-only]
"""

import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchlib import (  # noqa: E402
    Samples, Target, alternated, drop_caches, finish, fleet, fleet_shape, parse_args, print_table, ratio,
    require_image, rollout_vars, timed_playbook,
)
from lablib import REPO, make_vendor_package  # noqa: E402

SHAPE = fleet_shape(3)


OURS = "playbooks/aacraid.yml (no Python on the hosts), pipelining on"
NOTES_OFF = "notes transcribed (python3 on the hosts), pipelining off"
NOTES_ON = "notes transcribed (python3 on the hosts), pipelining on"
RUNS = ("first (cold)", "second (warm)")


def main():
    args = parse_args(__doc__)
    for _, variant, _ in SHAPE:
        require_image(f"aacraid-lab:{variant}-python", "tests/lab/build-image.sh --python all")
    samples = Samples()
    # label → (short name, fleet image suffix, playbook, pipelining)
    variants = {
        OURS: ("ours", "", REPO / "playbooks/aacraid.yml", True),
        NOTES_OFF: ("notes-off", "-python", REPO / "tests/bench/notes.yml", False),
        NOTES_ON: ("notes-on", "-python", REPO / "tests/bench/notes.yml", True),
    }
    with tempfile.TemporaryDirectory() as tmp:
        package = make_vendor_package(tmp)
        for r in range(args.rounds):
            for label in alternated(variants, r):
                short, suffix, path, pipelining = variants[label]
                with fleet(f"bench-{short}", suffix, tmp, SHAPE) as (inv, hosts):
                    out = f"{tmp}/{short}-{r}"
                    extra_vars = rollout_vars(label != OURS, package, out, hosts[0].kernels)
                    drop_caches()
                    for run in RUNS:
                        samples.add((label, run), timed_playbook(inv, path, pipelining, extra_vars))

    print_table(f"fleet: dracut build host; dracut, initramfs-tools and one-kernel initramfs-tools servers; "
                f"wall seconds per ansible-playbook, {args.rounds} rounds", samples, columns=("playbook", "run"),
                key_of=lambda row: row,
                extra=[("median vs notes, pipelining off", lambda row: f"{ratio(row, (NOTES_OFF, row[1]))(samples):.2f}"),
                       ("median vs notes, pipelining on", lambda row: f"{ratio(row, (NOTES_ON, row[1]))(samples):.2f}")])
    targets = []
    for notes in (NOTES_OFF, NOTES_ON):
        setting = notes.rsplit(", ", 1)[1]
        targets.append(Target(f"first run, ours / notes ({setting})", ratio((OURS, RUNS[0]), (notes, RUNS[0])),
                              "<=", 1.0))
        targets.append(Target(f"second run, ours / notes ({setting})", ratio((OURS, RUNS[1]), (notes, RUNS[1])),
                              "<=", 0.2))
    finish(samples, targets, args)

if __name__ == "__main__":
    main()
