"""Archives and payloads from outside (issue 11, items 0, 3, 4 and 8),
against the real tools in lab containers: vendor packages and artifacts
written by GNU tar and bsdtar; rpm payloads whose names, modes, links and
duplicates used to escape /usr/src/<name>-<version> or mislead; bombs in a
container limited to 512 MiB; initramfs images with a segment appended
after the compressed one. Every refusal is a failed result naming the
problem, with the watched trees unchanged.

The rpms are written here (lead, headers, gzip cpio payload: what the
modules read) because their payloads are what no rpmbuild would make."""

import gzip
import hashlib
import shutil
import struct
import subprocess
import tarfile
import zlib

import pytest

from lablib import VENDOR_VERSION, Lab, file_sha256

V = VENDOR_VERSION
TREE = f"usr/src/aacraid-{V}"
BUILD_WATCHED = ("/usr/src", "/var/lib/dkms", "/lib/modules", "/etc")
SERVER_WATCHED = ("/lib/modules", "/var/lib/kmod_update", "/boot")
FILE = 0o100644


def newc(entries):
    """A newc cpio archive of (name, mode, inode, links, data[, size
    claimed]) entries, then its trailer."""
    out = bytearray()

    def pad():
        out.extend(b"\0" * (-len(out) % 4))

    for name, mode, ino, nlink, data, *claimed in [*entries, ("TRAILER!!!", 0, 0, 1, b"")]:
        raw = name.encode() + b"\0"
        size = claimed[0] if claimed else len(data)
        fields = (ino, mode, 0, 0, nlink, 0, size, 0, 0, 0, 0, len(raw), 0)
        out += b"070701" + b"".join(b"%08x" % f for f in fields) + raw
        pad()
        out += data
        pad()
    return bytes(out)


def rpm(payload, name="aacraid", version=V):
    """An rpm as the modules read one: the 96-byte lead, an empty
    signature header, a header with name, version and release (string
    tags), then the gzip-compressed cpio `payload`."""
    def header(tags):
        index, data = b"", b""
        for tag, text in tags:
            index += struct.pack(">IIII", tag, 6, len(data), 1)
            data += text.encode() + b"\0"
        return b"\x8e\xad\xe8\x01\0\0\0\0" + struct.pack(">II", len(tags), len(data)) + index + data

    lead = b"\xed\xab\xee\xdb".ljust(96, b"\0")
    return lead + header([]) + header([(1000, name), (1001, version), (1002, "1")]) + gzip.compress(payload)


@pytest.fixture(scope="module")
def sources(vendor_packages, tmp_path_factory):
    """The fixture driver's DKMS sources (name → bytes), unpacked from its
    rpm with the real tar, rpm2cpio and cpio."""
    out = tmp_path_factory.mktemp("sources")
    subprocess.run(["tar", "-xzf", vendor_packages["good"], "-C", out], check=True)
    driver = out / f"aacraid-{V}-dkms.noarch.rpm"
    subprocess.run(f"rpm2cpio {driver} | cpio -idm --quiet", shell=True, cwd=out, check=True)
    return {p.name: p.read_bytes() for p in (out / TREE).iterdir()}


def source_entries(sources):
    return [(f"./{TREE}/{name}", FILE, 10 + i, 1, data) for i, (name, data) in enumerate(sorted(sources.items()))]


def tar_with(tool, folder, out, names):
    """Writes `out` (gzip) from the files of `folder` with GNU tar or
    bsdtar: `-C folder .` when `names` is None, else those names."""
    members = ["."] if names is None else names
    subprocess.run([tool, "-czf", out, "-C", folder, *members], check=True)
    return out


WRITERS = [(tool, layout, suffix) for tool in ("tar", "bsdtar") for layout in ("dot", "names")
           for suffix in (".tgz", ".tar.gz")]


def repacked(tmp_path, unpacked, label):
    """The files of `unpacked` packed every way WRITERS lists: (what, path)."""
    names = sorted(p.name for p in unpacked.iterdir())
    return [(f"{tool} {layout} {suffix}", tar_with(tool, unpacked, tmp_path / f"{label}-{tool}-{layout}{suffix}",
                                                    None if layout == "dot" else names))
            for tool, layout, suffix in WRITERS]


