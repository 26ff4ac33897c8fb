"""initramfs_regen with real dracut and initramfs-tools in both lab
variants (no Python), after kmod_update installed the fixture driver that
aacraid_build built; the new images are read back with the tools' own
listers and booted under QEMU (tests/bootcheck/boot-check.py).

Each test gets a fresh container, pristine or started from a snapshot of
the state after the newer kernel's image was rebuilt (made once per
variant). Containers may mount a tmpfs on /boot (SYS_ADMIN, no AppArmor
profile) for the too-small-/boot fault. Every call of the real tool goes
through a logging wrapper first on PATH, so "no tool started" is checked
against that log."""

import re
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import yaml

from lablib import (ANSIBLE, MODULE_VERSION, REPO, VARIANTS, Lab, docker, file_sha256, inventory, paired_version,
                    playbook, run_ansible, shadow_module, task_results, wait_for_process)

RUN_OPTIONS = ("--cap-add", "SYS_ADMIN", "--security-opt", "apparmor=unconfined")
REAL = {"dracut": "/usr/bin/dracut", "initramfs-tools": "/usr/sbin/mkinitramfs"}
PROGRAM = {"dracut": "dracut", "initramfs-tools": "mkinitramfs"}
LOG = "/root/tool-calls.log"
# Drops aacraid from the image the real tool makes (for the fault test).
DROP = {
    "dracut": 'exec /usr/bin/dracut --omit-drivers aacraid "$@"',
    "initramfs-tools": (
        "rm -rf /tmp/dropconf && cp -a /etc/initramfs-tools /tmp/dropconf && mkdir -p /tmp/dropconf/hooks\n"
        "printf '#!/bin/sh\\n[ \"$1\" = prereqs ] && exit 0\\nfind \"$DESTDIR\" -name \"aacraid.ko*\" -delete\\n'"
        " > /tmp/dropconf/hooks/zz-drop-aacraid && chmod 755 /tmp/dropconf/hooks/zz-drop-aacraid\n"
        'exec /usr/sbin/mkinitramfs -d /tmp/dropconf "$@"'
    ),
}


def set_wrapper(lab, body):
    program = PROGRAM[lab.variant]
    lab.sh(
        f"cat > /usr/local/sbin/{program} <<'EOF'\n#!/bin/sh\necho \"{program} $*\" >> {LOG}\n{body}\nEOF\n"
        f"chmod 755 /usr/local/sbin/{program}"
    )


def logging_wrapper(lab):
    set_wrapper(lab, f'exec {REAL[lab.variant]} "$@"')


@pytest.fixture(scope="module", params=VARIANTS)
def variant(request):
    return request.param


@pytest.fixture
def lab(variant, artifacts):
    """A fresh container: each kernel's artifact as /root/<kernel>.tgz, the
    logging wrapper in place, nothing installed."""
    with Lab(variant, *RUN_OPTIONS) as container:
        container.put_artifacts(artifacts)
        logging_wrapper(container)
        yield container


@pytest.fixture(scope="module")
def rebuilt_image(variant, artifacts):
    """An image of a container in which kmod_update installed the newer
    kernel's driver and initramfs_regen rebuilt that kernel's image; the
    older kernel and its image are untouched. The tool log starts empty."""
    with Lab(variant, *RUN_OPTIONS) as container:
        container.put_artifacts(artifacts)
        logging_wrapper(container)
        assert container.module("kmod_update", src=f"/root/{container.kernels[0]}.tgz")["changed"] is True
        done = regen(container)
        assert [k["rebuilt"] for k in done["kernels"]] == [True, False], done
        container.sh(f"rm {LOG}")
        tag = container.snapshot()
    yield tag
    docker("rmi", tag, check=False)


@pytest.fixture
def rebuilt(variant, rebuilt_image):
    """A fresh container of the rebuilt image."""
    with Lab(variant, *RUN_OPTIONS, image=rebuilt_image) as container:
        yield container


def images(lab):
    """Image → sha256, plus anything else left in /boot, and the module's
    work folders in /var/tmp."""
    return lab.sh("cd /boot && ls -A && sha256sum initrd.img-* && ls -A /var/tmp | grep initramfs_regen || true")


STAGE = re.compile(r"/var/tmp/\.initramfs_regen-\d+-\d+")


def live_processes(lab):
    """(pid, ppid, process group, name, command line) of every process but
    zombies (the lab's init, `sleep infinity`, reaps none) and the shell
    that lists them."""
    out = lab.sh(
        "for p in /proc/[0-9]*; do s=$(cat $p/stat 2>/dev/null) || continue; "
        "c=$(tr '\\0' ' ' < $p/cmdline 2>/dev/null); echo \"$s|$c\"; done"
    )
    found = []
    for line in out.splitlines():
        stat, _, cmdline = line.partition("|")
        pid, rest = stat.split(" (", 1)
        name, _, fields = rest.rpartition(") ")
        state, ppid, group = fields.split()[:3]
        if state != "Z" and "/proc/[0-9]*" not in cmdline and name != "tr":
            found.append((int(pid), int(ppid), int(group), name, cmdline))
    return found


