"""Benchmark: the per-task cost of the static raid_driver_facts module
against ansible.builtin.command running `modinfo -F version aacraid` (a
Python module), on localhost and on a lab container, in one run.

Each playbook has --tasks tasks (default 20) of one kind; a playbook of as
many controller-only `debug` tasks is the baseline. Per-task cost =
(playbook median - baseline median) / tasks. Two near-empty tasks, `ping`
for Python and `raid_driver_facts` reading only /sys/module for the binary,
show what the transport alone costs each kind. The lab container is the lab
image with python3 added (aacraid-lab:dracut-python, made by
`tests/lab/build-image.sh --python dracut`), since the command module needs
Python there.

Every ansible-playbook run sets ANSIBLE_PIPELINING itself (over ansible.cfg's
setting, never inherited from the environment), and every row is measured
both ways: with pipelining a Python module runs in one remote command, without
it in about five (temporary folder, copy, chmod, run, remove). Our binary
modules go through the module cache of plugins/action/binary_module.py: one
remote command with pipelining, four without (the arguments in a file); the
first task on a host also uploads the binary, and the unsampled warm-up run
takes that upload.

Cache states, each row measured in both:
- warm: after one unsampled warm-up run of every playbook;
- cold: the host's page cache is dropped before every task (sync; echo 3 >
  /proc/sys/vm/drop_caches, from a controller-side `pipe` lookup in a debug
  task before each task; root needed). The lab container shares the host's
  kernel and so its page cache: module trees, initramfs images, the module
  binary, docker and Python all come from disk again. The cold baseline has
  the same drop before each of its debug tasks, so the drop is subtracted.

Order: per round, the pipelining settings, the cache states and the kinds
each alternate (as listed, then reversed); at least 3 rounds for a verdict.
A run that fails or does not report every task ok is an error.

Target (kept from the first version of this benchmark; the reason for the
binary module is that it is cheaper per task than Python): in every
combination of host, pipelining and cache state, the per-task cost of
raid_driver_facts (default subset, and modules,loaded) is at most 0.20 of
the command module's.

Usage (from the repository root, after `make build` and the -python image):
    .venv/core-latest/bin/python tests/bench/facts_vs_command.py [--rounds N] [--tasks N] [--report-only]
"""

import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchlib import (  # noqa: E402
    Samples, Target, alternated, finish, parse_args, print_table, require_image, timed_playbook,
)
from lablib import ANSIBLE, NEWEST, REPO, Lab  # noqa: E402

IMAGE = "aacraid-lab:dracut-python"

BASELINE = "debug (baseline, no host contact)"
COMMAND = "command: modinfo -F version aacraid"
PING = "ping (empty Python module)"
FACTS = "raid_driver_facts"
FACTS_LIGHT = "raid_driver_facts gather_subset=modules,loaded"
FACTS_EMPTY = "raid_driver_facts gather_subset=loaded (near-empty)"
KINDS = {
    BASELINE: "ansible.builtin.debug:\n        msg: nothing",
    PING: "ansible.builtin.ping:",
    COMMAND: (
        "ansible.builtin.command: modinfo -F version aacraid\n"
        "      changed_when: false\n      failed_when: false"
    ),
    FACTS_EMPTY: "raid_driver_facts:\n        gather_subset: [loaded]",
    FACTS: "raid_driver_facts:",
    FACTS_LIGHT: "raid_driver_facts:\n        gather_subset: [modules, loaded]",
}
DROP = ("ansible.builtin.debug:\n"
        "        msg: \"{{ lookup('ansible.builtin.pipe', 'sync; echo 3 > /proc/sys/vm/drop_caches') }}\"")


def playbook(body, tasks, cold):
    steps = []
    for i in range(tasks):
        if cold:
            steps.append(f"    - name: Drop the page cache {i}\n      {DROP}\n")
        steps.append(f"    - name: Task {i}\n      {body}\n")
    return f"- name: Bench\n  hosts: target\n  gather_facts: false\n  tasks:\n{''.join(steps)}"


def main():
    args = parse_args(__doc__, lambda p: p.add_argument("--tasks", type=int, default=20,
                                                        help="tasks per playbook (default 20)"))
    require_image(IMAGE, "tests/lab/build-image.sh --python dracut")
    samples = Samples()
    with tempfile.TemporaryDirectory() as tmp, Lab("dracut", image=IMAGE, prefix="rdf-bench") as lab:
        tmp = Path(tmp)
        targets = {
            "localhost": f"target ansible_connection=local ansible_python_interpreter={ANSIBLE[NEWEST] / 'python'}",
            "lab container": (
                f"target ansible_connection=community.docker.docker ansible_host={lab.name} "
                "ansible_python_interpreter=/usr/bin/python3"
            ),
        }
        books = {}
        for cache in ("warm", "cold"):
            for kind, body in KINDS.items():
                books[(kind, cache)] = tmp / f"{len(books)}.yml"
                books[(kind, cache)].write_text(playbook(body, args.tasks, cache == "cold"))
        for target, line in targets.items():
            inv = tmp / f"{target.replace(' ', '-')}.ini"
            inv.write_text(line + "\n")

            def run(kind, cache, pipelining):
                ok = args.tasks * (2 if cache == "cold" else 1)
                return timed_playbook(inv, books[(kind, cache)], pipelining, ok_tasks=ok)

            for pipelining in (False, True):  # warm-up: first runs pay imports and caches
                for kind in KINDS:
                    run(kind, "warm", pipelining)
            for r in range(args.rounds):
                for pipelining in alternated([False, True], r):
                    for cache in alternated(["warm", "cold"], r):
                        for kind in alternated(KINDS, r):
                            samples.add((target, pipelining, cache, kind), run(kind, cache, pipelining))

    def per_task(row):
        base = samples.median((*row[:3], BASELINE))
        return (samples.median(row) - base) / args.tasks

    def versus_command(row):
        return per_task(row) / per_task((*row[:3], COMMAND))

    print_table(f"{args.tasks} tasks per playbook, {args.rounds} rounds; per task = (median - baseline median) / "
                f"{args.tasks}", samples, columns=("host", "pipelining", "cache", "task"),
                key_of=lambda row: (row[0], "on" if row[1] else "off", row[2], row[3]),
                extra=[("per task ms", lambda row: f"{per_task(row) * 1000:.0f}"),
                       ("vs command", lambda row: "" if row[3] == BASELINE else f"{versus_command(row):.2f}")])
    verdicts = []
    for row in samples.rows:
        if row[3] in (FACTS, FACTS_LIGHT):
            text = f"{row[0]}, pipelining {'on' if row[1] else 'off'}, {row[2]}: {row[3]} per task / command's"
            verdicts.append(Target(text, lambda _, row=row: versus_command(row), "<=", 0.2))
    print("\nModule binary sizes (limit 1 MiB = 1048576 bytes):")
    for f in sorted((REPO / "library").iterdir()):
        if not f.name.endswith(".yml"):
            print(f"  {f.name}: {f.stat().st_size} bytes")
    finish(samples, verdicts, args)


if __name__ == "__main__":
    main()
