#!/usr/bin/env python3
"""Boot a lab kernel in QEMU and report which aacraid driver it loads.

Containers cannot reboot or load modules, so the proof that a regenerated
initramfs brings the intended aacraid driver is a real boot: this tool starts
``qemu-system-x86_64`` (software emulation, TCG) with the kernel and the
initramfs image, makes the image's own init load ``aacraid``, and reads the
serial console until the driver's banner ``Adaptec aacraid driver <version>``
appears. QEMU is killed as soon as the banner is seen.

The kernel and image come either from files (``--vmlinuz``/``--initrd``) or
from a lab container (``--container``/``--kernel``, copied out with
``docker cp``). Exit status: 0 banner seen (and equal to ``--expect`` when
given); 1 banner differs from ``--expect``, timeout, or QEMU ended before the
banner; 2 the check could not be run (bad arguments, missing files, no QEMU,
``docker cp`` failed); 130 interrupted.

Python 3.11 standard library only, and docker through tests/lablib.py. See
README.md next to this file.
"""

from __future__ import annotations

import argparse
import collections
import ctypes
import json
import os
import re
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from lablib import docker  # noqa: E402

QEMU = "qemu-system-x86_64"
BANNER = "Adaptec aacraid driver "
TAIL_LINES = 30

# Kernel command line, the same for both initramfs flavours:
#   console=ttyS0      kernel messages on the first serial port, which QEMU
#                      connects to our pipe (-serial stdio);
#   rd.driver.pre=     dracut loads the listed modules with modprobe at the
#                      very start of its cmdline hook (90kernel-modules,
#                      parse-kernel.sh). QEMU emulates no Adaptec controller,
#                      so nothing would load aacraid otherwise; its banner is
#                      printed by the module's init function, hardware or not;
#   rd.shell=0         on a fatal error (there is no root= here, so dracut
#                      always ends with "No or empty root= argument", after the
#                      banner) dracut's init exits instead of starting a shell
#                      on the console, which would wait until the timeout;
#   panic=-1           reboot at once on a kernel panic (e.g. init exited);
#                      initramfs-tools' own panic() honours it too and reboots
#                      on "No root device specified". With -no-reboot either
#                      makes QEMU exit, so a boot without the banner fails in
#                      seconds instead of running into the timeout.
# initramfs-tools ignores rd.* parameters; see overlay_cpio() for what loads
# aacraid there.
APPEND = "console=ttyS0 rd.driver.pre=aacraid rd.shell=0 panic=-1"


class CheckError(Exception):
    """The check could not be run (exit status 2)."""


def parse_args(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        description="Boot a kernel + initramfs in QEMU (TCG) and report the "
        "version in the 'Adaptec aacraid driver <version>' console line.",
        epilog="Give either --vmlinuz and --initrd, or --container and --kernel. "
        "Exit: 0 found (and matches --expect), 1 mismatch/timeout/no banner, "
        "2 could not run the check.",
    )
    src = p.add_argument_group("from files")
    src.add_argument("--vmlinuz", metavar="PATH", help="kernel image")
    src.add_argument("--initrd", metavar="PATH", help="initramfs image")
    ctr = p.add_argument_group("from a running lab container")
    ctr.add_argument("--container", metavar="NAME", help="Docker container name or id")
    ctr.add_argument("--kernel", metavar="KVER", help="kernel version, e.g. 6.1.0-56-amd64")
    p.add_argument("--expect", metavar="VERSION",
                   help="driver version that must appear, e.g. '1.2.1[50983]-custom'")
    p.add_argument("--timeout", metavar="SECONDS", type=float, default=180.0,
                   help="give up after this many seconds of wall time (default 180)")
    p.add_argument("--memory", metavar="MB", type=int, default=1024,
                   help="guest memory (default 1024)")
    p.add_argument("--json", action="store_true",
                   help="print the result as JSON on stdout")
    p.add_argument("--append", metavar="PARAMS", default="",
                   help="more kernel parameters, e.g. module.sig_enforce=1")
    p.add_argument("--facts", metavar="BINARY",
                   help="a static raid_driver_facts to run in the guest before the image's init; "
                   "its result is reported as 'facts'")
    p.add_argument("--expect-refused", action="store_true",
                   help="succeed when the kernel rejects the module for its signature and no banner appears")
    a = p.parse_args(argv)
    files = a.vmlinuz is not None or a.initrd is not None
    container = a.container is not None or a.kernel is not None
    if files == container:
        p.error("give either --vmlinuz and --initrd, or --container and --kernel")
    if files and (a.vmlinuz is None or a.initrd is None):
        p.error("--vmlinuz and --initrd go together")
    if container and (a.container is None or a.kernel is None):
        p.error("--container and --kernel go together")
    if a.timeout <= 0:
        p.error("--timeout must be positive")
    if a.expect_refused and a.expect is not None:
        p.error("--expect and --expect-refused exclude each other")
    if a.facts is not None and not os.path.isfile(a.facts):
        p.error(f"--facts {a.facts}: no such file")
    return a


