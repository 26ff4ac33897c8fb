"""aacraid_build against real DKMS 3.0.10 and real kbuild in a lab container
(both lab kernels), with a vendor-shaped package made by
tests/fixtures/make-vendor-package.sh; then DKMS 2.x paths through
tests/fixtures/fake-dkms-2x; then through ansible-core."""

import json
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from lablib import (ANSIBLE, BROKEN_VERSION, MODULE_VERSION, NEWEST, REPO, VENDOR_VERSION, Lab, driver_rpm, file_stamps,
                    inventory, make_vendor_package, playbook, run_ansible, task_results, throwaway_key)

VERSION = VENDOR_VERSION
BROKEN = BROKEN_VERSION
WATCHED = ("/var/lib/dkms", "/usr/src", "/lib/modules", "/root/artifacts")


@pytest.fixture
def lab(vendor_packages):
    """A fresh dracut lab container holding /root/good.tgz and /root/broken.tgz."""
    with Lab("dracut") as container:
        for key, path in vendor_packages.items():
            container.put(path, f"/root/{key}.tgz")
        yield container


def run_module(lab, check_mode=False, diff=False, **options):
    return lab.module("aacraid_build", check_mode=check_mode, diff=diff, **options)


def tree_hash(lab):
    """Names, types, modes, link targets and file contents of the watched trees."""
    return lab.tree_hash(*WATCHED)


def dkms_calls(lab):
    """The dkms subcommands run since the last look."""
    return [line.split()[1] for line in lab.calls("dkms")]


def full(lab, **extra):
    return dict(src="/root/good.tgz", kernels=["all"], artifacts_dir="/root/artifacts", force=True, **extra)


def test_lifecycle(lab):
    lab.log_calls("dkms")
    before = tree_hash(lab)
    preview = run_module(lab, check_mode=True, diff=True, **full(lab))
    assert preview["changed"] is True
    assert [k["kernel"] for k in preview["kernels"]] == lab.kernels
    assert all(k["build"] and k["install"] and k["before"] == "absent" for k in preview["kernels"])
    assert all(k["artifact"]["write"] for k in preview["kernels"])
    assert "installed" in preview["diff"]["after"]
    assert tree_hash(lab) == before, "check mode changed the host"

    first = run_module(lab, **full(lab))
    assert first["changed"] is True and first["source_installed"] is True and first["added"] is True
    artifacts = {}
    for k in first["kernels"]:
        release = k["kernel"]
        assert k["module"]["version"] == MODULE_VERSION
        assert k["module"]["vermagic"].split()[0] == release
        resolved = lab.sh(f"modinfo -k {release} -n aacraid").strip()
        assert resolved == k["module"]["resolved"] == f"/lib/modules/{release}/updates/dkms/aacraid.ko"
        assert lab.sh(f"modinfo -k {release} -F version aacraid").strip() == MODULE_VERSION
        artifacts[release] = k["artifact"]
        assert k["artifact"]["written"] is True
        assert lab.sh(f"sha256sum {k['artifact']['path']}").split()[0] == k["artifact"]["sha256"]
        listing = lab.sh(f"tar -tzf {k['artifact']['path']}").split()
        assert listing == ["manifest.json", "aacraid.ko"]
        manifest = json.loads(lab.sh(f"tar -xzOf {k['artifact']['path']} manifest.json"))
        assert manifest["kernel"] == release and manifest["files"][0]["version"] == MODULE_VERSION
    status = lab.sh("dkms status")
    for release in lab.kernels:
        assert f"aacraid/{VERSION}, {release}, x86_64: installed" in status

    first_calls = dkms_calls(lab)
    assert first_calls.count("build") == len(lab.kernels) and "add" in first_calls, first_calls
    settled = tree_hash(lab)
    second = run_module(lab, **full(lab))
    assert second["changed"] is False, second
    assert [(k["build"], k["install"]) for k in second["kernels"]] == [(False, False)] * len(lab.kernels)
    assert {k["kernel"]: k["artifact"]["sha256"] for k in second["kernels"]} == {
        r: a["sha256"] for r, a in artifacts.items()
    }
    second_calls = dkms_calls(lab)
    assert second_calls and set(second_calls) == {"status"}, f"the second run ran dkms {second_calls}"
    assert tree_hash(lab) == settled
    assert run_module(lab, check_mode=True, **full(lab))["changed"] is False

    gone = run_module(lab, name="aacraid", version=VERSION, kernels=[], state="absent")
    assert gone["changed"] is True
    assert VERSION not in lab.sh("dkms status")
    for release in lab.kernels:
        assert "/kernel/drivers/scsi/aacraid/" in lab.sh(f"modinfo -k {release} -n aacraid")
    assert run_module(lab, name="aacraid", version=VERSION, kernels=[], state="absent")["changed"] is False