def unpack(archive, into):
    into.mkdir()
    with tarfile.open(archive) as t:
        t.extractall(into, filter="data")
    return into


def test_real_tarballs_are_accepted_as_vendor_packages(vendor_packages, tmp_path):
    """`tar -czf pkg.tgz -C dir .` writes the entry `./`, which was
    refused as an empty path: every common way of packing the vendor
    package must be read (check mode: the plan reads the whole package)."""
    unpacked = unpack(vendor_packages["good"], tmp_path / "vendor")
    with Lab("dracut") as lab:
        for what, path in repacked(tmp_path, unpacked, "vendor"):
            lab.put(path, f"/root/{path.name}")
            result = lab.module("aacraid_build", check_mode=True, src=f"/root/{path.name}",
                                kernels=[lab.kernels[0]], state="built")
            assert not result.get("failed"), (what, result["msg"])
            assert result["changed"] is True, what


def test_real_tarballs_are_accepted_as_artifacts(artifacts, tmp_path):
    """The same for an artifact repacked by hand and given to kmod_update:
    the first is installed for real (the kernel resolves its module), and
    every other packing then reads as that same module (nothing to do)."""
    with Lab("initramfs-tools") as lab:
        kernel = lab.kernels[0]
        unpacked = unpack(artifacts[kernel], tmp_path / "artifact")
        module = (unpacked / "aacraid.ko").read_bytes()
        (first_what, first), *others = repacked(tmp_path, unpacked, "artifact")
        lab.put(first, f"/root/{first.name}")
        result = lab.module("kmod_update", src=f"/root/{first.name}")
        assert not result.get("failed"), (first_what, result["msg"])
        assert result["changed"] is True, first_what
        resolved = lab.sh(f"modinfo -k {kernel} -n aacraid").strip()
        assert resolved == f"/lib/modules/{kernel}/updates/aacraid.ko", resolved
        assert file_sha256(lab, resolved) == hashlib.sha256(module).hexdigest()
        assert others
        for what, path in others:
            lab.put(path, f"/root/{path.name}")
            result = lab.module("kmod_update", check_mode=True, src=f"/root/{path.name}")
            assert not result.get("failed"), (what, result["msg"])
            assert result["changed"] is False, what


@pytest.fixture(scope="module")
def build_lab():
    """One dracut lab container (512 MiB) for the refused sources: each
    leaves it as it was."""
    with Lab("dracut", "--memory", "512m", prefix="sec-test") as container:
        yield container


def refused(lab, binary, watched, message, **options):
    before = lab.tree_hash(*watched)
    result = lab.module(binary, **options)
    assert result["failed"] is True, result
    assert message in result["msg"], result["msg"]
    assert lab.tree_hash(*watched) == before
    return result


BAD_PAYLOADS = {
    # `..` after the tree prefix used to be joined under /usr/src/aacraid-<v>.
    "dotdot": ([(f"./{TREE}/../../../etc/cron.d/evil", FILE, 2, 1, b"* * * * * root id\n")],
               "`..` in a path is not accepted"),
    # Symlinks were dropped without a word.
    "symlink": ([(f"./{TREE}/evil", 0o120777, 2, 1, b"/etc/shadow")],
                f'rpm payload entry "{TREE}/evil" is a symbolic link'),
    # rpm -i would keep the last copy, a reader might take the first.
    "duplicate": ([(f"./{TREE}/aacraid.c", FILE, 2, 1, b"int evil;\n")],
                  f'"{TREE}/aacraid.c" appears twice'),
    # A header claiming 4 GiB used to size a vec![0; size].
    "huge": ([(f"./{TREE}/huge.c", FILE, 2, 1, b"tiny", 0xFFFFFFFF)],
             "claims 4294967295 bytes: more than the 256 MiB"),
}