def docker_cp(container: str, src: str, dest: str) -> str | None:
    """Copy one file out of a container; returns docker's error text or None."""
    # -L: follow a symlink in the container (e.g. /boot/initrd.img -> ...).
    r = docker("cp", "-L", f"{container}:{src}", dest, check=False)
    return None if r.returncode == 0 else (r.stderr.strip() or f"exit {r.returncode}")


def fetch_from_container(container: str, kver: str, tmp: str) -> tuple[str, str, str]:
    """Returns (vmlinuz, initrd, initrd path inside the container)."""
    vmlinuz = os.path.join(tmp, "vmlinuz")
    err = docker_cp(container, f"/boot/vmlinuz-{kver}", vmlinuz)
    if err:
        raise CheckError(f"docker cp {container}:/boot/vmlinuz-{kver}: {err}")
    initrd = os.path.join(tmp, "initrd.img")
    errors = []
    # dracut's own default name wins when it exists; Debian's name otherwise.
    for name in (f"/boot/initramfs-{kver}.img", f"/boot/initrd.img-{kver}"):
        err = docker_cp(container, name, initrd)
        if err is None:
            return vmlinuz, initrd, name
        errors.append(f"{name}: {err}")
    raise CheckError(f"no initramfs image in {container}: " + "; ".join(errors))


def cpio_newc(entries: list[tuple[str, int, bytes]]) -> bytes:
    """An uncompressed newc cpio archive of (name, mode, data) entries."""
    out = bytearray()

    def pad4() -> None:
        out.extend(b"\0" * (-len(out) % 4))

    for ino, (name, mode, data) in enumerate(entries + [("TRAILER!!!", 0, b"")], 1):
        nm = name.encode() + b"\0"
        fields = (ino if name != "TRAILER!!!" else 0, mode, 0, 0,
                  2 if mode & 0o040000 else 1, 0, len(data), 0, 0, 0, 0, len(nm), 0)
        out += b"070701" + b"".join(b"%08X" % f for f in fields) + nm
        pad4()
        out += data
        pad4()
    return bytes(out)


def overlay_cpio() -> bytes:
    """The archive appended to the image so that initramfs-tools loads aacraid.

    initramfs-tools has no kernel parameter that loads a module: its /init
    parses root=, boot=, break=, blacklist=, panic=, ... but nothing like
    rd.driver.pre= or modules_load= (the latter is systemd-modules-load's, and
    neither image runs systemd). Its own mechanism is /conf/modules: mkinitramfs
    copies the module names of /etc/initramfs-tools/modules there, and /init
    calls load_modules() (scripts/functions), which runs ``modprobe`` for every
    line, right after the init-top scripts and before the root file system is
    looked for. The kernel unpacks every cpio archive concatenated in the
    initramfs and a later file replaces an earlier one, so an uncompressed
    archive appended to the image that holds /conf/modules = "aacraid" makes
    the image's own init load aacraid from the image's own /lib/modules with
    the image's modules.dep; nothing else in the image is touched. It replaces
    any module list the image had: irrelevant here, the banner comes when
    aacraid is loaded. dracut never reads /conf, so the archive is inert there
    and both variants get the same treatment.

    Rejected: rdinit=/sbin/modprobe (with "-- aacraid") would also work for
    both, but skips the image's init altogether, so it proves less about the
    boot; QEMU emulates no Adaptec controller, so udev never loads aacraid by
    itself.
    """
    return cpio_newc([("conf", 0o040755, b""),
                      ("conf/modules", 0o100644, b"aacraid\n")])


FACTS_BEGIN = "BOOTCHECK-FACTS-BEGIN"
FACTS_END = "BOOTCHECK-FACTS-END"
# rdinit= runs this before the image's own /init, which it then becomes: it
# mounts /proc, /sys and securityfs (the lockdown file) for raid_driver_facts,
# prints the result between two marker lines on the console, and unmounts
# them again. The kernel starts it
# without PATH.
FACTS_INIT = f"""#!/bin/sh
export PATH=/usr/sbin:/usr/bin:/sbin:/bin
mkdir -p /proc /sys
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t securityfs securityfs /sys/kernel/security
echo {FACTS_BEGIN}
/bootcheck/raid_driver_facts /bootcheck/args.json
echo
echo {FACTS_END}
umount /sys/kernel/security
umount /sys
umount /proc
exec /init "$@"
"""
FACTS_ARGS = {"name": "aacraid", "gather_subset": ["modules", "loaded", "signing"],
              "_ansible_check_mode": False, "_ansible_diff": False}


