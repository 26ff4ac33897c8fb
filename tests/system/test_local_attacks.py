"""Attacks by a local user without root on the servers the modules run on
(issue 11, items 1, 5 and 7), tried for real in lab containers: the user,
uid 4242 "mallory", owns /home/mallory and may write to /tmp, and the
modules run as root. Each test names its attack; each fails on the code
before the fix (the attack works) and passes after (the module refuses,
or does its work without touching what mallory planted)."""

import json
import tarfile

import pytest

from lablib import VENDOR_VERSION, Lab

MALLORY = "/home/mallory"
PWNED = "/tmp/pwned-by-mallory"


def add_mallory(lab):
    """mallory's home with a bin folder of her own on her PATH."""
    lab.sh(f"mkdir -p {MALLORY}/bin && chown -R 4242:4242 {MALLORY} && rm -f {PWNED}")


def plant_tool(lab, name):
    """A `name` of mallory's in her bin folder that records its run."""
    lab.sh(f"printf '#!/bin/sh\\ntouch {PWNED}\\n' > {MALLORY}/bin/{name} && "
           f"chmod 755 {MALLORY}/bin/{name} && chown 4242:4242 {MALLORY}/bin/{name}")


def run_with_path(lab, binary, path, **options):
    """A module run as root by a become method that kept the caller's PATH."""
    program = lab.install(binary)
    args = lab.args_file(binary, **options)
    out = lab.sh(f"PATH={path} {program} {args}; true")
    return json.loads(out)


def pwned(lab):
    return lab.sh(f"test -e {PWNED} && echo yes || echo no").strip() == "yes"


@pytest.fixture(scope="module")
def server(artifacts):
    """One dracut lab container with each kernel's artifact as /root/<kernel>.tgz."""
    with Lab("dracut") as container:
        container.put_artifacts(artifacts)
        add_mallory(container)
        yield container


def test_users_path_does_not_choose_roots_tools(server):
    """Attack: `become` keeps mallory's PATH (sudo -E, `su` without `-`), so
    root runs the first `depmod` or `modinfo` on it: hers. The modules look
    in the system folders first and give their tools a PATH of root-only
    folders."""
    lab = server
    for tool in ("depmod", "modinfo", "dracut", "sh", "cp", "find"):
        plant_tool(lab, tool)
    kernel = lab.kernels[0]
    path = f"{MALLORY}/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
    try:
        result = run_with_path(lab, "kmod_update", path, src=f"/root/{kernel}.tgz", kernels=[kernel])
        assert result["changed"] is True and not result.get("failed"), result
        assert not pwned(lab), "root ran one of mallory's tools"
        regen = run_with_path(lab, "initramfs_regen", path, kernels=[kernel])
        assert not regen.get("failed"), regen
        assert regen["changed"] is True, regen
        assert not pwned(lab), "dracut ran one of mallory's tools"
    finally:
        lab.sh(f"rm -f {MALLORY}/bin/* {PWNED}")
        lab.module("kmod_update", state="absent", kernels=[kernel])


def test_a_tool_only_others_can_write_is_refused(server):
    """Attack: mallory installs an `arcconf` in her own folder (or in a
    folder she can write) and waits for root's facts run to start it."""
    lab = server
    plant_tool(lab, "arcconf")
    try:
        result = run_with_path(lab, "raid_driver_facts", f"{MALLORY}/bin:/usr/sbin:/usr/bin:/sbin:/bin",
                               gather_subset="controllers")
        assert not result.get("failed"), result
        assert not pwned(lab), "root ran mallory's arcconf"
        warnings = [w for w in result.get("warnings", []) if "arcconf" in w]
        assert len(warnings) == 1, result.get("warnings")
        assert f"{MALLORY}/bin/arcconf is owned by uid 4242" in warnings[0], warnings
        assert "is refused" in warnings[0], warnings
    finally:
        lab.sh(f"rm -f {MALLORY}/bin/arcconf {PWNED}")