@pytest.mark.parametrize("case", BAD_PAYLOADS)
def test_bad_rpm_payloads_are_refused(build_lab, sources, tmp_path, case):
    extra, message = BAD_PAYLOADS[case]
    path = tmp_path / f"{case}.rpm"
    path.write_bytes(rpm(newc(source_entries(sources) + extra)))
    build_lab.put(path, "/root/bad.rpm")
    refused(build_lab, "aacraid_build", BUILD_WATCHED, message, src="/root/bad.rpm",
            kernels=[build_lab.kernels[0]], state="built")


def test_rpm_payload_stays_in_its_tree(sources, tmp_path):
    """`usr/src/aacraid-<v>//etc/cron.d/x` used to lose its prefix to an
    absolute path and land in /etc/cron.d; a setuid world-writable file
    kept its bits; a hard-linked file (data on the last entry of its set,
    as rpm writes them) was written empty."""
    evil = b"* * * * * root touch /tmp/pwned\n"
    notes = b"hard-linked notes\n"
    payload = newc(source_entries(sources) + [
        (f"./{TREE}//etc/cron.d/evil", FILE, 2, 1, evil),
        (f"./{TREE}/tool", 0o106777, 3, 1, b"#!/bin/sh\n"),
        (f"./{TREE}/NOTES", FILE, 4, 2, b""),
        (f"./{TREE}/NOTES.link", FILE, 4, 2, notes),
    ])
    path = tmp_path / "odd.rpm"
    path.write_bytes(rpm(payload))
    with Lab("dracut") as lab:
        lab.put(path, "/root/odd.rpm")
        result = lab.module("aacraid_build", src="/root/odd.rpm", kernels=[lab.kernels[0]], state="built")
        assert result["changed"] is True, result
        root = f"/{TREE}"
        assert "evil" not in lab.sh("ls -a /etc/cron.d")
        assert lab.sh(f"cat {root}/etc/cron.d/evil").encode() == evil
        assert lab.sh(f"stat -c %a {root}/tool").strip() == "775"
        assert lab.sh(f"cat {root}/NOTES {root}/NOTES.link").encode() == notes * 2


@pytest.fixture(scope="module")
def tar_bomb(tmp_path_factory):
    """A vendor-package-shaped tar.gz holding one 1 GiB file of zeros
    (about 1 MB), compressed as it streams."""
    info = tarfile.TarInfo("zeros.rpm")
    info.size = 1 << 30
    packer = zlib.compressobj(9, zlib.DEFLATED, 31)
    parts = [packer.compress(info.tobuf(tarfile.GNU_FORMAT))]
    chunk = bytes(1 << 20)
    parts += [packer.compress(chunk) for _ in range(1 << 10)]
    parts += [packer.compress(bytes(1024)), packer.flush()]
    path = tmp_path_factory.mktemp("bomb") / "bomb.tgz"
    path.write_bytes(b"".join(parts))
    return path


def test_gzip_tar_bomb(build_lab, tar_bomb):
    """Each tar entry used to be read whole into memory: 1 GiB in a
    512 MiB container aborts without a result."""
    build_lab.put(tar_bomb, "/root/bomb.tgz")
    refused(build_lab, "aacraid_build", BUILD_WATCHED,
            '"zeros.rpm" claims 1073741824 bytes: more than the 256 MiB an archive may hold',
            src="/root/bomb.tgz", kernels=[build_lab.kernels[0]], state="built")


def test_xz_bomb_module():
    """A .ko.xz decompressing to 1 GiB was decoded whole to read its
    .modinfo: in a 512 MiB container, an abort without a result."""
    with Lab("initramfs-tools", "--memory", "512m", prefix="sec-test") as lab:
        lab.sh("head -c 1G /dev/zero | xz -0 -T2 --check=crc32 > /root/aacraid.ko.xz")
        refused(lab, "kmod_update", SERVER_WATCHED,
                "the module holds more than 64 MiB once decompressed",
                src="/root/aacraid.ko.xz", kernels=[lab.kernels[0]])


