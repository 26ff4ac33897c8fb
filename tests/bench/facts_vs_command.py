"""Benchmark: the per-task cost of the static raid_driver_facts module
against ansible.builtin.command running `modinfo -F version aacraid` (a
Python module), on localhost and on a lab container, in one run.

Each playbook has 20 tasks of one kind; a playbook of 20 controller-only
`debug` tasks is the baseline. Per-task cost = (playbook time - baseline
time) / 20, the median of the rounds. Two near-empty tasks, `ping` for
Python and `raid_driver_facts` reading only /sys/module for the binary,
show what the transport alone costs each kind. The lab container is the lab image
with python3 added (aacraid-lab:dracut-python), since the command module
needs Python there.

Usage (from the repository root, after `make build`):
    .venv/core-latest/bin/python tests/bench/facts_vs_command.py [--rounds N]
"""

import argparse
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from lablib import ANSIBLE, NEWEST, REPO, Lab, timed_playbook  # noqa: E402

TASKS = 20
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


def playbook(body):
    tasks = "".join(f"    - name: Task {i}\n      {body}\n" for i in range(TASKS))
    return f"- name: Bench\n  hosts: target\n  gather_facts: false\n  tasks:\n{tasks}"


def run(playbook_path, inventory):
    elapsed, proc = timed_playbook(inventory, playbook_path)
    if proc.returncode != 0 or f"ok={TASKS} " not in proc.stdout:
        sys.exit(f"{playbook_path} failed or skipped tasks:\n{proc.stdout[-3000:]}\n{proc.stderr[-2000:]}")
    return elapsed


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()

    subprocess.run([str(REPO / "tests/lab/build-image.sh"), "--python", "dracut"], check=True,
                   stdout=subprocess.DEVNULL)
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
        for kind, body in KINDS.items():
            books[kind] = tmp / f"{len(books)}.yml"
            books[kind].write_text(playbook(body))
        times = {}
        for target, line in targets.items():
            inv = tmp / "inventory.ini"
            inv.write_text(line + "\n")
            for kind in KINDS:  # warm-up: first runs pay imports and caches
                run(books[kind], inv)
            for _ in range(args.rounds):
                for kind in KINDS:  # interleaved, so noise hits every kind alike
                    times.setdefault((target, kind), []).append(run(books[kind], inv))
        report(times, targets)


def report(times, targets):
    print(f"\n{TASKS} tasks per playbook, median of the rounds; per task = (playbook - baseline) / {TASKS}\n")
    print("| target | task | playbook s | per task ms | vs command |")
    print("|---|---|---:|---:|---:|")
    verdicts = []
    for target in targets:
        med = {kind: statistics.median(times[(target, kind)]) for kind in KINDS}
        per = {kind: (med[kind] - med[BASELINE]) / TASKS * 1000 for kind in KINDS}
        for kind in KINDS:
            ratio = "" if kind == BASELINE else f"{per[kind] / per[COMMAND]:.2f}"
            print(f"| {target} | {kind} | {med[kind]:.2f} | {per[kind]:.0f} | {ratio} |")
        for kind in (FACTS, FACTS_LIGHT):
            verdicts.append((target, kind, per[kind] / per[COMMAND]))
    print("\nTarget: binary per-task cost at most 0.20 of the Python module's")
    for target, kind, ratio in verdicts:
        print(f"  {target:14} {kind:48} {ratio:5.2f} {'meets' if ratio <= 0.2 else 'MISSES'} the target")
    print("\nModule binary sizes (limit 1 MiB = 1048576 bytes):")
    for f in sorted((REPO / "library").iterdir()):
        if not f.name.endswith(".yml"):
            print(f"  {f.name}: {f.stat().st_size} bytes")


if __name__ == "__main__":
    main()