def test_install_dkms_skips_silently_fails_then_force_installs(lab):
    """DKMS 3.0.10 skips a module it deems older than the kernel's own
    (1.2-1... < 1.2.1[...]) yet exits 0: the module notices and says so."""
    k = lab.kernels[0]
    refused = run_module(lab, src="/root/good.tgz", kernels=[k])
    assert refused["failed"] is True
    assert "set force: true" in refused["msg"] and lab.intree_version(k) in refused["msg"], refused["msg"]
    forced = run_module(lab, src="/root/good.tgz", kernels=[k], force=True)
    assert forced["changed"] is True
    # DKMS calls the skipped install installed, and flags the difference.
    done = forced["kernels"][0]
    assert done["before"] == "installed" and done["install"] is True and done["build"] is False, done
    assert "differs from the one it built" in done["repair"], done
    assert lab.sh(f"modinfo -k {k} -n aacraid").strip() == f"/lib/modules/{k}/updates/dkms/aacraid.ko"
    lab.sh(f"dkms remove -m aacraid -v {VERSION} --all")


def test_compile_error_carries_the_make_log_tail(lab):
    result = run_module(lab, src="/root/broken.tgz", kernels=[lab.kernels[0]], force=True)
    assert result["failed"] is True
    msg = result["msg"]
    assert f"failed for kernel {lab.kernels[0]}" in msg
    # The compiler's own line from the make.log tail, not DKMS's summary.
    assert "make.log" in msg and "aac_fixture_broken" in msg and "undeclared" in msg, msg
    assert "no make.log found" not in msg
    lab.sh(f"dkms remove -m aacraid -v {BROKEN} --all || true; rm -rf /usr/src/aacraid-{BROKEN}")


@pytest.mark.parametrize(
    "setup, options, message",
    [
        ("true", {"src": "/root/missing.tgz"}, "cannot read the source /root/missing.tgz"),
        ("echo hello > /root/notes.txt", {"src": "/root/notes.txt"}, "is not a vendor tarball"),
        ("printf '\\037\\213garbage' > /root/corrupt.tgz", {"src": "/root/corrupt.tgz"}, "corrupt gzip"),
        ("cd /tmp && echo hi > readme.txt && tar -czf /root/norpm.tgz readme.txt", {"src": "/root/norpm.tgz"},
         "holds no DKMS driver rpm"),
        ("cd /tmp && echo x > evil && tar -czPf /root/abs.tgz /tmp/evil", {"src": "/root/abs.tgz"},
         "absolute paths are not accepted"),
        ("mkdir -p /tmp/s/a && cd /tmp/s/a && echo x > ../../evil2 && tar -czPf /root/dotdot.tgz ../../evil2",
         {"src": "/root/dotdot.tgz"}, "`..` in a path is not accepted"),
        ("cd /tmp && ln -sf /etc/shadow link && tar -czf /root/link.tgz link", {"src": "/root/link.tgz"},
         "points outside the archive"),
        ("true", {"src": "/root/good.tgz", "name": "other"}, "disagrees with dkms.conf's PACKAGE_NAME"),
        ("true", {"src": "/root/good.tgz", "kernels": ["5.10.0-9-amd64"]}, "kernel 5.10.0-9-amd64 is not installed"),
    ],
)
def test_bad_input_changes_nothing(lab, setup, options, message):
    lab.sh(setup)
    before = tree_hash(lab)
    result = run_module(lab, **{"kernels": ["all"], **options})
    assert result["failed"] is True
    assert message in result["msg"], result["msg"]
    assert tree_hash(lab) == before


def test_headers_missing_names_the_package(lab):
    kver = lab.kernels[1]
    lab.sh(f"mv /lib/modules/{kver}/build /lib/modules/{kver}/build.away")
    try:
        result = run_module(lab, src="/root/good.tgz", kernels=[kver])
        assert result["msg"] == (
            f"kernel {kver} has no headers (/lib/modules/{kver}/build is missing): install linux-headers-{kver}"
        )
    finally:
        lab.sh(f"mv /lib/modules/{kver}/build.away /lib/modules/{kver}/build")


