"""Benchmark: playbooks/aacraid.yml against the notes transcribed literally
(tests/bench/notes.yml: copy, shell, command and fetch tasks), each run twice on
the same fleet shape as the Molecule `fleet` scenario: a dracut build host, a
dracut server, an initramfs-tools server, and an initramfs-tools server with
only the newer kernel. Our fleet uses the lab images (no Python); the baseline's
uses the -python images. Wall time of each ansible-playbook run, one run.
Targets: our first run no slower than the baseline's; our second run at most
1/5 of the baseline's second run.

Usage (from the repository root, after `make build` and
`tests/lab/build-image.sh --python all`):
    .venv/core-latest/bin/python tests/bench/rollout_vs_notes.py
"""

import json
import os
import subprocess
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
BIN = REPO / ".venv/core-latest/bin"
VERSION = "1.2.1.41024"
SHAPE = [("build", "dracut", "build_hosts"), ("s1", "dracut", "raid_servers"),
         ("s2", "initramfs-tools", "raid_servers"), ("s3", "initramfs-tools", "raid_servers")]


def docker(*args):
    return subprocess.run(["docker", *args], check=True, capture_output=True, text=True).stdout


def fleet(prefix, suffix, tmp):
    """Starts the fleet; returns (inventory path, container names)."""
    names = []
    groups = {"build_hosts": [], "raid_servers": []}
    for name, variant, group in SHAPE:
        full = f"{prefix}-{name}"
        subprocess.run(["docker", "rm", "-f", full], capture_output=True)
        docker("run", "-d", "--name", full, f"aacraid-lab:{variant}{suffix}")
        names.append(full)
        groups[group].append(full)
    old = docker("exec", names[-1], "sed", "-n", "2p", "/etc/aacraid-lab/kernels").strip()
    docker("exec", names[-1], "sh", "-c", f"rm -rf /lib/modules/{old} /boot/*-{old}")
    inv = Path(tmp) / f"{prefix}.ini"
    lines = []
    for group, hosts in groups.items():
        lines += [f"[{group}]", *hosts]
    lines += ["[all:vars]", "ansible_connection=community.docker.docker"]
    inv.write_text("\n".join(lines) + "\n")
    return inv, names


def playbook(inv, path, extra):
    env = dict(os.environ, ANSIBLE_CONFIG=str(REPO / "ansible.cfg"), ANSIBLE_NOCOLOR="1")
    start = time.monotonic()
    out = subprocess.run([str(BIN / "ansible-playbook"), "-i", str(inv), str(path), "-e", json.dumps(extra)],
                         cwd=REPO, env=env, capture_output=True, text=True)
    seconds = time.monotonic() - start
    if out.returncode != 0:
        raise SystemExit(f"{path} failed:\n{out.stdout[-3000:]}\n{out.stderr[-2000:]}")
    return seconds


def main():
    with tempfile.TemporaryDirectory() as tmp:
        package = subprocess.run([str(REPO / "tests/fixtures/make-vendor-package.sh"), "--version", VERSION, tmp],
                                 check=True, capture_output=True, text=True).stdout.strip().splitlines()[-1]
        results = {}
        inv, names = fleet("bench-ours", "", tmp)
        try:
            kernels = docker("exec", names[0], "cat", "/etc/aacraid-lab/kernels").split()
            ours = {"aacraid_build_host_package": package, "aacraid_build_host_fetch_dir": f"{tmp}/ours",
                    "aacraid_server_driver_version": "1.2-1.41024dkms"}
            results["ours"] = [playbook(inv, REPO / "playbooks/aacraid.yml", ours) for _ in range(2)]
        finally:
            for n in names:
                subprocess.run(["docker", "rm", "-f", n], capture_output=True)
        inv, names = fleet("bench-notes", "-python", tmp)
        try:
            notes = {"notes_package": package, "notes_version": VERSION, "notes_kernels": kernels,
                     "notes_fetch_dir": f"{tmp}/notes"}
            results["notes"] = [playbook(inv, REPO / "tests/bench/notes.yml", notes) for _ in range(2)]
        finally:
            for n in names:
                subprocess.run(["docker", "rm", "-f", n], capture_output=True)
    (o1, o2), (n1, n2) = results["ours"], results["notes"]
    print("\nfleet: dracut build host; dracut, initramfs-tools and one-kernel initramfs-tools servers\n")
    print("| playbook | first run s | second run s |")
    print("|---|---:|---:|")
    print(f"| notes transcribed (copy/shell/command/fetch, python3 on the hosts) | {n1:.1f} | {n2:.1f} |")
    print(f"| playbooks/aacraid.yml (no Python on the hosts) | {o1:.1f} | {o2:.1f} |")
    print(f"| ratio ours / notes | {o1 / n1:.2f} | {o2 / n2:.2f} |")
    print(f"\nTargets: first run no slower: {o1 / n1:.2f} ({'met' if o1 <= n1 else 'MISSED'}); "
          f"second run at most 1/5: {o2 / n2:.2f} ({'met' if o2 <= n2 / 5 else 'MISSED'})")


if __name__ == "__main__":
    main()