def calls(lab):
    return lab.sh(f"cat {LOG} 2>/dev/null || true")


def regen(lab, **options):
    return lab.module("initramfs_regen", **options)


def image_member_sha(lab, kernel, relative):
    """The module's bytes inside the image, as the variant's own tools see them."""
    image = f"/boot/initrd.img-{kernel}"
    member = f"usr/lib/modules/{kernel}/{relative}"
    if lab.variant == "dracut":
        assert member in lab.sh(f"lsinitrd {image}")
        return lab.sh(f"lsinitrd -f {member} {image} | sha256sum").split()[0]
    lab.sh(f"rm -rf /tmp/unpacked && unmkinitramfs {image} /tmp/unpacked")
    found = lab.sh(f"cd /tmp/unpacked && find . -path '*/{member}'").split()
    assert len(found) == 1, found
    return lab.sh(f"sha256sum /tmp/unpacked/{found[0]} && rm -rf /tmp/unpacked").split()[0]


def test_only_the_stale_image_is_rebuilt_and_checked(lab):
    new, old = lab.kernels
    assert lab.module("kmod_update", src=f"/root/{new}.tgz")["changed"] is True
    # A mode neither tool writes, so that keeping it is the module's doing.
    lab.sh(f"chmod 640 /boot/initrd.img-{new}")
    old_mode = lab.sh(f"stat -c %a /boot/initrd.img-{old}")
    pristine = images(lab)

    preview = regen(lab, check_mode=True, diff=True)
    assert preview["changed"] is True
    verdict = {k["kernel"]: (k["rebuilt"], k["reason"]) for k in preview["kernels"]}
    assert verdict[new] == (
        True,
        f"the image holds kernel/drivers/scsi/aacraid/aacraid.ko ({lab.intree_version(new)}), "
        f"the kernel resolves updates/aacraid.ko ({MODULE_VERSION})",
    )
    assert verdict[old] == (False, "current")
    assert "updates/aacraid.ko" in preview["diff"]["after"] and MODULE_VERSION in preview["diff"]["after"]
    assert images(lab) == pristine and calls(lab) == "", "check mode changed something or ran the tool"

    done = regen(lab)
    assert done["changed"] is True, done
    by_kernel = {k["kernel"]: k for k in done["kernels"]}
    assert by_kernel[new]["rebuilt"] is True and by_kernel[old]["rebuilt"] is False
    inside = by_kernel[new]["modules"][0]
    assert (inside["path"], inside["version"]) == ("updates/aacraid.ko", MODULE_VERSION)
    on_disk = file_sha256(lab, f"/lib/modules/{new}/updates/aacraid.ko")
    assert inside["sha256"] == on_disk == image_member_sha(lab, new, "updates/aacraid.ko")
    [call] = calls(lab).splitlines()
    assert re.fullmatch(f"{PROGRAM[lab.variant]} {tool_args(lab, new)}", call), call
    after = images(lab)
    changed = [line for line in after.splitlines() if line not in pristine.splitlines()]
    assert len(changed) == 1 and changed[0].endswith(f"initrd.img-{new}"), changed
    assert lab.sh(f"stat -c %a /boot/initrd.img-{new}").strip() == "640", "the rebuilt image keeps its mode"
    assert lab.sh(f"stat -c %a /boot/initrd.img-{old}") == old_mode

    again = regen(lab)
    assert again["changed"] is False and [k["rebuilt"] for k in again["kernels"]] == [False, False]
    assert len(calls(lab).splitlines()) == 1, "the second run started no tool"
    assert images(lab) == after


def tool_args(lab, kernel):
    """The tool's arguments, as a pattern: its image and work files go to a
    new private folder in /var/tmp."""
    stage = r"(/var/tmp/\.initramfs_regen-\d+-0)"
    if lab.variant == "dracut":
        return rf"--force --tmpdir {stage} \1/initramfs\.img {kernel}"
    return rf"-o {stage}/initramfs\.img {kernel}"


def boot(lab, kernel):
    out = subprocess.run(
        [str(REPO / "tests/bootcheck/boot-check.py"), "--container", lab.name, "--kernel", kernel],
        capture_output=True, text=True, timeout=400,
    )
    assert out.returncode == 0, out.stderr
    return out.stdout.strip()


def test_the_kernel_boots_the_new_driver_from_the_new_image(rebuilt):
    lab = rebuilt
    new, old = lab.kernels
    assert boot(lab, new) == MODULE_VERSION
    assert boot(lab, old) == lab.intree_version(old), "the image that was not rebuilt still brings the in-tree driver"


DECODE = {"gzip": "zcat", "zstd": "zstd -dc", "none": "cat"}


def listed_by_tool(lab, image):
    """The paths the variant's own lister shows (lsinitrd's lines end in the
    path; its first line gives the image's size, left out)."""
    if lab.variant == "dracut":
        lines = lab.sh(f"lsinitrd {image}").splitlines()
        return sorted(line.split()[-1] for line in lines if re.match(r"[-dlcbps][-rwxsStT]{9} ", line))
    return sorted(lab.sh(f"lsinitramfs {image}").split())