def test_dkms_3_has_no_mkrpm(lab):
    result = run_module(lab, src="/root/good.tgz", kernels=[lab.kernels[0]], state="built", mkrpm=True)
    assert result["failed"] is True
    assert "no mkrpm" in result["msg"] and "artifacts_dir" in result["msg"]
    lab.sh(f"dkms remove -m aacraid -v {VERSION} --all")


def test_dkms_2x_paths(lab):
    """Comma-format status and a working mkrpm, through the 2.x wrapper."""
    lab.put(REPO / "tests/fixtures/fake-dkms-2x", "/usr/local/sbin/dkms")
    try:
        assert lab.sh("dkms --version").strip() == "dkms-2.2.0.3"
        first = run_module(lab, src="/root/good.tgz", kernels=[lab.kernels[0]], force=True, mkrpm=True)
        assert first["changed"] is True, first
        assert ", x86_64: installed" in lab.sh("dkms status") and "/" not in lab.sh("dkms status").split(",")[0]
        assert lab.sh(f"ls /var/lib/dkms/aacraid/{VERSION}/rpm/").strip().endswith(".rpm")
        second = run_module(lab, src="/root/good.tgz", kernels=[lab.kernels[0]], force=True)
        assert second["changed"] is False, second
        assert second["kernels"][0]["before"] == "installed"
    finally:
        lab.sh("rm -f /usr/local/sbin/dkms")
        lab.sh(f"dkms remove -m aacraid -v {VERSION} --all || true")


def test_rpm_based_host_installs_the_rpm_with_rpm(lab):
    lab.pretend_rpm_based()
    lab.sh(f"dkms remove -m aacraid -v {VERSION} --all || true; rm -rf /usr/src/aacraid-{VERSION}")
    try:
        result = run_module(lab, src="/root/good.tgz", kernels=[lab.kernels[0]], state="built")
        assert result["changed"] is True and result["source_installed"] is True, result
        assert lab.sh("rpm -q aacraid").strip() == f"aacraid-{VERSION}-dkms.noarch"
        assert f"/usr/src/aacraid-{VERSION}/dkms.conf" in lab.sh("rpm -ql aacraid")
        assert lab.sh(f"dkms status -m aacraid -v {VERSION}").strip().endswith(": built")
        # A tree rpm left incomplete: moved aside, installed again by rpm, rebuilt.
        lab.sh(f"truncate -s 10 /usr/src/aacraid-{VERSION}/aacraid.c")
        again = run_module(lab, src="/root/good.tgz", kernels=[lab.kernels[0]], state="built")
        assert again["source_tree"]["action"] == "replaced" and again["discarded"] is True, again
        assert again["kernels"][0]["build"] is True
        assert lab.sh("rpm -V aacraid && echo verified").strip() == "verified"
        assert run_module(lab, src="/root/good.tgz", kernels=[lab.kernels[0]], state="built")["changed"] is False
    finally:
        lab.sh(f"dkms remove -m aacraid -v {VERSION} --all || true; /usr/bin/rpm -e aacraid || true")
        lab.sh("rm -f /usr/local/sbin/rpm")


@pytest.mark.parametrize("version", list(ANSIBLE))
def test_through_ansible(version, vendor_packages, tmp_path):
    with Lab("initramfs-tools") as container:
        container.put(vendor_packages["good"], "/root/good.tgz")
        inv = inventory(tmp_path, container)
        out, _ = run_ansible(version, "ansible-playbook", "-i", inv, "--diff", playbook("build"))
        assert out["stats"]["lab"]["changed"] == 1
        assert len(task_results(out)["lab"]["kernels"]) == 2
        out, _ = run_ansible(version, "ansible-playbook", "-i", inv, playbook("build"))
        assert out["stats"]["lab"]["changed"] == 0


def source_dir(version=VERSION):
    return f"/usr/src/aacraid-{version}"