def facts_cpio(binary: str) -> bytes:
    """The archive that adds raid_driver_facts, its arguments and the init
    wrapper that runs it (see FACTS_INIT)."""
    return cpio_newc([("bootcheck", 0o040755, b""),
                      ("bootcheck/raid_driver_facts", 0o100755, Path(binary).read_bytes()),
                      ("bootcheck/args.json", 0o100644, json.dumps(FACTS_ARGS).encode()),
                      ("bootcheck/init", 0o100755, FACTS_INIT.encode())])


def build_initrd(src: str, dest: str, facts: str | None = None) -> None:
    with open(src, "rb") as fi, open(dest, "wb") as fo:
        shutil.copyfileobj(fi, fo, 1 << 20)
        # The kernel only looks for a following archive at a 4-byte aligned
        # offset and skips zero bytes in between; pad to 512 to be generous.
        fo.write(b"\0" * (-fo.tell() % 512))
        fo.write(overlay_cpio())
        if facts is not None:
            fo.write(facts_cpio(facts))


def qemu_command(vmlinuz: str, initrd: str, memory: int, append: str = APPEND) -> list[str]:
    return [
        QEMU,
        "-accel", "tcg",          # no KVM here; software emulation on purpose
        "-m", str(memory),
        "-smp", "1",
        "-nodefaults",            # no VGA, NIC (no iPXE ROM), floppy, CD-ROM
        "-no-user-config",
        "-display", "none",
        "-monitor", "none",
        "-serial", "stdio",       # ttyS0 -> our pipe (stdin is /dev/null)
        "-no-reboot",             # a guest reboot/panic ends QEMU
        "-kernel", vmlinuz,
        "-initrd", initrd,
        "-append", append,
    ]


def kill(proc: subprocess.Popen | None) -> None:
    if proc is None or proc.poll() is not None:
        return
    proc.kill()  # nothing to save in the guest; SIGKILL at once
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        pass


VERSION_RE = re.compile(re.escape(BANNER) + r"(.*)$")
# What the kernel prints when it enforces signatures and rejects a module
# (kernel/module/signing.c): "Loading of unsigned module is rejected",
# "Loading of module with unavailable key is rejected", ...
REFUSED_RE = re.compile(r"Loading of .* is rejected")
# The printk time stamp right before the banner; the line may start with other
# text, e.g. initramfs-tools' "Begin: Loading essential drivers ... [ 9.02] ...".
STAMP_RE = re.compile(r"\[\s*(\d+\.\d+)\]\s*" + re.escape(BANNER))


def watch(proc: subprocess.Popen, timeout: float, tail: collections.deque) -> dict:
    """Read the console until the banner, EOF or the timeout.

    Returns {"version", "seconds", "line", "guest_seconds"}; version is None when
    no banner was seen, and "reason" says why.
    """
    start = time.monotonic()
    deadline = start + timeout
    fd = proc.stdout.fileno()
    buf = b""
    result = {"version": None, "seconds": None, "line": None, "guest_seconds": None,
              "refused": None, "facts": None}
    facts_lines: list[str] | None = None
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            result["reason"] = f"timeout: no banner within {timeout:g} s"
            break
        ready, _, _ = select.select([fd], [], [], left)
        if not ready:
            continue
        chunk = os.read(fd, 65536)
        if not chunk:
            proc.wait()
            result["reason"] = f"QEMU exited (status {proc.returncode}) before the banner"
            break
        buf += chunk
        *lines, buf = buf.split(b"\n")
        for raw in lines:
            line = raw.decode("utf-8", "replace").replace("\r", "").rstrip()
            if line == FACTS_BEGIN:
                facts_lines = []
                continue
            if facts_lines is not None:
                if line == FACTS_END:
                    result["facts"] = read_facts(facts_lines)
                    facts_lines = None
                else:
                    facts_lines.append(line)
                continue
            tail.append(line)
            if result["refused"] is None and REFUSED_RE.search(line):
                result["refused"] = line
            m = VERSION_RE.search(line)
            if m:
                kill(proc)
                result["seconds"] = round(time.monotonic() - start, 2)
                result["version"] = m.group(1).strip()
                result["line"] = line
                s = STAMP_RE.search(line)
                result["guest_seconds"] = float(s.group(1)) if s else None
                return result
    if buf:
        tail.append(buf.decode("utf-8", "replace").replace("\r", "").rstrip())
    result["seconds"] = round(time.monotonic() - start, 2)
    return result