def segment_listing(lab, image, appended):
    """What the real tools list of the appended segment: cut at its offset,
    decoded by the tool of its compression, listed by cpio."""
    decode = DECODE[appended["compression"]]
    return lab.sh(f"tail -c +{appended['offset'] + 1} {image} | {decode} | cpio -t --quiet").split()


def test_append_updates_an_image_in_place_and_the_kernel_boots_it(lab):
    """method: append, on the image each variant's real tool made: no tool
    runs, the image up to the segment is byte for byte the old one, the real
    decoders and cpio read the segment as the result describes it, the
    variant's lister still reads the image (and lists the main archive
    only, as before), facts judge the image current, a rerun does nothing,
    a forced rerun replaces the segment instead of stacking one, and the
    kernel boots the new driver from it."""
    new, old = lab.kernels
    image = f"/boot/initrd.img-{new}"
    assert lab.module("kmod_update", src=f"/root/{new}.tgz", kernels=[new])["changed"] is True
    lab.sh(f"cp -p {image} /root/old.img")
    pristine = images(lab)
    listed_before = listed_by_tool(lab, image)

    preview = regen(lab, kernels=[new], method="append", check_mode=True)
    assert preview["changed"] is True and preview["msg"] == f"would update by appending a segment: {image}"
    [k] = preview["kernels"]
    assert k["rebuilt"] is True and k["appended"] is None
    assert (k["modules"][0]["path"], k["modules"][0]["version"]) == ("updates/aacraid.ko", MODULE_VERSION)
    assert images(lab) == pristine and calls(lab) == ""

    done = regen(lab, kernels=[new], method="append")
    assert done["changed"] is True and done["method"] == "append", done
    assert done["msg"] == f"updated by appending a segment: {image}"
    [k] = done["kernels"]
    assert calls(lab) == "", "append ran an image tool"
    on_disk = file_sha256(lab, f"/lib/modules/{new}/updates/aacraid.ko")
    assert k["modules"][0]["sha256"] == on_disk
    appended = k["appended"]
    size = int(lab.sh("stat -c %s /root/old.img"))
    assert size <= appended["offset"] < size + 4
    assert lab.sh(f"cmp -n {size} /root/old.img {image} && echo same").strip() == "same"
    assert int(lab.sh(f"stat -c %s {image}")) == appended["offset"] + appended["bytes"]
    assert appended["compression"] == {"dracut": "gzip", "initramfs-tools": "zstd"}[lab.variant]
    tree = f"usr/lib/modules/{new}"
    assert appended["files"][0] == ".initramfs_regen-append"
    assert f"{tree}/updates/aacraid.ko" in appended["files"]
    assert {f"{tree}/modules.dep", f"{tree}/modules.dep.bin", f"{tree}/modules.alias.bin"} <= set(appended["files"])
    assert segment_listing(lab, image, appended) == appended["files"]
    decode = DECODE[appended["compression"]]
    inside = lab.sh(f"tail -c +{appended['offset'] + 1} {image} | {decode} | "
                    f"cpio -i --quiet --to-stdout {tree}/updates/aacraid.ko | sha256sum").split()[0]
    assert inside == on_disk
    dep = lab.sh(f"tail -c +{appended['offset'] + 1} {image} | {decode} | cpio -i --quiet --to-stdout {tree}/modules.dep")
    assert re.search(r"^updates/aacraid\.ko:", dep, re.M), dep
    assert listed_by_tool(lab, image) == listed_before, "the lister reads the main archive as before"
    facts = lab.module("raid_driver_facts", kernels=[new], gather_subset=["modules", "initramfs"], image_cache="")
    judged = facts["ansible_facts"]["raid_driver"]["kernels"][0]["initramfs"]
    assert judged["matches_resolved"] is True and judged["module"]["sha256"] == on_disk, judged
    assert judged["appended_segment"] == appended["offset"], judged

    appended_image = file_sha256(lab, image)
    again = regen(lab, kernels=[new], method="append")
    assert again["changed"] is False and calls(lab) == ""
    forced = regen(lab, kernels=[new], method="append", force=True)
    assert forced["changed"] is True and forced["kernels"][0]["appended"]["offset"] == appended["offset"]
    assert file_sha256(lab, image) == appended_image, "the forced append replaced its segment with the same one"

    # Other bytes on disk (a section dropped; the same driver): the next
    # append replaces the segment, which starts where the first one did.
    lab.sh(f"objcopy --remove-section .comment /lib/modules/{new}/updates/aacraid.ko")
    changed_on_disk = file_sha256(lab, f"/lib/modules/{new}/updates/aacraid.ko")
    assert changed_on_disk != on_disk
    replaced = regen(lab, kernels=[new], method="append")
    [k] = replaced["kernels"]
    assert replaced["changed"] is True and k["appended"]["offset"] == appended["offset"], replaced
    assert k["modules"][0]["sha256"] == changed_on_disk
    assert lab.sh(f"cmp -n {size} /root/old.img {image} && echo same").strip() == "same"
    assert int(lab.sh(f"stat -c %s {image}")) == appended["offset"] + k["appended"]["bytes"]
    assert segment_listing(lab, image, k["appended"]) == appended["files"]
    inside = lab.sh(f"tail -c +{appended['offset'] + 1} {image} | {decode} | "
                    f"cpio -i --quiet --to-stdout {tree}/updates/aacraid.ko | sha256sum").split()[0]
    assert inside == changed_on_disk
    assert lab.sh("ls -A /var/tmp | grep initramfs_regen || true") == ""
    assert boot(lab, new) == MODULE_VERSION


