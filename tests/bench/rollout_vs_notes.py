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

import contextlib
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from lablib import MODULE_VERSION, REPO, VENDOR_VERSION, Lab, make_vendor_package, timed_playbook  # noqa: E402

SHAPE = [("build", "dracut", "build_hosts"), ("s1", "dracut", "raid_servers"),
         ("s2", "initramfs-tools", "raid_servers"), ("s3", "initramfs-tools", "raid_servers")]


@contextlib.contextmanager
def fleet(prefix, suffix, tmp):
    """Starts the fleet (removed on exit); yields (inventory path, containers)."""
    with contextlib.ExitStack() as stack:
        hosts = []
        groups = {"build_hosts": [], "raid_servers": []}
        for name, variant, group in SHAPE:
            lab = stack.enter_context(Lab(variant, image=f"aacraid-lab:{variant}{suffix}", prefix=f"{prefix}-{name}"))
            hosts.append(lab)
            groups[group].append(lab.name)
        old = hosts[-1].kernels[1]
        hosts[-1].sh(f"rm -rf /lib/modules/{old} /boot/*-{old}")
        inv = Path(tmp) / f"{prefix}.ini"
        lines = []
        for group, names in groups.items():
            lines += [f"[{group}]", *names]
        lines += ["[all:vars]", "ansible_connection=community.docker.docker"]
        inv.write_text("\n".join(lines) + "\n")
        yield inv, hosts


def playbook(inv, path, extra):
    seconds, out = timed_playbook(inv, path, extra)
    if out.returncode != 0:
        raise SystemExit(f"{path} failed:\n{out.stdout[-3000:]}\n{out.stderr[-2000:]}")
    return seconds


def main():
    with tempfile.TemporaryDirectory() as tmp:
        package = make_vendor_package(tmp)
        results = {}
        with fleet("bench-ours", "", tmp) as (inv, hosts):
            kernels = hosts[0].kernels
            ours = {"aacraid_build_host_package": package, "aacraid_build_host_fetch_dir": f"{tmp}/ours",
                    "aacraid_server_driver_version": MODULE_VERSION}
            results["ours"] = [playbook(inv, REPO / "playbooks/aacraid.yml", ours) for _ in range(2)]
        with fleet("bench-notes", "-python", tmp) as (inv, _):
            notes = {"notes_package": package, "notes_version": VENDOR_VERSION, "notes_kernels": kernels,
                     "notes_fetch_dir": f"{tmp}/notes"}
            results["notes"] = [playbook(inv, REPO / "tests/bench/notes.yml", notes) for _ in range(2)]
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
