"""Benchmark: what one task costs after the first, in bytes the controller
sends (measured at the network) and in wall time, for raid_driver_facts
through the module cache against the same module sent the normal way and
against Python modules, over SSH and over the docker connection.

Two lab containers: the lab image (no Python) for our module and
aacraid-lab:dracut-python for the Python modules. Over SSH they are reached
as a user's servers are (a key made for the run, host keys checked,
ControlPersist from ansible.cfg); over community.docker.docker each step is a
`docker exec`.

Per sample, a playbook of --tasks + 1 tasks and one of 1 task run back to
back; their difference over --tasks is the cost of a task after the first,
so the connection set-up and the first upload of a binary cancel out. Every
playbook first ran once unsampled, so the cache holds the binaries.
- bytes (SSH rows only): what the container's eth0 received during the run
  (/proc/net/dev, read through `docker exec`, which is not network traffic):
  the SSH stream, framing and all;
- time: wall seconds per task minus those of the baseline, a controller-only
  `debug` task measured the same way.

Rows (ANSIBLE_PIPELINING set in every run, never inherited; on unless the
row says off):
- raid_driver_facts with gather_subset=loaded (near-empty: the transport) and
  with the default subset, through the cache;
- over SSH also: gather_subset=loaded with pipelining off, and with the cache
  off (aacraid_module_cache=false: ansible-core's own way, the whole binary
  with every task);
- ansible.builtin.command `modinfo -k <the lab's newest kernel> -F version
  aacraid` and ansible.builtin.ping;
- ansible.builtin.raw `true` on the lab host: the transport alone (one remote
  command, no module, no Python), the floor under any task that reaches the
  host. The script prints what the time bound leaves above it.
Per round the rows alternate in order (as listed, then reversed).

Targets (issue 14), medians of this run:
- bytes per task through the cache (default subset, SSH) at most 16 KB;
- time per task of raid_driver_facts (default subset) at most 1/5 of the
  command module's, over SSH and over docker.
The script also prints what a rollout's module tasks send to 1,000 servers
with and without the cache, from the byte medians.

Usage (from the repository root, after `make build` and
`tests/lab/build-image.sh --python dracut`):
    .venv/core-latest/bin/python tests/bench/task_cost.py [--rounds N] [--tasks N] [--report-only]
"""

import contextlib
import hashlib
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchlib import (  # noqa: E402
    Samples, Target, alternated, finish, parse_args, print_table, require_image, timed_playbook,
)
from lablib import Lab, LoginKey  # noqa: E402

PYTHON_IMAGE = "aacraid-lab:dracut-python"
BASELINE = "debug (baseline, no host contact)"
LOADED = "raid_driver_facts gather_subset=loaded"
FACTS = "raid_driver_facts (default subset)"
LOADED_OFF = "raid_driver_facts gather_subset=loaded, pipelining off"
UNCACHED = "raid_driver_facts gather_subset=loaded, cache off (binary sent each task)"
COMMAND = "command: modinfo -k <kernel> -F version aacraid"
PING = "ping"
FLOOR = "raw: true (the transport alone)"
# label → (host, task text, pipelining, extra vars, SSH only)
TASKS = {
    BASELINE: ("ours", "ansible.builtin.debug:\n        msg: nothing", True, {}, False),
    LOADED: ("ours", "raid_driver_facts:\n        gather_subset: [loaded]", True, {}, False),
    FACTS: ("ours", "raid_driver_facts:", True, {}, False),
    LOADED_OFF: ("ours", "raid_driver_facts:\n        gather_subset: [loaded]", False, {}, True),
    UNCACHED: ("ours", "raid_driver_facts:\n        gather_subset: [loaded]", True,
               {"aacraid_module_cache": False}, True),
    COMMAND: ("python", "ansible.builtin.command: modinfo -k {kernel} -F version aacraid", True, {}, False),
    PING: ("python", "ansible.builtin.ping:", True, {}, False),
    FLOOR: ("ours", "ansible.builtin.raw: \"true\"", True, {}, False),
}
TRANSPORTS = ("ssh", "docker")
# Issue 14's bound on a task's time, as a share of the command module's.
TIME_BOUND = 0.2
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


def run(lab, inventory, book, pipelining, extra_vars):
    """(bytes the container received, wall seconds) of one ansible-playbook
    run; a failed run is an error."""
    before = received(lab)
    seconds = timed_playbook(inventory, book, pipelining, extra_vars)
    return received(lab) - before, seconds