def test_append_refuses_an_image_it_cannot_update_and_changes_nothing(lab):
    """An xz image: the task fails before any change, naming the compression."""
    new, _ = lab.kernels
    assert lab.module("kmod_update", src=f"/root/{new}.tgz", kernels=[new])["changed"] is True
    lab.sh(f"mkdir -p /tmp/t/usr/lib/modules/{new} && touch /tmp/t/usr/lib/modules/{new}/modules.dep && "
           f"cd /tmp/t && find . | cpio -o -H newc --quiet | xz --check=crc32 > /boot/initrd.img-{new}")
    before = lab.tree_hash("/boot", "/var/tmp")
    failed = regen(lab, kernels=[new], method="append")
    assert failed["failed"] is True
    assert "it is xz-compressed, and an appended segment is stored as gzip, zstd or uncompressed only" in failed["msg"]
    assert failed["msg"].endswith("use method: rebuild"), failed["msg"]
    assert lab.tree_hash("/boot", "/var/tmp") == before and calls(lab) == ""


def test_faults_leave_every_image_intact(rebuilt):
    lab = rebuilt
    new, old = lab.kernels
    assert lab.module("kmod_update", src=f"/root/{old}.tgz")["changed"] is True
    program = PROGRAM[lab.variant]

    def refused(message, **options):
        before = images(lab)
        result = regen(lab, **options)
        assert result["failed"] is True, result
        assert message in result["msg"], result["msg"]
        assert images(lab) == before
        return result

    refused("kernel 5.10.0-9-amd64 is not installed", kernels=["5.10.0-9-amd64"])

    set_wrapper(lab, "echo 'simulated failure: no space left on device' >&2\nexit 3")
    failed = refused(f"{program} failed for kernel {old} (rc 3)")
    assert "simulated failure: no space left on device" in failed["msg"] and failed["rc"] == 3

    # A hung tool: killed with everything it started, within the limit.
    set_wrapper(lab, "date +%s.%N > /root/hung-since\nsleep 300 &\nsleep 301")
    hung = refused(f"`{program} ", timeout=3)
    took = float(lab.sh("date +%s.%N")) - float(lab.sh("cat /root/hung-since"))
    assert "was still running after the time limit of 3 s (timeout)" in hung["msg"], hung["msg"]
    assert 3 <= took < 10, f"the tool ran {took} s"
    left = [p for p in live_processes(lab) if "sleep 30" in p[4] or p[3] in (program, "initramfs_regen")]
    assert left == [], left

    set_wrapper(lab, DROP[lab.variant])
    dropped = refused(f"the new image {program} made for kernel {old} lacks updates/aacraid.ko ({MODULE_VERSION})")
    assert f"/boot/initrd.img-{old} is untouched" in dropped["msg"]

    logging_wrapper(lab)
    lab.sh(f"mv {REAL[lab.variant]} {REAL[lab.variant]}.away && mv /usr/local/sbin/{program} /root/wrapper")
    try:
        refused("no initramfs tool is installed: neither dracut nor mkinitramfs")
    finally:
        lab.sh(f"mv {REAL[lab.variant]}.away {REAL[lab.variant]} && mv /root/wrapper /usr/local/sbin/{program}")

    # A /boot with room for what is there and 1 MiB more.
    used_kib = int(lab.sh("du -sk /boot").split()[0])
    lab.sh(f"mkdir -p /boot.orig && cp -a /boot/. /boot.orig/ && "
           f"mount -t tmpfs -o size={used_kib + 1024}k tmpfs /boot && cp -a /boot.orig/. /boot/")
    try:
        refused("not enough room in /boot: ")
    finally:
        lab.sh("umount /boot && rm -rf /boot.orig")
    assert not lab.sh("ls -A /boot /var/tmp | grep initramfs_regen || true")


