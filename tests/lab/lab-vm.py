#!/usr/bin/env python3
"""The virtual-machine member of `make lab` (tests/lab/run-lab.sh): boots the
lab's VM disk (tests/lab/build-vm.sh) with tests/vmlib.py and leaves it
running after this script ends, so that the rollout can reboot it and the lab
stays up like its containers; `stop` powers it off.

Usage (root: the disk copy is loop-mounted to write this run's keys):
    tests/lab/lab-vm.py start FOLDER HOST   # prints HOST's INI inventory line
    tests/lab/lab-vm.py stop FOLDER
FOLDER holds the disk copy, the keys, console.log and qemu.pid.
"""

import os
import signal
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from vmlib import VM  # noqa: E402


def start(folder, host):
    vm = VM(folder, name=host)
    vm.prepare()
    vm.start(detach=True)
    (vm.folder / "qemu.pid").write_text(f"{vm.process.pid}\n")
    print(f"{host} booted in {vm.boot_seconds} s ({vm.accel}), kernel {vm.kernel}", file=sys.stderr)
    print(vm.inventory_line(host))


def ours(pid, folder):
    """True when `pid` is the QEMU that runs this folder's disk (a stale pid
    file may name another process by now)."""
    try:
        argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return False
    disk = f"file={Path(folder).resolve() / 'disk.raw'},".encode()
    return any(arg.startswith(disk) for arg in argv)


def stop(folder):
    pid_file = Path(folder) / "qemu.pid"
    try:
        pid = int(pid_file.read_text())
    except (OSError, ValueError):
        return
    if ours(pid, folder):
        os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + 30
        while ours(pid, folder) and time.monotonic() < deadline:
            time.sleep(0.2)
        if ours(pid, folder):
            os.kill(pid, signal.SIGKILL)
    pid_file.unlink()


def main(argv):
    if len(argv) == 3 and argv[0] == "start":
        start(Path(argv[1]).resolve(), argv[2])
    elif len(argv) == 2 and argv[0] == "stop":
        stop(Path(argv[1]).resolve())
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main(sys.argv[1:])