def test_duplicate_entries_in_archives_are_refused(artifacts, vendor_packages, tmp_path):
    """The artifact reader took the first aacraid.ko, which the manifest
    vouches for, while tar -x keeps the last; the same for a vendor
    package holding the driver rpm twice."""
    with Lab("initramfs-tools", prefix="sec-test") as lab:
        kernel = lab.kernels[0]
        good = unpack(artifacts[kernel], tmp_path / "good")
        other = tmp_path / "other"
        other.mkdir()
        (other / "aacraid.ko").write_bytes(b"\x7fELF not what the manifest vouches for")
        path = tmp_path / "dup.tgz"
        subprocess.run(["tar", "-czf", path, "-C", good, "manifest.json", "aacraid.ko",
                        "-C", other, "aacraid.ko"], check=True)
        lab.put(path, "/root/dup.tgz")
        refused(lab, "kmod_update", SERVER_WATCHED, '"aacraid.ko" appears twice', src="/root/dup.tgz")

        vendor = unpack(vendor_packages["good"], tmp_path / "vendor")
        driver = f"aacraid-{V}-dkms.noarch.rpm"
        again = tmp_path / "again"
        again.mkdir()
        shutil.copy(vendor / driver, again / driver)
        path = tmp_path / "dup-vendor.tgz"
        subprocess.run(["bsdtar", "-czf", path, "-C", vendor, ".", "-C", again, driver], check=True)
        lab.put(path, "/root/dup-vendor.tgz")
        refused(lab, "aacraid_build", BUILD_WATCHED, f'"{driver}" appears twice',
                src="/root/dup-vendor.tgz", kernels=[kernel], state="built")


def image_module(lab, kernel):
    facts = lab.module("raid_driver_facts", gather_subset=["initramfs"], kernels=[kernel])
    [entry] = facts["ansible_facts"]["raid_driver"]["kernels"]
    return entry["initramfs"]


@pytest.mark.parametrize("compress", ["", "| xz --check=crc32"], ids=["cpio", "xz"])
@pytest.mark.parametrize("variant", ["dracut", "initramfs-tools"])
def test_segment_appended_after_the_compressed_image(variant, compress):
    """The kernel unpacks every segment of an image and keeps the last
    copy of a path. The image check stopped after the first compressed
    segment: a copy appended after it (real cpio, real xz) went unseen
    after zstd (initramfs-tools) and made a gzip image (dracut)
    unreadable."""
    with Lab(variant, prefix="sec-test") as lab:
        kernel, other = lab.kernels
        image = f"/boot/initrd.img-{kernel}"
        before = image_module(lab, kernel)
        assert before["error"] is None and before["contains_module"], before
        inside = before["module"]["path"].rsplit("/", 1)[0]
        lab.sh(f"mkdir -p /tmp/seg/{inside} && "
               f"cp /lib/modules/{other}/kernel/drivers/scsi/aacraid/aacraid.ko /tmp/seg/{inside}/ && "
               f"cd /tmp/seg && find . | cpio -o -H newc --quiet {compress} >> {image}")
        appended = lab.sh(f"sha256sum /tmp/seg/{inside}/aacraid.ko").split()[0]
        assert appended != before["module"]["sha256"]
        after = image_module(lab, kernel)
        assert after["error"] is None, after
        assert after["module"]["sha256"] == appended, after


def test_initramfs_member_claiming_4_gib(tmp_path):
    """An image whose module entry claims 0xFFFFFFFF bytes: the walk used
    to allocate that much before reading; now the facts report an error
    naming the cap."""
    with Lab("dracut", "--memory", "512m", prefix="sec-test") as lab:
        kernel = lab.kernels[0]
        crafted = newc([(f"usr/lib/modules/{kernel}/updates/aacraid.ko", FILE, 2, 1, b"tiny", 0xFFFFFFFF)])
        path = tmp_path / "early.cpio"
        path.write_bytes(crafted)
        lab.put(path, "/root/early.cpio")
        image = f"/boot/initrd.img-{kernel}"
        lab.sh(f"cat /root/early.cpio {image} > /root/image && cat /root/image > {image}")
        before = lab.tree_hash(*SERVER_WATCHED)
        found = image_module(lab, kernel)
        assert "claims 4294967295 bytes: more than the 256 MiB" in (found["error"] or ""), found
        assert lab.tree_hash(*SERVER_WATCHED) == before