def test_a_killed_run_leaves_no_process_and_the_next_run_cleans_up(rebuilt):
    """kill -9 of the module while the tool works: the tool and everything
    it started die with it (the guard process that leads the tool's process
    group kills the group); its work folder stays, and so does a temporary
    image in /boot of a run killed while writing it. Check mode reports
    both, a real run removes them first (on a /boot that has room for the
    new image only once the leftover is gone), the next run has nothing
    to do."""
    lab = rebuilt
    new, old = lab.kernels
    program = PROGRAM[lab.variant]
    assert lab.module("kmod_update", src=f"/root/{old}.tgz")["changed"] is True
    args = lab.args_file("initramfs_regen", kernels=[old])
    module = int(lab.sh(f"{lab.install('initramfs_regen')} {args} > /dev/null 2>&1 & echo $!"))
    # Until the tool works in its folder (dracut.* or mkinitramfs_*).
    deadline = time.monotonic() + 60
    while not lab.sh("ls -A /var/tmp/.initramfs_regen-*/ 2>/dev/null || true").strip():
        assert time.monotonic() < deadline, "the tool never started"
        time.sleep(0.2)
    # Until the tool has started a process of its own (cpio, a compressor,
    # dracut-install...), which the kernel would not signal.
    deadline = time.monotonic() + 60
    while True:
        processes = live_processes(lab)
        [guard] = [p for p in processes if p[1] == module]
        [tool] = [p for p in processes if p[1] == guard[0] and p[3] == program]
        assert guard[2] == guard[0] == tool[2], f"the guard leads the tool's process group: {guard}, {tool}"
        if [p for p in processes if p[2] == guard[0] and p[0] not in (guard[0], tool[0])]:
            break
        assert time.monotonic() < deadline, f"the tool started nothing: {processes}"
        time.sleep(0.1)
    lab.sh(f"kill -9 {module}")
    # No process gets a signal from the kill itself but the module; the
    # kernel's parent-death signal reaches the guard, which kills the
    # group. A second at most; five for a loaded machine.
    deadline = time.monotonic() + 5
    while left := [p for p in live_processes(lab) if p[0] == module or p[2] == guard[0]]:
        assert time.monotonic() < deadline, f"outlived the module: {left}"
        time.sleep(0.1)
    [stage] = lab.sh("ls -d /var/tmp/.initramfs_regen-*").split()
    assert STAGE.fullmatch(stage) and stage.endswith(f"-{module}-0"), stage
    # The tool took its work folder there (dracut --tmpdir, TMPDIR for mkinitramfs).
    work = {"dracut": "dracut.", "initramfs-tools": "mkinitramfs_"}[lab.variant]
    assert any(n.startswith(work) for n in lab.sh(f"ls -A {stage}").split()), lab.sh(f"ls -A {stage}")
    # What a run killed inside Host::write_atomic leaves: a temporary image
    # larger than the new one will be.
    partial = f"/boot/.initrd.img-{old}.tmp{module}.0"
    lab.sh(f"size=$(stat -c %s /boot/initrd.img-{old}); head -c $((size * 6 / 5)) /dev/urandom > {partial}")
    leftovers = [partial, stage]
    # A /boot with room for what is there and 1 MiB more.
    used_kib = int(lab.sh("du -sk /boot").split()[0])
    lab.sh(f"mkdir -p /boot.orig && cp -a /boot/. /boot.orig/ && "
           f"mount -t tmpfs -o size={used_kib + 1024}k tmpfs /boot && cp -a /boot.orig/. /boot/ && rm -rf /boot.orig")
    before = lab.tree_hash("/boot", "/var/tmp", times=True)
    calls_before = calls(lab)

    preview = regen(lab, check_mode=True, kernels=[old])
    assert preview["changed"] is True and preview["removed_leftovers"] == leftovers, preview
    assert [k["rebuilt"] for k in preview["kernels"]] == [True]
    assert preview["msg"].startswith(f"would remove what killed runs left: {partial}, {stage}; "), preview["msg"]
    assert lab.tree_hash("/boot", "/var/tmp", times=True) == before and calls(lab) == calls_before

    done = regen(lab, kernels=[old])
    assert done["changed"] is True and done["removed_leftovers"] == leftovers, done
    assert [k["rebuilt"] for k in done["kernels"]] == [True]
    assert done["kernels"][0]["modules"][0]["version"] == MODULE_VERSION
    assert not lab.sh("ls -A /boot /var/tmp | grep initramfs_regen || true")
    assert f".initrd.img-{old}.tmp" not in lab.sh("ls -A /boot")

    again = regen(lab)
    assert again["changed"] is False and again["removed_leftovers"] == [], again
    assert [k["rebuilt"] for k in again["kernels"]] == [False, False]
    assert len(calls(lab).splitlines()) == len(calls_before.splitlines()) + 1, "the last run started no tool"