def test_a_broken_tree_is_replaced_and_rebuilt_and_a_respin_too(lab, tmp_path):
    """A file of /usr/src/<n>-<v> truncated and another deleted (what a copy
    killed halfway left under older releases): the next run replaces the
    tree whole, rebuilds, and says so; check mode predicts exactly that.
    Then a vendor respin (same version, other aacraid.c) does the same."""
    k = lab.kernels[0]
    options = dict(src="/root/good.tgz", kernels=[k], force=True)
    assert run_module(lab, **options)["source_tree"]["action"] == "installed"
    pristine = lab.tree_hash(source_dir())
    assert lab.sh(f"head -c 64 {source_dir()}/.aacraid_build.sha256 | wc -c").strip() == "64"

    lab.sh(f"truncate -s 100 {source_dir()}/aacraid.c && rm {source_dir()}/Makefile")
    lab.log_calls("dkms")
    before = tree_hash(lab)
    preview = run_module(lab, check_mode=True, **options)
    assert tree_hash(lab) == before, "check mode changed the host"
    assert preview["changed"] is True and preview["discarded"] is True
    assert preview["source_tree"] == {
        "path": source_dir(), "action": "replaced",
        "differences": ["Makefile: missing", "aacraid.c: content differs"],
    }
    assert preview["msg"].startswith(
        f"source: replaced, the package's sources differ from {source_dir()} "
        "(Makefile: missing; aacraid.c: content differs)"), preview["msg"]
    assert [(s["before"], s["build"], s["install"]) for s in preview["kernels"]] == [("installed", True, True)]
    assert dkms_calls(lab) == ["status"]

    fixed = run_module(lab, **options)
    assert {key: fixed[key] for key in ("changed", "msg", "source_tree", "discarded", "source_installed")} == {
        key: preview[key] for key in ("changed", "msg", "source_tree", "discarded", "source_installed")}
    assert [(s["before"], s["after"], s["build"], s["install"]) for s in fixed["kernels"]] == [
        ("installed", "installed", True, True)]
    assert dkms_calls(lab) == ["status", "remove", "add", "build", "install"]
    assert lab.tree_hash(source_dir()) == pristine
    assert fixed["kernels"][0]["module"]["resolved"] == f"/lib/modules/{k}/updates/dkms/aacraid.ko"
    settled = run_module(lab, **options)
    assert settled["changed"] is False and settled["source_tree"]["action"] == "current", settled
    assert dkms_calls(lab) == ["status"]

    respun = make_vendor_package(tmp_path / "respin", VERSION, module_version=f"{MODULE_VERSION}-respin")
    lab.put(respun, "/root/respin.tgz")
    respin = run_module(lab, **{**options, "src": "/root/respin.tgz"})
    assert respin["changed"] is True and respin["discarded"] is True
    assert respin["source_tree"]["action"] == "replaced"
    assert respin["source_tree"]["differences"] == ["aacraid.c: content differs"]
    assert respin["msg"].startswith(f"source: replaced, the package's sources differ from {source_dir()}")
    assert respin["kernels"][0]["build"] is True
    assert respin["kernels"][0]["module"]["version"] == f"{MODULE_VERSION}-respin"
    assert lab.sh(f"modinfo -k {k} -F version aacraid").strip() == f"{MODULE_VERSION}-respin"
    assert run_module(lab, **{**options, "src": "/root/respin.tgz"})["changed"] is False


def test_an_install_the_kernel_does_not_resolve_is_repaired(lab):
    """dkms says installed, but the file it installed was removed (as a run
    killed during `dkms install` can leave it); a staging folder of a killed
    run lies in /usr/src. Check mode predicts the repair and the removal;
    the run does both; the next run changes nothing."""
    k = lab.kernels[0]
    options = dict(src="/root/good.tgz", kernels=[k], force=True)
    run_module(lab, **options)
    installed = f"/lib/modules/{k}/updates/dkms/aacraid.ko"
    built = lab.sh(f"sha256sum {installed}").split()[0]
    staging = "/usr/src/.aacraid_build-99999-0"
    lab.sh(f"rm {installed}; mkdir -m 700 {staging}; echo half > {staging}/dkms.conf")
    assert f"aacraid/{VERSION}, {k}, x86_64: installed" in lab.sh("dkms status")
    lab.log_calls("dkms")
    before = tree_hash(lab)
    preview = run_module(lab, check_mode=True, **options)
    assert tree_hash(lab) == before, "check mode changed the host"
    assert preview["changed"] is True and preview["staging_removed"] == [staging]
    kernel = preview["kernels"][0]
    assert (kernel["before"], kernel["build"], kernel["install"]) == ("installed", False, True)
    assert kernel["repair"] == (f"dkms says aacraid {VERSION} is installed for kernel {k} "
                                f"but reports that the installed module differs from the one it built"), kernel
    assert f"staging folders left by killed runs are removed: {staging}" in preview["msg"]
    assert dkms_calls(lab) == ["status"]

    repaired = run_module(lab, **options)
    assert repaired["changed"] is True and repaired["staging_removed"] == [staging]
    assert repaired["kernels"][0]["repair"] == kernel["repair"] and repaired["msg"] == preview["msg"]
    assert dkms_calls(lab) == ["status", "uninstall", "install"]
    assert lab.sh(f"sha256sum {installed}").split()[0] == built
    assert repaired["kernels"][0]["module"]["resolved"] == installed
    assert lab.sh(f"test -e {staging} || echo gone").strip() == "gone"
    assert run_module(lab, **options)["changed"] is False

    # Killed after the copy, before depmod: the file is in place, so dkms
    # sees nothing wrong, but the kernel's index still names its own module.
    lab.sh(f"mv {installed} /root/held.ko && depmod {k} && mv /root/held.ko {installed}")
    intree = f"/lib/modules/{k}/kernel/drivers/scsi/aacraid/aacraid.ko"
    assert lab.sh(f"modinfo -k {k} -n aacraid").strip() == intree
    assert lab.sh(f"dkms status -m aacraid -v {VERSION}").strip().endswith(": installed")
    again = run_module(lab, **options)
    assert again["kernels"][0]["repair"] == (f"dkms says aacraid {VERSION} is installed for kernel {k} but the "
                                             f"kernel resolves aacraid to {intree}, not the module dkms built")
    assert again["kernels"][0]["module"]["resolved"] == installed
    assert run_module(lab, **options)["changed"] is False