def main():
    args = parse_args(__doc__, lambda p: p.add_argument("--tasks", type=int, default=20,
                                                        help="tasks after the first (default 20)"))
    require_image(PYTHON_IMAGE, "tests/lab/build-image.sh --python dracut")
    sent, seconds = Samples(), Samples()
    rows = [(transport, label) for transport in TRANSPORTS for label, spec in TASKS.items()
            if transport == "ssh" or not spec[4]]
    with tempfile.TemporaryDirectory() as tmp, contextlib.ExitStack() as stack:
        key = LoginKey(tmp)
        hosts = {"ours": stack.enter_context(Lab("dracut", *key.docker_args(), prefix="bench-cost")),
                 "python": stack.enter_context(Lab("dracut", *key.docker_args(), image=PYTHON_IMAGE,
                                                   prefix="bench-cost-py"))}
        inventories = {}
        for name, lab in hosts.items():
            inventories[("ssh", name)] = Path(tmp) / f"ssh-{name}.ini"
            inventories[("ssh", name)].write_text(f"{name} ansible_host={key.trust(lab)}\n[all:vars]\n"
                                                  + "\n".join(key.inventory_vars()) + "\n")
            inventories[("docker", name)] = Path(tmp) / f"docker-{name}.ini"
            inventories[("docker", name)].write_text(
                f"{name} ansible_connection=community.docker.docker ansible_host={lab.name}\n")
        kernel = hosts["python"].kernels[0]

        def sample(row, count):
            transport, label = row
            host, task, pipelining, extra_vars, _ = TASKS[label]
            book = playbook(tmp, task.format(kernel=kernel), count)
            return run(hosts[host], inventories[(transport, host)], book, pipelining, extra_vars)

        for row in rows:
            sample(row, args.tasks + 1)
            sample(row, 1)
        for r in range(args.rounds):
            for row in alternated(rows, r):
                bytes_many, seconds_many = sample(row, args.tasks + 1)
                bytes_one, seconds_one = sample(row, 1)
                seconds.add(row, (seconds_many - seconds_one) / args.tasks)
                if row[0] == "ssh":
                    sent.add(row, (bytes_many - bytes_one) / args.tasks)

    def cost(row):
        return seconds.median(row) - seconds.median((row[0], BASELINE))

    print_table(f"bytes the controller sent per task after the first, over SSH (container eth0), "
                f"{args.tasks} + 1 tasks against 1, {args.rounds} rounds", sent, columns=("task",),
                key_of=lambda row: (row[1],), unit="bytes", digits=0,
                extra=[("median vs cache off", lambda row: f"{sent.median(row) / sent.median(('ssh', UNCACHED)):.3f}")])
    print_table(f"wall seconds per task after the first, {args.tasks} + 1 tasks against 1, {args.rounds} rounds",
                seconds, columns=("transport", "task"), key_of=lambda row: row, digits=3,
                extra=[("cost ms (minus baseline)", lambda row: f"{cost(row) * 1000:.0f}"),
                       ("cost vs command", lambda row: f"{cost(row) / cost((row[0], COMMAND)):.2f}")])
    cached, uncached = sent.median(("ssh", FACTS)), sent.median(("ssh", UNCACHED))
    print(f"\nProjection, {ROLLOUT_TASKS} module tasks per server on 1,000 servers: "
          f"{cached * ROLLOUT_TASKS * 1000 / 1e6:.1f} MB through the cache (plus one upload per binary "
          f"and server) against {uncached * ROLLOUT_TASKS * 1000 / 1e6:.1f} MB with the binary sent each task")

    for transport in TRANSPORTS:
        floor, bound = cost((transport, FLOOR)), TIME_BOUND * cost((transport, COMMAND))
        print(f"\n{transport}: the transport alone costs {floor * 1000:.0f} ms a task, "
              f"{floor / cost((transport, COMMAND)):.2f} of the command module's; the time bound "
              f"({bound * 1000:.0f} ms) leaves {(bound - floor) * 1000:.0f} ms above it, where the cached "
              f"module takes {(cost((transport, LOADED)) - floor) * 1000:.0f} (loaded) and "
              f"{(cost((transport, FACTS)) - floor) * 1000:.0f} (default subset)")

    # Each target reads the samples it needs itself.
    targets = [Target("bytes per task through the cache, SSH, default subset", lambda _: sent.median(("ssh", FACTS)),
                      "<=", 16384)]
    for transport in TRANSPORTS:
        targets.append(Target(f"time per task, raid_driver_facts / command, {transport}",
                              lambda _, t=transport: cost((t, FACTS)) / cost((t, COMMAND)), "<=", TIME_BOUND))
    finish(None, targets, args)


if __name__ == "__main__":
    main()