def read_facts(lines: list[str]) -> dict:
    """The module result printed between the markers: the JSON object, or
    {"error": ...} with the text when it is not one (a kernel message can
    cut into the line)."""
    text = "\n".join(lines).strip()
    try:
        return json.loads(text)
    except json.JSONDecodeError as e:
        return {"error": f"not JSON ({e})", "text": text[-2000:]}


def _die_with_parent() -> None:
    """In the QEMU child before exec: SIGKILL it when this process dies."""
    try:
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


def _sigterm(signum, frame):  # noqa: ARG001
    raise KeyboardInterrupt


def main(argv: list[str]) -> int:
    a = parse_args(argv)
    # Ctrl-C/SIGTERM/SIGHUP all end in the finally below (kill QEMU, remove the
    # temp dir), even when started from a shell that ignores SIGINT (a job
    # started with "&").
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, _sigterm)
    signal.signal(signal.SIGHUP, _sigterm)
    proc = None
    tmp = None
    tail: collections.deque = collections.deque(maxlen=TAIL_LINES)
    try:
        if shutil.which(QEMU) is None:
            raise CheckError(f"{QEMU} not found (apt-get install qemu-system-x86)")
        tmp = tempfile.mkdtemp(prefix="boot-check-")
        if a.container:
            vmlinuz, src_initrd, origin = fetch_from_container(a.container, a.kernel, tmp)
            origin = f"{a.container}:{origin}"
        else:
            for path in (a.vmlinuz, a.initrd):
                if not os.path.isfile(path):
                    raise CheckError(f"{path}: no such file")
            vmlinuz, src_initrd, origin = a.vmlinuz, a.initrd, a.initrd
        initrd = os.path.join(tmp, "initrd-bootcheck.img")
        build_initrd(src_initrd, initrd, a.facts)
        append = APPEND + (" rdinit=/bootcheck/init" if a.facts else "") + (f" {a.append}" if a.append else "")

        cmd = qemu_command(vmlinuz, initrd, a.memory, append)
        if not a.json:
            print(f"boot-check: booting {origin} in QEMU (TCG), timeout {a.timeout:g} s",
                  file=sys.stderr)
        # Own session: a Ctrl-C on the terminal reaches only us; we kill QEMU.
        # PR_SET_PDEATHSIG: should we be SIGKILLed, the kernel kills QEMU too.
        proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, start_new_session=True,
                                preexec_fn=_die_with_parent)
        result = watch(proc, a.timeout, tail)
        kill(proc)

        if a.expect_refused:
            ok = result["version"] is None and result["refused"] is not None
            if result["version"] is not None:
                result["reason"] = f"the driver loaded ({result['version']!r}); expected the kernel to reject it"
            elif ok:
                result.pop("reason", None)
            else:
                result["reason"] = "no rejection line: " + result.get("reason", "")
        else:
            ok = result["version"] is not None and (a.expect is None or result["version"] == a.expect)
        if result["version"] is not None and not ok and not a.expect_refused:
            result["reason"] = f"driver version {result['version']!r}, expected {a.expect!r}"
        if a.facts is not None and result["facts"] is None:
            ok = False
            result["reason"] = "no facts on the console; " + result.get("reason", "")
        if a.expect is not None:
            result["expected"] = a.expect
        result["ok"] = ok
        if a.json:
            print(json.dumps(result))
        elif a.expect_refused and ok:
            print(result["refused"])
        elif result["version"] is not None:
            g = result["guest_seconds"]
            print(result["version"])
            print(f"boot-check: banner after {result['seconds']} s"
                  + (f" ({g} s guest time)" if g is not None else ""), file=sys.stderr)
        if not ok:
            print(f"boot-check: FAIL: {result['reason']}", file=sys.stderr)
            print(f"boot-check: last {len(tail)} console lines:", file=sys.stderr)
            for line in tail:
                print(f"  | {line}", file=sys.stderr)
            return 1
        return 0
    except CheckError as e:
        if a.json:
            print(json.dumps({"version": None, "seconds": None, "line": None,
                              "guest_seconds": None, "ok": False, "reason": str(e)}))
        print(f"boot-check: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("boot-check: interrupted", file=sys.stderr)
        return 130
    finally:
        # Ignore further Ctrl-C / SIGTERM while cleaning up.
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        kill(proc)
        if proc is not None and proc.stdout is not None:
            proc.stdout.close()
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