def test_a_held_kernel_folder_lock_makes_the_run_wait(lab):
    """The kernel folder is locked the way kmod_update and initramfs_regen
    lock it: the run waits (after reading dkms status) and neither builds
    nor writes under /lib/modules until it is released."""
    k = lab.kernels[0]
    lab.log_calls("dkms")
    before = lab.tree_hash("/lib/modules", "/var/lib/dkms")
    with ThreadPoolExecutor(1) as pool:
        with lab.lock_held(f"/lib/modules/{k}"):
            run = pool.submit(run_module, lab, src="/root/good.tgz", kernels=[k], force=True)
            lab.sh("for i in $(seq 600); do grep -q status /root/dkms-calls.log 2>/dev/null && exit 0; "
                   "sleep 0.1; done; exit 1")
            time.sleep(3)
            assert not run.done(), "the run did not wait for the lock"
            assert lab.sh("cat /root/dkms-calls.log").split() == ["dkms", "status", "-m", "aacraid", "-v", VERSION]
            assert lab.tree_hash("/lib/modules", "/var/lib/dkms") == before, "the run wrote while the lock was held"
        assert run.result(timeout=300)["changed"] is True
    assert dkms_calls(lab) == ["status", "add", "build", "install"]


def stamps_hash(lab):
    """A digest of the watched trees without reading file contents: every
    entry's name, type, mode, owner, size, mtime and ctime, so that any
    write, even of the same bytes, changes it (hashing the contents of
    /lib/modules takes half a minute on a loaded machine)."""
    return lab.tree_hash(*WATCHED, contents=False, times=True)


def real_dkms_status(lab):
    """`dkms status` of the fixture version, run past the logging wrapper
    (`lab.log_calls`) so that the test's own look is not counted."""
    return lab.sh(f"/usr/sbin/dkms status -m aacraid -v {VERSION}").strip()