def test_the_rpm_is_never_staged_where_a_user_can_reach_it(vendor_packages, tmp_path):
    """Attack: aacraid_build wrote the vendor rpm to a predictable name in
    /tmp (`/tmp/.aacraid_build-<pid>-<rpm>.tmp<pid>` before the rename),
    following whatever was there. mallory plants links at those names for
    the next pids, pointing at a file she owns, then rewrites the rpm
    before `rpm -i` runs its scriptlets as root. Now the rpm is written to
    a new 0700 folder beside /usr/src, and nothing in /tmp is touched."""
    with Lab("dracut") as lab:
        lab.put(vendor_packages["good"], "/root/good.tgz")
        add_mallory(lab)
        lab.pretend_rpm_based()
        rpm = f"aacraid-{VENDOR_VERSION}-dkms.noarch.rpm"
        grab = f"{MALLORY}/grab"
        lab.sh(f"touch {grab} && chown 4242:4242 {grab} && chmod 666 {grab}")
        # One tar process plants every link, so the pids stay predictable.
        links = tmp_path / "links.tar"
        first = int(lab.sh("sh -c 'echo $$'").strip())
        with tarfile.open(links, "w") as tar:
            for pid in range(first, first + 300):
                link = tarfile.TarInfo(f".aacraid_build-{pid}-{rpm}.tmp{pid}")
                link.type, link.linkname, link.uid, link.gid = tarfile.SYMTYPE, grab, 4242, 4242
                tar.addfile(link)
        lab.put(links, "/root/links.tar")
        lab.sh("tar -xf /root/links.tar -C /tmp")
        tmp_before = lab.tree_hash("/tmp")
        result = lab.module("aacraid_build", src="/root/good.tgz", kernels=[lab.kernels[0]], state="built")
        assert result["changed"] is True and result["source_installed"] is True, result
        assert lab.sh(f"stat -c %s {grab}").strip() == "0", "root wrote the rpm into mallory's file"
        assert lab.tree_hash("/tmp") == tmp_before, "the run wrote in /tmp"
        assert lab.sh("ls -A /usr/src | grep -c '^\\.aacraid_build' || true").strip() == "0", \
            "the private staging folder is removed"


@pytest.fixture
def fresh_server(artifacts):
    with Lab("dracut") as container:
        container.put_artifacts(artifacts)
        yield container


def test_no_write_through_a_link_in_the_kernel_tree(fresh_server):
    """Attack (or a careless admin): /lib/modules/<k>/updates is a link to
    /etc; kmod_update followed it for mkdir, the temporary file, the rename
    and the backup. Now it refuses, naming the link, and writes nothing."""
    lab = fresh_server
    kernel = lab.kernels[0]
    lab.sh(f"mkdir -p /etc/evil && ln -s /etc/evil /lib/modules/{kernel}/updates")
    before = lab.tree_hash("/etc", f"/lib/modules/{kernel}", "/var/lib/kmod_update")
    result = lab.module("kmod_update", src=f"/root/{kernel}.tgz", kernels=[kernel])
    assert result["failed"] is True
    assert f"/lib/modules/{kernel}/updates is a symbolic link (to /etc/evil)" in result["msg"], result["msg"]
    assert lab.tree_hash("/etc", f"/lib/modules/{kernel}", "/var/lib/kmod_update") == before


def test_a_forged_record_cannot_remove_files_outside_the_tree(fresh_server):
    """Attack: a record under /var/lib/kmod_update (restored from a backup,
    copied from another host, or edited) names /etc/shadow as the
    installed file and /etc as a folder the install created; `state:
    absent` removed them."""
    lab = fresh_server
    kernel = lab.kernels[0]
    shadow_sha = lab.sh("sha256sum /etc/shadow").split()[0]
    record = {"path": "/etc/shadow", "sha256": shadow_sha, "version": None,
              "created_dirs": ["/etc"], "replaced": None}
    lab.sh(f"mkdir -p /var/lib/kmod_update/{kernel} && "
           f"echo '{json.dumps(record)}' > /var/lib/kmod_update/{kernel}/aacraid.json")
    before = lab.tree_hash("/etc", f"/lib/modules/{kernel}", "/var/lib/kmod_update")
    result = lab.module("kmod_update", state="absent", kernels=[kernel])
    assert result["failed"] is True
    assert "names a path kmod_update does not touch" in result["msg"], result["msg"]
    assert "/etc/shadow is not inside" in result["msg"], result["msg"]
    assert lab.tree_hash("/etc", f"/lib/modules/{kernel}", "/var/lib/kmod_update") == before


def test_a_linked_boot_image_is_not_replaced_by_a_file(fresh_server):
    """Attack (or a layout the bootloader reads through a link):
    /boot/initramfs image is a link to the file the bootloader loads.
    initramfs_regen renamed its new image over the link: the bootloader
    kept the old image while every later run read the link's new target
    and reported it current. Now a stale linked image is refused."""
    lab = fresh_server
    kernel = lab.kernels[0]
    lab.module("kmod_update", src=f"/root/{kernel}.tgz", kernels=[kernel])
    image = lab.sh(f"ls /boot/initrd.img-{kernel} /boot/initramfs-{kernel}.img 2>/dev/null || true").split()
    assert len(image) == 1, image
    image = image[0]
    lab.sh(f"mv {image} /boot/loaded-by-the-bootloader && ln -s loaded-by-the-bootloader {image}")
    before = lab.tree_hash("/boot")
    result = lab.module("initramfs_regen", kernels=[kernel])
    assert result["failed"] is True
    assert f"{image} is a symbolic link (to loaded-by-the-bootloader)" in result["msg"], result["msg"]
    assert lab.tree_hash("/boot") == before