def test_through_ansible(rebuilt, tmp_path):
    """With the older kernel's driver installed after the newer image was
    rebuilt, the older kernel's image is stale: check mode sees that and
    changes nothing, a real run rebuilds it, then finds nothing to do; the
    kernel boots the driver from it. Each lab variant through one
    ansible-core (`paired_version`), as each run ends in a QEMU boot."""
    lab = rebuilt
    version = paired_version(lab.variant)
    old = lab.kernels[1]
    assert lab.module("kmod_update", src=f"/root/{old}.tgz")["changed"] is True
    inv = inventory(tmp_path, lab)
    before = images(lab)
    out, _ = run_ansible(version, "ansible-playbook", "-i", inv, "--diff", "--check", playbook("regen"))
    assert out["stats"]["lab"]["changed"] == 1
    assert [k["rebuilt"] for k in task_results(out)["lab"]["kernels"]] == [False, True]
    assert images(lab) == before, "check mode changed /boot"
    out, _ = run_ansible(version, "ansible-playbook", "-i", inv, "--diff", playbook("regen"))
    assert out["stats"]["lab"]["changed"] == 1
    result = task_results(out)["lab"]
    assert [k["rebuilt"] for k in result["kernels"]] == [False, True]
    assert result["kernels"][1]["backup_file"] == f"/boot/initrd.img-{old}.bak"
    out, _ = run_ansible(version, "ansible-playbook", "-i", inv, playbook("regen"))
    assert out["stats"]["lab"]["changed"] == 0
    assert boot(lab, old) == MODULE_VERSION


def dracut_member_sha(lab, image, kernel, relative):
    """The bytes of a module inside a dracut image of any name, as lsinitrd sees them."""
    member = f"usr/lib/modules/{kernel}/{relative}"
    assert member in lab.sh(f"lsinitrd {image}"), f"{image} holds no {member}"
    return lab.sh(f"lsinitrd -f {member} {image} | sha256sum").split()[0]


def image_names(lab):
    """The initramfs images and their backups in /boot."""
    return sorted(n for n in lab.sh("ls -A /boot").split() if n.startswith("init"))


def test_rhel_and_suse_names_the_boot_lock_a_failure_on_the_second_kernel_and_backups():
    """Sidecar (description, notes, backup) and ARCHITECTURE (locks), with
    the real dracut. An image named the RHEL way (/boot/initramfs-<k>.img)
    and one named the SUSE way (/boot/initrd-<k>) are found and read
    (current at first), and once stale rebuilt in place under that name; no
    Debian-named image appears.
    While another process holds the lock on /boot a run waits, starting no
    tool and writing nothing in /boot or /var/tmp, and goes on once it is
    released.
    Kernels are done one after the other: when the second kernel's rebuild
    fails (its modules.dep is gone, so dracut packs the kernel's own aacraid
    instead of the resolved copy), the message names that kernel and the
    image already replaced; the first kernel's image is the checked new one,
    the failed kernel's image keeps its bytes and gets no .bak, nothing
    temporary is left, and check mode then wants only the failed one.
    With backup each <image>.bak holds the previous image's bytes, and a
    .bak an earlier run left is replaced."""
    with Lab("dracut") as lab:
        logging_wrapper(lab)
        new, old = lab.kernels
        named = {new: f"/boot/initramfs-{new}.img", old: f"/boot/initrd-{old}"}
        lab.sh(f"mv /boot/initrd.img-{new} {named[new]} && mv /boot/initrd.img-{old} {named[old]}")

        current = regen(lab, check_mode=True)
        assert current["changed"] is False, current
        assert [(k["kernel"], k["image"], k["rebuilt"], k["reason"]) for k in current["kernels"]] == [
            (new, named[new], False, "current"), (old, named[old], False, "current")]
        assert [k["before"][0]["path"] for k in current["kernels"]] == ["kernel/drivers/scsi/aacraid/aacraid.ko"] * 2

        copies = {k: shadow_module(lab, k, "aacraid") for k in named}
        lab.sh(f"head -c 4096 /dev/urandom > {named[new]}.bak")
        previous = {k: file_sha256(lab, image) for k, image in named.items()}
        lab.sh(f"mv /lib/modules/{old}/modules.dep /root/modules.dep")
        with ThreadPoolExecutor(1) as pool:
            with lab.lock_held("/boot"):
                before = lab.tree_hash("/boot", "/var/tmp", times=True)
                run = pool.submit(regen, lab, backup=True)
                wait_for_process(lab, "initramfs_regen")
                time.sleep(3)
                assert not run.done(), "the run did not wait for the lock on /boot"
                assert lab.tree_hash("/boot", "/var/tmp", times=True) == before, "the run wrote while /boot was locked"
                assert calls(lab) == "", "the run started the tool while /boot was locked"
            failed = run.result(timeout=900)
        assert failed["failed"] is True, failed
        for said in (f"the new image dracut made for kernel {old} lacks updates/aacraid.ko",
                     "it holds kernel/drivers/scsi/aacraid/aacraid.ko", f"{named[old]} is untouched",
                     f"already replaced by checked new images: {named[new]}"):
            assert said in failed["msg"], failed["msg"]
        logged = calls(lab).splitlines()
        assert len(logged) == 2 and logged[0].endswith(f" {new}") and logged[1].endswith(f" {old}"), logged
        assert file_sha256(lab, f"{named[new]}.bak") == previous[new], "the earlier .bak holds the previous image"
        assert dracut_member_sha(lab, named[new], new, "updates/aacraid.ko") == file_sha256(lab, copies[new])
        assert file_sha256(lab, named[old]) == previous[old], "the failed kernel's image is untouched"
        assert image_names(lab) == sorted([named[new][6:], f"{named[new][6:]}.bak", named[old][6:]])
        assert not lab.sh("ls -A /boot /var/tmp | grep -e '^\\.' || true"), "a temporary file is left"
        first = file_sha256(lab, named[new])

        lab.sh(f"mv /root/modules.dep /lib/modules/{old}/modules.dep")
        preview = regen(lab, check_mode=True)
        assert [(k["kernel"], k["rebuilt"]) for k in preview["kernels"]] == [(new, False), (old, True)], preview
        done = regen(lab, backup=True)
        assert done["changed"] is True, done
        assert [(k["kernel"], k["image"], k["rebuilt"], k["backup_file"]) for k in done["kernels"]] == [
            (new, named[new], False, None), (old, named[old], True, f"{named[old]}.bak")], done
        inside = done["kernels"][1]["modules"][0]
        on_disk = file_sha256(lab, copies[old])
        assert (inside["path"], inside["sha256"]) == ("updates/aacraid.ko", on_disk), inside
        assert dracut_member_sha(lab, named[old], old, "updates/aacraid.ko") == on_disk
        assert file_sha256(lab, f"{named[old]}.bak") == previous[old], "the .bak holds the previous image"
        assert file_sha256(lab, named[new]) == first
        logged = calls(lab).splitlines()
        assert len(logged) == 3 and logged[2].endswith(f" {old}"), logged
        assert image_names(lab) == sorted(n for image in named.values() for n in (image[6:], f"{image[6:]}.bak"))