def test_src_as_the_driver_rpm_alone_or_a_source_folder(lab, vendor_packages, tmp_path):
    """The two other kinds of `src` the sidecar documents: the driver's
    <name>-<version>-dkms.noarch.rpm alone (taken out of the vendor
    tarball), and a folder with dkms.conf (that rpm's payload unpacked by
    the real rpm2cpio and cpio; then /usr/src/<name>-<version> itself).
    Each puts the package's files in /usr/src/<name>-<version> and builds;
    the next run changes nothing and runs only `dkms status`."""
    k_rpm, k_folder = lab.kernels
    package = driver_rpm(vendor_packages["good"], tmp_path)
    rpm = f"/root/{package.name}"
    lab.put(package, rpm)
    unpacked = f"/root/unpacked{source_dir()}"
    lab.sh(f"mkdir /root/unpacked && cd /root/unpacked && rpm2cpio {rpm} | cpio -idm --quiet")
    payload = lab.sh(f"cd {unpacked} && sha256sum *")
    assert len(payload.splitlines()) == 3, payload
    lab.log_calls("dkms")

    def first_build(options, source):
        """The first run from `options["src"]` (reported as `source`): the
        package's files land in /usr/src, DKMS adds and builds for the one
        kernel named; returns the digest of the trees after it."""
        [kernel] = options["kernels"]
        built = run_module(lab, **options)
        assert built["changed"] is True and built["source"] == source, built
        assert built["source_installed"] is True and built["added"] is True
        assert built["source_tree"] == {"path": source_dir(), "action": "installed", "differences": []}
        assert [(k["kernel"], k["build"], k["after"]) for k in built["kernels"]] == [(kernel, True, "built")]
        assert dkms_calls(lab) == ["status", "add", "build"]
        assert real_dkms_status(lab) == f"aacraid/{VERSION}, {kernel}, x86_64: built"
        assert lab.sh(f"cd {source_dir()} && sha256sum *") == payload
        return stamps_hash(lab)

    from_rpm = dict(src=rpm, kernels=[k_rpm], state="built")
    settled = first_build(from_rpm, package.name)
    again = run_module(lab, **from_rpm)
    assert again["changed"] is False and again["source_tree"]["action"] == "current", again
    assert dkms_calls(lab) == ["status"]
    assert stamps_hash(lab) == settled

    # The same package from the folder, on a host where DKMS has never seen it.
    lab.sh(f"/usr/sbin/dkms remove -m aacraid -v {VERSION} --all && rm -rf {source_dir()}")
    from_folder = dict(src=unpacked, kernels=[k_folder], state="built")
    settled = first_build(from_folder, unpacked)
    for src in (unpacked, source_dir()):
        again = run_module(lab, **{**from_folder, "src": src})
        assert again["changed"] is False and again["source_tree"]["action"] == "current", (src, again)
        assert dkms_calls(lab) == ["status"], src
    assert stamps_hash(lab) == settled


def test_absent_for_one_kernel_leaves_the_other_installed(lab):
    """`state: absent` with `kernels: [one]` removes the version for that
    kernel only (`dkms remove -k`, never `--all`): its DKMS entry and build
    go, modinfo resolves the kernel's own driver again, while the other
    kernel keeps its installed build. Check mode predicts it and changes
    nothing; a second run changes nothing."""
    gone, kept = lab.kernels
    assert run_module(lab, src="/root/good.tgz", kernels=["all"], force=True)["changed"] is True
    dkms_module = {k: f"/lib/modules/{k}/updates/dkms/aacraid.ko" for k in lab.kernels}
    intree = f"/lib/modules/{gone}/kernel/drivers/scsi/aacraid/aacraid.ko"
    kept_sha = lab.sh(f"sha256sum {dkms_module[kept]}").split()[0]
    lab.log_calls("dkms")
    absent = dict(name="aacraid", version=VERSION, kernels=[gone], state="absent")

    before = stamps_hash(lab)
    preview = run_module(lab, check_mode=True, diff=True, **absent)
    assert stamps_hash(lab) == before, "check mode changed the host"
    assert preview["changed"] is True
    assert [(k["kernel"], k["before"], k["after"], k["remove"]) for k in preview["kernels"]] == [
        (gone, "installed", "added", True)]
    assert dkms_calls(lab) == ["status"]

    removed = run_module(lab, **absent)
    assert removed["changed"] is True
    assert [(k["kernel"], k["before"], k["after"], k["remove"]) for k in removed["kernels"]] == [
        (gone, "installed", "added", True)]
    assert lab.calls("dkms") == [f"dkms status -m aacraid -v {VERSION}",
                                 f"dkms remove -m aacraid -v {VERSION} -k {gone}"]
    assert real_dkms_status(lab) == f"aacraid/{VERSION}, {kept}, x86_64: installed"
    assert lab.sh(f"ls /var/lib/dkms/aacraid/{VERSION}").split() == [kept, "source"]
    assert lab.sh(f"modinfo -k {gone} -n aacraid").strip() == intree
    assert lab.sh(f"modinfo -k {gone} -F version aacraid").strip() == lab.intree_version(gone)
    assert lab.sh(f"test -e {dkms_module[gone]} || echo gone").strip() == "gone"
    assert lab.sh(f"modinfo -k {kept} -n aacraid").strip() == dkms_module[kept]
    assert lab.sh(f"modinfo -k {kept} -F version aacraid").strip() == MODULE_VERSION
    assert lab.sh(f"sha256sum {dkms_module[kept]}").split()[0] == kept_sha

    settled = stamps_hash(lab)
    again = run_module(lab, **absent)
    assert again["changed"] is False, again
    assert [(k["before"], k["remove"]) for k in again["kernels"]] == [("added", False)]
    assert dkms_calls(lab) == ["status"]
    assert stamps_hash(lab) == settled


