"""The lab's virtual machine, for tests/system/test_vm_reboot.py and `make lab`
(tests/lab/lab-vm.py): a private copy of the disk tests/lab/build-vm.sh makes
(GRUB in its MBR, systemd, sshd, the newest lab kernel, no Python), with a
login key and host keys made for this run written into it, booted under
QEMU (KVM when a trial boot shows it works, else software emulation) with
the guest's port 22 forwarded to a free port on 127.0.0.1. A reboot inside
the guest is a real one: QEMU restarts the machine, and GRUB reads the
kernel and initramfs from the guest's disk.

Needs root (a loop mount of the copy). Python 3.11 standard library.

    with VM(tmp_path) as vm:
        vm.ssh("uname -r")
        vm.inventory_line("server1")   # for an Ansible inventory (ssh connection)
"""

import contextlib
import functools
import json
import os
import shlex
import socket
import subprocess
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
BUILD_VM = REPO / "tests/lab/build-vm.sh"
QEMU = "qemu-system-x86_64"


def build_disk():
    """The cached disk's metadata (kernel, label) and path: builds it when
    the base image or the script changed."""
    out = subprocess.run([str(BUILD_VM)], capture_output=True, text=True)
    if out.returncode != 0:
        raise RuntimeError(f"{BUILD_VM} failed:\n{out.stdout}\n{out.stderr}")
    meta_path = Path(out.stdout.strip().splitlines()[-1])
    meta = json.loads(meta_path.read_text())
    meta["disk"] = str(meta_path.with_suffix(".raw"))
    return meta


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@functools.cache
def accelerator(disk, seconds=15):
    """kvm when a trial boot of `disk` under KVM reaches GRUB's menu entry on
    the serial console within `seconds`, else tcg. An openable /dev/kvm is not
    enough: nested KVM on some machines (this project's CI among them) takes
    the guest and never runs its firmware. Decided once per process."""
    try:
        os.close(os.open("/dev/kvm", os.O_RDWR))
    except OSError:
        return "tcg"
    with tempfile.TemporaryDirectory(prefix="aacraid-kvm-probe.") as folder:
        console = Path(folder) / "console.log"
        probe = subprocess.Popen(
            [QEMU, "-accel", "kvm", "-m", "256", "-display", "none", "-monitor", "none",
             "-drive", f"file={disk},format=raw,if=virtio,snapshot=on", "-serial", f"file:{console}"],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            deadline = time.monotonic() + seconds
            while time.monotonic() < deadline and probe.poll() is None:
                if console.exists() and b"Booting `" in console.read_bytes():
                    return "kvm"
                time.sleep(0.5)
        finally:
            probe.kill()
            probe.wait()
    return "tcg"


def first_partition_offset(disk):
    """Byte offset of the first MBR partition (its start LBA, bytes 454-457)."""
    with open(disk, "rb") as f:
        mbr = f.read(512)
    if len(mbr) != 512 or mbr[510:] != b"\x55\xaa":
        raise RuntimeError(f"{disk} has no MBR")
    return int.from_bytes(mbr[454:458], "little") * 512


@contextlib.contextmanager
def mounted_root(disk):
    """The disk's first partition, mounted on a temporary folder (through a
    loop device at the partition's offset: no partition device is needed)."""
    offset = first_partition_offset(disk)
    with tempfile.TemporaryDirectory(prefix="aacraid-vm-mnt.") as mnt:
        subprocess.run(["mount", "-o", f"loop,offset={offset}", str(disk), mnt], check=True)
        try:
            yield Path(mnt)
        finally:
            subprocess.run(["umount", mnt], check=True)


class VM:
    """One guest. `folder` holds its disk copy, keys, known_hosts and the
    serial console log (console.log)."""

    def __init__(self, folder, memory=2048, name="aacraid-vm"):
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        self.memory = memory
        self.name = name
        self.meta = build_disk()
        self.kernel = self.meta["kernel"]
        self.disk = self.folder / "disk.raw"
        self.key = self.folder / "id_ed25519"
        self.known_hosts = self.folder / "known_hosts"
        self.console = self.folder / "console.log"
        self.port = free_port()
        self.accel = accelerator(self.meta["disk"])
        self.process = None
        self.boot_seconds = None

    def __enter__(self):
        self.prepare()
        self.start()
        return self

    def __exit__(self, *exc):
        self.stop()

    def prepare(self):
        """The disk copy, with this run's login key and new host keys."""
        subprocess.run(["cp", "--sparse=always", self.meta["disk"], str(self.disk)], check=True)
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", f"{self.name}-login",
                        "-f", str(self.key)], check=True)
        with mounted_root(self.disk) as root:
            ssh_dir = root / "root/.ssh"
            ssh_dir.mkdir(mode=0o700, exist_ok=True)
            keys = ssh_dir / "authorized_keys"
            keys.write_text(Path(f"{self.key}.pub").read_text())
            keys.chmod(0o600)
            for old in (root / "etc/ssh").glob("ssh_host_*"):
                old.unlink()
            subprocess.run(["ssh-keygen", "-A", "-f", str(root)], check=True, capture_output=True)
            host_key = (root / "etc/ssh/ssh_host_ed25519_key.pub").read_text().split()[:2]
        self.known_hosts.write_text(f"[127.0.0.1]:{self.port} {' '.join(host_key)}\n")

    def qemu_command(self):
        return [
            QEMU, "-accel", self.accel, "-m", str(self.memory), "-smp", "2",
            "-drive", f"file={self.disk},format=raw,if=virtio",
            "-netdev", f"user,id=n0,hostfwd=tcp:127.0.0.1:{self.port}-:22",
            "-device", "virtio-net-pci,netdev=n0",
            "-display", "none", "-monitor", "none",
            "-serial", f"file:{self.console}",
        ]

    def start(self, timeout=600, detach=False):
        """Powers the machine on and waits until sshd answers; records the
        seconds that took (boot_seconds). With `detach`, QEMU runs in its own
        session and outlives this process."""
        begin = time.monotonic()
        with open(self.folder / "qemu.err", "w") as err:
            self.process = subprocess.Popen(self.qemu_command(), stdin=subprocess.DEVNULL,
                                            stdout=subprocess.DEVNULL, stderr=err, start_new_session=detach)
        self.wait_for_ssh(timeout)
        self.boot_seconds = round(time.monotonic() - begin, 1)

    def stop(self):
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None

    def ssh_options(self):
        return ["-o", "BatchMode=yes", "-o", "IdentitiesOnly=yes", "-o", f"UserKnownHostsFile={self.known_hosts}",
                "-o", "StrictHostKeyChecking=yes", "-o", "ConnectTimeout=5"]

    def ssh(self, command, check=True, timeout=120):
        """Runs a shell command in the guest as root; the completed process."""
        out = subprocess.run(["ssh", *self.ssh_options(), "-i", str(self.key), "-p", str(self.port),
                              "root@127.0.0.1", command], capture_output=True, text=True, timeout=timeout)
        if check and out.returncode != 0:
            raise AssertionError(f"ssh {command!r} failed ({out.returncode}): {out.stderr}")
        return out

    def wait_for_ssh(self, timeout):
        deadline = time.monotonic() + timeout
        while True:
            if self.process.poll() is not None:
                raise RuntimeError(f"QEMU exited ({self.process.returncode}): "
                                   f"{(self.folder / 'qemu.err').read_text()}\n{self.console_tail()}")
            with contextlib.suppress(subprocess.TimeoutExpired):
                if self.ssh("true", check=False, timeout=15).returncode == 0:
                    return
            if time.monotonic() > deadline:
                raise TimeoutError(f"{self.name} did not answer on SSH within {timeout} s\n{self.console_tail()}")
            time.sleep(1)

    def console_tail(self, lines=40):
        try:
            return "\n".join(self.console.read_text(errors="replace").splitlines()[-lines:])
        except FileNotFoundError:
            return ""

    def boot_id(self):
        return self.ssh("cat /proc/sys/kernel/random/boot_id").stdout.strip()

    def inventory_line(self, host):
        """An INI inventory line that reaches the guest with Ansible's ssh
        connection (ControlPersist comes from ansible.cfg's ssh_args)."""
        common = " ".join(self.ssh_options()[:-2])
        return (f"{host} ansible_host=127.0.0.1 ansible_port={self.port} ansible_user=root "
                f"ansible_connection=ssh ansible_ssh_private_key_file={self.key} "
                f"ansible_ssh_common_args={shlex.quote(common)}")