OTHER_TOOL = {"dracut": "initramfs-tools", "initramfs-tools": "dracut"}
NOT_INSTALLED = {
    "dracut": "tool dracut is not installed (dracut was not found)",
    "initramfs-tools": "tool initramfs-tools is not installed (mkinitramfs was not found)",
}


@pytest.mark.parametrize("tool", VARIANTS)
def test_each_named_module_is_judged_and_the_tool_option_is_obeyed(tool):
    """Options modules and tool: with several modules each is judged on its
    own (an image is stale when any one of them is not the file the kernel
    resolves, and the reason names that one; a module built into the kernel
    needs nothing; a module the kernel does not know fails the task). A tool
    that is not installed fails the task clearly before anything is
    written; the variant's own tool named explicitly is the one that runs,
    and the new image carries every named module as resolved."""
    with Lab(tool) as lab:
        logging_wrapper(lab)
        new = lab.kernels[0]
        builtin = lab.sh(f"sed -n 's|.*/\\(unix\\)\\.ko$|\\1|p' /lib/modules/{new}/modules.builtin").strip()
        assert builtin == "unix", "the lab kernel has unix built in"
        names = ["aacraid", "megaraid_sas", builtin]
        intree = {
            "aacraid": "kernel/drivers/scsi/aacraid/aacraid.ko",
            "megaraid_sas": "kernel/drivers/scsi/megaraid/megaraid_sas.ko",
        }

        current = regen(lab, check_mode=True, kernels=[new], modules=names)
        assert current["changed"] is False and current["modules"] == names, current
        [verdict] = current["kernels"]
        assert (verdict["rebuilt"], verdict["reason"]) == (False, "current"), verdict
        assert [(m["name"], m["path"]) for m in verdict["before"]] == [
            ("aacraid", intree["aacraid"]), ("megaraid_sas", intree["megaraid_sas"]), (builtin, None)]

        copy = shadow_module(lab, new, "megaraid_sas")
        version = lab.sh(f"modinfo -F version {copy}").strip()
        assert regen(lab, check_mode=True, kernels=[new], modules=["aacraid"])["kernels"][0]["reason"] == "current"
        [verdict] = regen(lab, check_mode=True, kernels=[new], modules=names)["kernels"]
        assert (verdict["rebuilt"], verdict["reason"]) == (
            True,
            f"the image holds {intree['megaraid_sas']} ({version}), "
            f"the kernel resolves updates/megaraid_sas.ko ({version})",
        ), verdict

        untouched = lab.tree_hash("/boot", "/var/tmp", times=True)
        unknown = regen(lab, kernels=[new], modules=[*names, "no_such_driver"])
        assert unknown["failed"] is True and f"kernel {new} has no module no_such_driver" in unknown["msg"], unknown
        missing = regen(lab, kernels=[new], modules=names, tool=OTHER_TOOL[tool])
        assert missing["failed"] is True and NOT_INSTALLED[OTHER_TOOL[tool]] in missing["msg"], missing
        assert lab.tree_hash("/boot", "/var/tmp", times=True) == untouched and calls(lab) == ""

        done = regen(lab, kernels=[new], modules=names, tool=tool)
        assert done["changed"] is True and done["tool"] == tool, done
        [rebuilt] = done["kernels"]
        assert rebuilt["rebuilt"] is True
        assert [(m["name"], m["path"]) for m in rebuilt["modules"]] == [
            ("aacraid", intree["aacraid"]), ("megaraid_sas", "updates/megaraid_sas.ko"), (builtin, None)]
        assert rebuilt["modules"][1]["sha256"] == file_sha256(lab, copy) == image_member_sha(
            lab, new, "updates/megaraid_sas.ko")
        [call] = calls(lab).splitlines()
        assert re.fullmatch(f"{PROGRAM[tool]} {tool_args(lab, new)}", call), call
        again = regen(lab, kernels=[new], modules=names, tool=tool)
        assert again["changed"] is False and calls(lab) == f"{call}\n", again