def test_artifacts_are_rewritten_only_when_their_content_changes(lab):
    """`artifacts_dir`: "an artifact is rewritten only when its content
    changes". A second run leaves every artifact as it was (inode, mtime
    and sha256, read with stat in the container), and so does a run that
    builds one kernel's module again (the same bytes). Then one kernel's
    artifact no longer holds what its build gives (bytes appended, as a
    copy cut or edited would): check mode names that one only, and the run
    rewrites that one only, back to the same bytes; the other is untouched."""
    assert len(lab.kernels) == 2
    options = dict(src="/root/good.tgz", kernels=["all"], state="built", artifacts_dir="/root/artifacts")
    first = run_module(lab, **options)
    assert first["changed"] is True
    paths = [k["artifact"]["path"] for k in first["kernels"]]
    assert paths == [f"/root/artifacts/aacraid-{VERSION}-{k}.tgz" for k in lab.kernels]
    assert [k["artifact"]["written"] for k in first["kernels"]] == [True, True]
    stamps = file_stamps(lab, *paths)
    assert [stamps[p][1] for p in paths] == [k["artifact"]["sha256"] for k in first["kernels"]]

    again = run_module(lab, **options)
    assert again["changed"] is False, again
    assert [k["artifact"]["written"] for k in again["kernels"]] == [False, False]
    assert file_stamps(lab, *paths) == stamps

    # One kernel's module built again (kbuild gives the same bytes): its artifact is not written.
    lab.sh(f"/usr/sbin/dkms remove -m aacraid -v {VERSION} -k {lab.kernels[0]}")
    rebuilt = run_module(lab, **options)
    assert rebuilt["changed"] is True
    assert [(k["build"], k["artifact"]["written"]) for k in rebuilt["kernels"]] == [(True, False), (False, False)]
    assert file_stamps(lab, *paths) == stamps

    edited, other = paths
    lab.sh(f"echo trailing >> {edited}")
    preview = run_module(lab, check_mode=True, **options)
    assert preview["changed"] is True
    assert [(k["artifact"]["write"], k["artifact"]["reason"]) for k in preview["kernels"]] == [
        (True, "content differs"), (False, "current")]
    assert [k["artifact"]["sha256"] for k in preview["kernels"]] == [stamps[p][1] for p in paths]
    tampered = file_stamps(lab, edited)[edited]
    assert tampered[1] != stamps[edited][1]

    fixed = run_module(lab, **options)
    assert fixed["changed"] is True
    assert [(k["build"], k["artifact"]["written"]) for k in fixed["kernels"]] == [(False, True), (False, False)]
    now = file_stamps(lab, *paths)
    assert now[other] == stamps[other], "the other kernel's artifact was written again"
    assert now[edited][1] == stamps[edited][1], "the rewritten artifact holds other bytes than the build gives"
    assert now[edited][0] != tampered[0]
    assert run_module(lab, **options)["changed"] is False


def test_the_build_host_role_installs_missing_headers_on_a_host_with_empty_package_lists(vendor_packages, tmp_path):
    """roles/aacraid_build_host installs the headers of a kernel that has
    none. It ran `apt-get install` alone, which on a host with empty or old
    package lists (fresh images, containers; the lab's are empty) fails with
    "Couldn't find any package". Here one kernel's headers are removed; the
    role refreshes the lists, installs them from the Debian mirror and
    builds for that kernel; the second run has nothing to do."""
    with Lab("initramfs-tools") as lab:
        k = lab.kernels[1]
        lab.sh(f"dpkg -r linux-headers-{k} && rm -rf /var/lib/apt/lists/* && test ! -e /lib/modules/{k}/build")
        inv = inventory(tmp_path, lab)
        fetch_dir = tmp_path / "artifacts"
        role_vars = {"package": vendor_packages["good"], "kernels": [k], "fetch_dir": str(fetch_dir)}
        out, _ = run_ansible(NEWEST, "ansible-playbook", "-i", inv, playbook("build_host_role"), extra_vars=role_vars)
        [headers] = [t["hosts"]["lab"] for t in out["plays"][0]["tasks"]
                     if t["task"]["name"] == "aacraid_build_host : Install missing kernel headers"]
        assert headers["changed"] is True, headers
        assert lab.sh(f"dpkg-query -W -f='${{Status}}' linux-headers-{k}") == "install ok installed"
        assert (fetch_dir / f"aacraid-{VERSION}-{k}.tgz").is_file(), sorted(fetch_dir.iterdir())
        again, _ = run_ansible(NEWEST, "ansible-playbook", "-i", inv, playbook("build_host_role"), extra_vars=role_vars)
        assert again["stats"]["lab"]["changed"] == 0, again["stats"]


