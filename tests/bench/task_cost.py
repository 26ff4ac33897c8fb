"""Benchmark: bytes the controller sends per task, measured at the network,
for raid_driver_facts through the module cache against the same module sent
the normal way and against Python modules, all over SSH.

Two lab containers reached over SSH as a user's servers are (a key made for
the run, host keys checked, ControlPersist from ansible.cfg): the lab image
(no Python) for our module and aacraid-lab:dracut-python for the Python
modules. What the controller sent is what the container's eth0 received
(/proc/net/dev, read through `docker exec`, which is not network traffic):
the SSH stream, headers and all. A playbook of --tasks + 1 tasks minus one of
1 task, divided by --tasks, is the cost of a task after the first, so the
connection set-up and the first upload of a binary cancel out. Both
playbooks run after an unsampled warm-up run, so the cache holds the binary.

Rows (ANSIBLE_PIPELINING set in every run, never inherited):
- raid_driver_facts gather_subset=loaded through the cache, pipelining on
  and off;
- the same with the cache off (aacraid_module_cache=false): ansible-core's
  own way, the whole binary with every task;
- ansible.builtin.command `modinfo -k <the lab's newest kernel> -F version
  aacraid` and ping, pipelining on.
Per round the rows alternate in order (as listed, then reversed).

Target (issue 14): through the cache with pipelining on, at most 16 KB
(16,384 bytes) per task after the first (median). The script also prints
what a rollout's module tasks send to 1,000 servers with and without the
cache, from these medians.

Usage (from the repository root, after `make build` and
`tests/lab/build-image.sh --python dracut`):
    .venv/core-latest/bin/python tests/bench/task_bytes.py [--rounds N] [--tasks N] [--report-only]
"""

import contextlib
import hashlib
import json
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchlib import Samples, Target, alternated, finish, parse_args, print_table, require_image  # noqa: E402
from lablib import ANSIBLE, NEWEST, REPO, Lab, LoginKey, ansible_env  # noqa: E402

PYTHON_IMAGE = "aacraid-lab:dracut-python"
FACTS = "raid_driver_facts:\n        gather_subset: [loaded]"
# label → (host, task text, pipelining, extra vars)
ROWS = {
    "raid_driver_facts, module cache, pipelining on": ("ours", FACTS, True, {}),
    "raid_driver_facts, module cache, pipelining off": ("ours", FACTS, False, {}),
    "raid_driver_facts, cache off (binary sent each task), pipelining on":
        ("ours", FACTS, True, {"aacraid_module_cache": False}),
    "command: modinfo -k <kernel> -F version aacraid, pipelining on":
        ("python", "ansible.builtin.command: modinfo -k {kernel} -F version aacraid", True, {}),
    "ping, pipelining on": ("python", "ansible.builtin.ping:", True, {}),
}
CACHED = "raid_driver_facts, module cache, pipelining on"
UNCACHED = "raid_driver_facts, cache off (binary sent each task), pipelining on"
# Module tasks of playbooks/aacraid.yml on a server, without the reboot: facts (first
# play), facts (role), kmod_update in check mode, kmod_update, initramfs_regen, facts.
# The artifacts kmod_update uploads (`src`) are not counted: they are the same either way.
ROLLOUT_TASKS = 6


def received(lab):
    """Bytes the container's eth0 has received."""
    for line in lab.sh("cat /proc/net/dev").splitlines():
        name, _, counters = line.partition(":")
        if name.strip() == "eth0":
            return int(counters.split()[0])
    raise AssertionError(f"{lab.name} has no eth0")


def playbook(folder, task, count):
    path = Path(folder) / f"play-{hashlib.sha256(f'{task} {count}'.encode()).hexdigest()[:12]}.yml"
    path.write_text("- hosts: all\n  gather_facts: false\n  tasks:\n" + "".join(
        f"    - name: Task {i}\n      {task}\n      changed_when: false\n" for i in range(count)))
    return path


def sent(lab, inventory, book, pipelining, extra_vars):
    """Bytes the container received during one ansible-playbook run; a failed
    run is an error."""
    env = dict(ansible_env(), ANSIBLE_PIPELINING="True" if pipelining else "False")
    before = received(lab)
    proc = subprocess.run([str(ANSIBLE[NEWEST] / "ansible-playbook"), "-i", str(inventory), str(book),
                           "-e", json.dumps(extra_vars)],
                          cwd=REPO, env=env, capture_output=True, text=True, stdin=subprocess.DEVNULL)
    if proc.returncode != 0:
        sys.exit(f"{book} failed ({proc.returncode}):\n{proc.stdout[-3000:]}\n{proc.stderr[-2000:]}")
    return received(lab) - before


def main():
    args = parse_args(__doc__, lambda p: p.add_argument("--tasks", type=int, default=20,
                                                        help="tasks after the first (default 20)"))
    require_image(PYTHON_IMAGE, "tests/lab/build-image.sh --python dracut")
    samples = Samples()
    with tempfile.TemporaryDirectory() as tmp, contextlib.ExitStack() as stack:
        key = LoginKey(tmp)
        hosts = {"ours": stack.enter_context(Lab("dracut", *key.docker_args(), prefix="bench-bytes")),
                 "python": stack.enter_context(Lab("dracut", *key.docker_args(), image=PYTHON_IMAGE,
                                                   prefix="bench-bytes-py"))}
        inventories = {}
        for name, lab in hosts.items():
            inventories[name] = Path(tmp) / f"{name}.ini"
            inventories[name].write_text(f"{name} ansible_host={key.trust(lab)}\n[all:vars]\n"
                                         + "\n".join(key.inventory_vars()) + "\n")
        kernel = hosts["python"].kernels[0]
        for label, (host, task, pipelining, extra_vars) in ROWS.items():
            task = task.format(kernel=kernel)
            sent(hosts[host], inventories[host], playbook(tmp, task, 1), pipelining, extra_vars)
        for r in range(args.rounds):
            for label in alternated(ROWS, r):
                host, task, pipelining, extra_vars = ROWS[label]
                task = task.format(kernel=kernel)
                one = sent(hosts[host], inventories[host], playbook(tmp, task, 1), pipelining, extra_vars)
                many = sent(hosts[host], inventories[host], playbook(tmp, task, args.tasks + 1), pipelining,
                            extra_vars)
                samples.add(label, (many - one) / args.tasks)

    print_table(f"bytes the controller sent per task after the first, over SSH (container eth0), "
                f"{args.tasks} + 1 tasks against 1, {args.rounds} rounds", samples, columns=("task",),
                key_of=lambda row: (row,), unit="bytes", digits=0,
                extra=[("median vs cache off", lambda row: f"{samples.median(row) / samples.median(UNCACHED):.3f}")])
    cached, uncached = samples.median(CACHED), samples.median(UNCACHED)
    print(f"\nProjection, {ROLLOUT_TASKS} module tasks per server on 1,000 servers: "
          f"{cached * ROLLOUT_TASKS * 1000 / 1e6:.1f} MB through the cache (plus one upload per binary "
          f"and server) against {uncached * ROLLOUT_TASKS * 1000 / 1e6:.1f} MB with the binary sent each task")
    finish(samples, [Target("per task through the cache, pipelining on, bytes", lambda s: s.median(CACHED),
                            "<=", 16384)], args)


if __name__ == "__main__":
    main()