# /etc/os-release of CentOS 7, a RedHat-family host the roles support.
CENTOS_7 = '''NAME="CentOS Linux"
VERSION="7 (Core)"
ID="centos"
ID_LIKE="rhel fedora"
VERSION_ID="7"
PRETTY_NAME="CentOS Linux 7 (Core)"
'''


def task_named(output, name):
    """The lab's result of the task called `name` in the first play."""
    [task] = [t for t in output["plays"][0]["tasks"] if t["task"]["name"] == name]
    return task["hosts"]["lab"]


@pytest.mark.parametrize("version", list(ANSIBLE))
def test_a_redhat_family_host_gets_the_redhat_variables(version, tmp_path):
    """roles/aacraid_platform (README): on a host whose /etc/os-release names
    the RHEL family the role loads vars/RedHat.yml, which makes dracut
    initramfs_regen's tool; checked in a lab container given CentOS 7's
    os-release, through each ansible-core under test in check mode."""
    redhat = yaml.safe_load((REPO / "roles/aacraid_platform/vars/RedHat.yml").read_text())
    debian = yaml.safe_load((REPO / "roles/aacraid_platform/vars/Debian.yml").read_text())
    assert redhat != debian and redhat["__aacraid_platform_initramfs_tool"] == "dracut"
    with Lab("dracut") as lab:
        lab.sh(f"rm /etc/os-release && cat > /etc/os-release <<'EOF'\n{CENTOS_7}EOF")
        out, _ = run_ansible(version, "ansible-playbook", "-i", inventory(tmp_path, lab), "--check",
                             playbook("platform"))
    loaded = task_named(out, "aacraid_platform : Load the platform variables")
    assert [Path(f).relative_to(REPO) for f in loaded["ansible_included_var_files"]] == [
        Path("roles/aacraid_platform/vars/RedHat.yml")], loaded
    assert task_named(out, "Show what it set")["msg"] == {"__aacraid_platform_os_family": "RedHat", **redhat}


HOOK = """#!/bin/sh
echo "$1 $2 $(sha256sum < "$2" | cut -d' ' -f1)" >> /root/hooks.log
"""


def test_post_update_hooks_see_each_new_image(artifacts):
    """update-initramfs runs /etc/initramfs/post-update.d after it writes an
    image (hooks that copy it to an EFI system partition for systemd-boot);
    initramfs_regen ran mkinitramfs itself and skipped them. Each hook now
    gets the kernel and the image once the checked image is in place, a
    run with nothing to do runs none, and a failing hook fails the task,
    whose message says the new image is in place."""
    with Lab("initramfs-tools") as lab:
        lab.put_artifacts(artifacts)
        new, old = lab.kernels
        image = f"/boot/initrd.img-{new}"
        lab.sh(f"mkdir -p /etc/initramfs/post-update.d && cat > /etc/initramfs/post-update.d/zz-copy <<'EOF'\n{HOOK}EOF\n"
               "chmod 755 /etc/initramfs/post-update.d/zz-copy")
        assert lab.module("kmod_update", src=f"/root/{new}.tgz")["changed"] is True
        done = lab.module("initramfs_regen", kernels=[new, old])
        assert not done.get("failed"), done["msg"]
        assert [k["rebuilt"] for k in done["kernels"]] == [True, False], done
        assert lab.sh("cat /root/hooks.log").splitlines() == [f"{new} {image} {file_sha256(lab, image)}"]
        again = lab.module("initramfs_regen", kernels=[new, old])
        assert again["changed"] is False, again
        assert len(lab.sh("cat /root/hooks.log").splitlines()) == 1
        lab.sh("printf '#!/bin/sh\\necho no ESP mounted >&2\\nexit 3\\n' > /etc/initramfs/post-update.d/zz-fail && "
               "chmod 755 /etc/initramfs/post-update.d/zz-fail")
        failed = lab.module("initramfs_regen", kernels=[new], force=True)
        assert failed.get("failed") is True, failed
        assert f"the new image {image} of kernel {new} is in place and was checked, but the hooks in " \
               "/etc/initramfs/post-update.d failed" in failed["msg"], failed["msg"]
        assert "no ESP mounted" in failed["msg"], failed["msg"]
        assert f"already replaced by checked new images: {image}" in failed["msg"], failed["msg"]
        log = lab.sh("cat /root/hooks.log").splitlines()
        assert log[1:] == [f"{new} {image} {file_sha256(lab, image)}"], log
        facts = lab.module("raid_driver_facts", kernels=[new], gather_subset=["modules", "initramfs"])
        assert facts["ansible_facts"]["raid_driver"]["kernels"][0]["initramfs"]["matches_resolved"] is True