def test_artifacts_signed_with_sign_key_carry_the_signer_and_stay_put(lab, tmp_path):
    """Issue 16, item 3: sign_key/sign_cert sign each artifact's module with
    the kernel's own sign-file. The module modinfo reads in the artifact is
    signed by the certificate's issuer with its serial number (as openssl
    prints them), the manifest records both, kmod_update's expected_signer
    accepts it; a second run and its check mode leave the artifact as it is
    (stat and sha256); another digest rewrites it; a key that other users
    can read is refused before anything is written."""
    k = lab.kernels[0]
    key, cert = tmp_path / "key.pem", tmp_path / "cert.pem"
    throwaway_key(key, "/O=aacraid lab/CN=aacraid build key", cert)
    serial = subprocess.run(["openssl", "x509", "-in", cert, "-noout", "-serial"], check=True, capture_output=True,
                            text=True).stdout.strip().removeprefix("serial=")
    serial = ":".join(serial[i:i + 2] for i in range(0, len(serial), 2))
    lab.sh("mkdir -m 700 /root/sign")
    lab.put(key, "/root/sign/key.pem")
    lab.put(cert, "/root/sign/cert.pem")
    lab.sh("chown root:root /root/sign/key.pem /root/sign/cert.pem && chmod 600 /root/sign/key.pem")
    options = dict(src="/root/good.tgz", kernels=[k], state="built", artifacts_dir="/root/artifacts",
                   sign_key="/root/sign/key.pem", sign_cert="/root/sign/cert.pem")
    path = f"/root/artifacts/aacraid-{VERSION}-{k}.tgz"

    first = run_module(lab, **options)
    assert first["changed"] is True and first["kernels"][0]["artifact"]["written"] is True, first
    lab.sh(f"mkdir /root/unpacked && tar -xzf {path} -C /root/unpacked")
    read = {f: lab.sh(f"modinfo -F {f} /root/unpacked/aacraid.ko").strip()
            for f in ("signer", "sig_key", "sig_hashalgo")}
    assert read == {"signer": "aacraid build key", "sig_key": serial, "sig_hashalgo": "sha256"}, read
    [listed] = json.loads(lab.sh("cat /root/unpacked/manifest.json"))["files"]
    assert (listed["signer"], listed["key_id"]) == ("aacraid build key", serial), listed
    built = lab.sh(f"ls /var/lib/dkms/aacraid/{VERSION}/{k}/x86_64/module/").split()
    assert lab.sh(f"modinfo -F signer /var/lib/dkms/aacraid/{VERSION}/{k}/x86_64/module/{built[0]}").strip() \
        != "aacraid build key", "the module DKMS keeps is left as DKMS made it"
    stamps = file_stamps(lab, path)

    preview = run_module(lab, check_mode=True, **options)
    assert preview["changed"] is False, preview
    planned = preview["kernels"][0]["artifact"]
    assert (planned["write"], planned["reason"]) == (False, "current")
    again = run_module(lab, **options)
    assert again["changed"] is False and again["kernels"][0]["artifact"]["written"] is False, again
    assert file_stamps(lab, path) == stamps

    installed = lab.module("kmod_update", src=path, expected_signer="aacraid build key")
    assert installed["changed"] is True, installed
    assert lab.sh(f"modinfo -k {k} -F signer aacraid").strip() == "aacraid build key"

    sha512 = dict(options, sign_hash="sha512")
    preview = run_module(lab, check_mode=True, **sha512)
    assert (preview["kernels"][0]["artifact"]["write"], preview["kernels"][0]["artifact"]["reason"]) == (
        True, "content differs")
    assert file_stamps(lab, path) == stamps
    rewritten = run_module(lab, **sha512)
    assert rewritten["kernels"][0]["artifact"]["written"] is True
    lab.sh(f"tar -xzf {path} -C /root/unpacked")
    assert lab.sh("modinfo -F sig_hashalgo /root/unpacked/aacraid.ko").strip() == "sha512"

    lab.sh("chmod 644 /root/sign/key.pem")
    before = tree_hash(lab)
    refused = run_module(lab, **options)
    assert refused["failed"] is True
    assert refused["msg"].startswith("sign_key /root/sign/key.pem must be a regular file that only root can read"), \
        refused["msg"]
    assert tree_hash(lab) == before
