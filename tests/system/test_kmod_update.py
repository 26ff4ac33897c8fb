"""kmod_update with real depmod and modinfo in a lab container (no
Python), installing the artifacts aacraid_build made from the fixture
vendor package for both lab kernels; then through ansible-core.

"Unchanged" is proved two ways: every bad input is followed by a metadata
listing of the watched trees that includes each entry's ctime (any write,
rename, chmod or removal changes it), and the whole batch of bad inputs is
bracketed by a hash of every file's content."""

import io
import json
import tarfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from lablib import (ANSIBLE, MODULE_VERSION, NEWEST, VENDOR_VERSION, Lab, force_signatures, inventory, playbook,
                    run_ansible, task_results, wait_for_process)

WATCHED = ("/lib/modules", "/var/lib/kmod_update")


def fresh_server(variant, artifacts):
    """A fresh lab container of `variant` holding each kernel's artifact as
    /root/<kernel>.tgz, nothing installed."""
    with Lab(variant) as container:
        container.put_artifacts(artifacts)
        yield container


@pytest.fixture
def server(artifacts):
    """A fresh initramfs-tools server (see `fresh_server`)."""
    yield from fresh_server("initramfs-tools", artifacts)


@pytest.fixture
def upstream(server):
    """kernel → version of the lab kernel's own aacraid.ko."""
    return {k: server.intree_version(k) for k in server.kernels}


def listing(lab):
    """Metadata of the watched trees, mtimes and ctimes included."""
    return lab.tree_hash(*WATCHED, contents=False, times=True)


def content_hash(lab):
    """Names, types, modes, link targets and file contents of the watched trees."""
    return lab.tree_hash(*WATCHED)


def install(lab, kernel, **extra):
    return lab.module("kmod_update", src=f"/root/{kernel}.tgz", **extra)


def resolved(lab, kernel):
    return lab.sh(f"modinfo -k {kernel} -n aacraid").strip()


def test_install_idempotence_and_absent(server, upstream):
    lab = server
    lab.log_calls("depmod")
    pristine = content_hash(lab)
    intree = {k: resolved(lab, k) for k in lab.kernels}
    intree_sha = lab.sh(f"sha256sum {' '.join(intree.values())}")

    for k in lab.kernels:
        preview = install(lab, k, check_mode=True, diff=True)
        assert preview["changed"] is True
        [entry] = preview["kernels"]
        assert (entry["kernel"], entry["action"]) == (k, "install")
        assert entry["before"]["path"] == intree[k] and entry["before"]["version"] == upstream[k]
        assert entry["after"]["version"] == MODULE_VERSION
        assert f"/lib/modules/{k}/updates/aacraid.ko" in preview["diff"]["after"]
    assert content_hash(lab) == pristine, "check mode changed the host"

    for k in lab.kernels:
        result = install(lab, k, expected_version=MODULE_VERSION)
        assert result["changed"] is True, result
        [entry] = result["kernels"]
        target = f"/lib/modules/{k}/updates/aacraid.ko"
        assert entry["path"] == entry["resolved"] == target
        assert resolved(lab, k) == target
        assert lab.sh(f"modinfo -k {k} -F version aacraid").strip() == MODULE_VERSION
        assert lab.sh(f"stat -c '%a %U:%G' {target}").strip() == "644 root:root"
        assert lab.sh(f"sha256sum < {target}").split()[0] == entry["sha256"]
        manifest = json.loads(lab.sh(f"tar -xzOf /root/{k}.tgz manifest.json"))
        assert manifest["files"][0]["sha256"] == entry["sha256"]
    assert lab.sh(f"sha256sum {' '.join(intree.values())}") == intree_sha, "the in-tree modules are untouched"
    assert not lab.sh("find /lib/modules -name '.*tmp*'"), "no temporary file left"

    assert lab.calls("depmod") == [f"depmod -a {k}" for k in lab.kernels], "each install ran depmod once"
    settled = content_hash(lab)
    for k in lab.kernels:
        again = install(lab, k)
        assert again["changed"] is False and again["kernels"][0]["action"] == "none", again
        assert install(lab, k, check_mode=True)["changed"] is False
    assert lab.calls("depmod") == [], "an unchanged run runs no depmod"
    assert content_hash(lab) == settled

    gone = lab.module("kmod_update", state="absent", check_mode=True, diff=True)
    assert [e["action"] for e in gone["kernels"]] == ["remove", "remove"]
    assert [e["after"]["path"] for e in gone["kernels"]] == [intree[k] for k in lab.kernels]
    gone = lab.module("kmod_update", state="absent")
    assert gone["changed"] is True
    assert {k: resolved(lab, k) for k in lab.kernels} == intree
    assert content_hash(lab) == pristine, "absent put the trees back byte for byte"
    assert lab.module("kmod_update", state="absent")["changed"] is False


def test_replace_with_backup_then_restore(server, upstream):
    lab = server
    k = lab.kernels[0]
    # Someone installed a driver by hand, as the old notes did.
    lab.sh(f"mkdir -p /lib/modules/{k}/updates && cp /lib/modules/{k}/kernel/drivers/scsi/aacraid/aacraid.ko "
           f"/lib/modules/{k}/updates/aacraid.ko && chmod 600 /lib/modules/{k}/updates/aacraid.ko && depmod -a {k}")
    by_hand = content_hash(lab)
    result = install(lab, k, backup=True)
    [entry] = result["kernels"]
    assert entry["action"] == "replace" and entry["before"]["path"] == f"/lib/modules/{k}/updates/aacraid.ko"
    backup = entry["backup_file"]
    assert backup.startswith(f"/lib/modules/{k}/updates/aacraid.ko.") and backup.endswith("~")
    assert lab.sh(f"cmp {backup} /lib/modules/{k}/kernel/drivers/scsi/aacraid/aacraid.ko && stat -c %a {backup}").strip() == "600"
    assert lab.sh(f"modinfo -k {k} -F version aacraid").strip() == MODULE_VERSION
    lab.sh(f"rm {backup}")
    restored = lab.module("kmod_update", state="absent", kernels=[k])
    assert restored["kernels"][0]["action"] == "restore"
    assert restored["kernels"][0]["after"]["version"] == upstream[k]
    assert content_hash(lab) == by_hand, "absent put the hand-installed file back, mode and all"
    lab.sh(f"rm -r /lib/modules/{k}/updates && depmod -a {k}")


@pytest.mark.parametrize(
    "config, why",
    [
        ("override aacraid * kernel/drivers/scsi/aacraid", "`override aacraid * kernel/drivers/scsi/aacraid` pins"),
        ("search built-in updates", "`search built-in updates`) ranks kernel/drivers/scsi/aacraid before updates"),
    ],
)
def test_another_file_wins_is_explained_and_undone(server, upstream, config, why):
    lab = server
    k = lab.kernels[0]
    lab.sh(f"mkdir -p /etc/depmod.d && echo '{config}' > /etc/depmod.d/zz-test.conf && depmod -a {k}")
    try:
        before = content_hash(lab)
        result = install(lab, k)
        assert result["failed"] is True
        msg = result["msg"]
        assert f"resolves aacraid to /lib/modules/{k}/kernel/drivers/scsi/aacraid/aacraid.ko" in msg, msg
        assert f"version {upstream[k]}" in msg and why in msg, msg
        assert "the host is as it was" in msg, msg
        assert content_hash(lab) == before
    finally:
        lab.sh(f"rm -r /etc/depmod.d && depmod -a {k}")


def tgz(members):
    """A .tar.gz from (name, kind, data-or-target) members."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz", format=tarfile.GNU_FORMAT) as tar:
        for name, kind, payload in members:
            info = tarfile.TarInfo(name)
            if kind == "file":
                info.size = len(payload)
                tar.addfile(info, io.BytesIO(payload))
            else:
                info.type = tarfile.SYMTYPE if kind == "symlink" else tarfile.LNKTYPE
                info.linkname = payload
                tar.addfile(info)
    return buf.getvalue()


def test_bad_inputs_change_nothing(server, tmp_path):
    lab = server
    new, old = lab.kernels
    good = tmp_path / "good.tgz"
    lab.get(f"/root/{new}.tgz", good)
    with tarfile.open(good) as tar:
        manifest = tar.extractfile("manifest.json").read()
        ko = tar.extractfile("aacraid.ko").read()
    tampered = json.loads(manifest)
    tampered["files"][0]["sha256"] = "0" * 64
    archives = {
        "corrupt.tgz": good.read_bytes()[:-200],
        "absolute.tgz": tgz([("manifest.json", "file", manifest), ("/tmp/aacraid.ko", "file", ko)]),
        "dotdot.tgz": tgz([("manifest.json", "file", manifest), ("../aacraid.ko", "file", ko)]),
        "symlink.tgz": tgz([("manifest.json", "file", manifest), ("aacraid.ko", "symlink", "/etc/shadow")]),
        "hardlink.tgz": tgz([("manifest.json", "file", manifest), ("x", "file", ko), ("aacraid.ko", "hardlink", "x")]),
        "tampered.tgz": tgz([("manifest.json", "file", json.dumps(tampered).encode()), ("aacraid.ko", "file", ko)]),
    }
    for name, data in archives.items():
        (tmp_path / name).write_bytes(data)
        lab.put(tmp_path / name, f"/root/{name}")
    lab.sh("echo 'not a module' > /root/text.ko; "
           f"cp /lib/modules/{new}/kernel/drivers/scsi/megaraid/megaraid_sas.ko /root/aacraid.ko; "
           f"cp /lib/modules/{old}/kernel/drivers/scsi/aacraid/aacraid.ko /root/old-aacraid.ko")
    cases = [
        ({"src": "/root/missing.tgz"}, "src /root/missing.tgz does not exist"),
        ({"src": "/root/corrupt.tgz"}, "corrupt gzip or tar data"),
        ({"src": "/root/absolute.tgz"}, "absolute paths are not accepted"),
        ({"src": "/root/dotdot.tgz"}, "`..` in a path is not accepted"),
        ({"src": "/root/symlink.tgz"}, "links are not accepted"),
        ({"src": "/root/hardlink.tgz"}, "links are not accepted"),
        ({"src": "/root/tampered.tgz"}, "checksum mismatch for aacraid.ko"),
        ({"src": "/root/text.ko", "kernels": [new]}, "/root/text.ko is not an ELF kernel module"),
        ({"src": "/root/aacraid.ko"}, 'is the module "megaraid_sas", not "aacraid"'),
        ({"src": "/root/old-aacraid.ko", "kernels": [new]}, f"was built for `{old} SMP"),
        ({"src": f"/root/{new}.tgz", "kernels": ["5.10.0-9-amd64"]}, "kernel 5.10.0-9-amd64 is not installed"),
        ({"src": f"/root/{new}.tgz", "expected_version": "9.9"}, 'but expected_version is "9.9"'),
        ({"src": f"/root/{new}.tgz", "dest": "../../../etc"}, "dest must be a relative folder"),
    ]
    whole = content_hash(lab)
    for options, message in cases:
        before = listing(lab)
        result = lab.module("kmod_update", **options)
        assert result["failed"] is True, (options, result)
        assert message in result["msg"], (options, result["msg"])
        assert listing(lab) == before, options
    assert content_hash(lab) == whole


def test_read_only_destination(artifacts, tmp_path):
    """The destination folder is a read-only mount."""
    k = sorted(artifacts)[0]
    with Lab("dracut", "-v", f"{tmp_path}:/lib/modules/{k}/updates:ro") as lab:
        lab.put(artifacts[k], "/root/a.tgz")
        before = content_hash(lab)
        result = lab.module("kmod_update", src="/root/a.tgz")
        assert result["failed"] is True
        assert result["msg"] == (
            f"cannot change kernel {k}: /lib/modules/{k}/updates is on the read-only file system "
            f"mounted at /usr/lib/modules/{k}/updates"
        ), result["msg"]
        assert content_hash(lab) == before


def test_concurrent_runs_leave_a_consistent_tree(server):
    lab = server
    k = lab.kernels[1]
    results = []

    def run():
        results.append(install(lab, k))

    threads = [threading.Thread(target=run) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(r["changed"] for r in results) == [False, True], results
    assert resolved(lab, k) == f"/lib/modules/{k}/updates/aacraid.ko"
    assert not lab.sh("find /lib/modules /var/lib/kmod_update -name '.*tmp*'")
    assert json.loads(lab.sh(f"cat /var/lib/kmod_update/{k}/aacraid.json"))["version"] == MODULE_VERSION
    assert lab.module("kmod_update", state="absent")["changed"] is True


def test_a_held_lock_makes_the_run_wait_and_write_nothing(server):
    """Another run (here `flock` from outside) holds the kernel tree's lock:
    kmod_update waits, writing nothing, and installs once it is released."""
    lab = server
    k = lab.kernels[0]
    target = f"/lib/modules/{k}/updates/aacraid.ko"
    before = content_hash(lab)
    with ThreadPoolExecutor(1) as pool:
        with lab.lock_held(f"/lib/modules/{k}"):
            run = pool.submit(install, lab, k)
            wait_for_process(lab, "kmod_update")
            time.sleep(3)
            assert not run.done(), "the run did not wait for the lock"
            assert content_hash(lab) == before, "the run wrote while another held the lock"
        assert run.result(timeout=120)["changed"] is True
    assert resolved(lab, k) == target


def test_a_run_killed_during_depmod_is_rolled_back_by_the_next(server):
    """Crash: kmod_update is killed (with its children) while depmod runs,
    after the module and its record are written. The journal it left makes
    the next run roll that back before installing again; check mode
    predicts exactly that; the run after reports no change; `absent` then
    restores the trees byte for byte."""
    lab = server
    k = lab.kernels[0]
    pristine = content_hash(lab)
    lab.sh("printf '#!/bin/sh\\ntouch /tmp/in-depmod\\nsleep 600\\nexec /usr/sbin/depmod \"$@\"\\n'"
           " > /usr/local/sbin/depmod && chmod 755 /usr/local/sbin/depmod")
    args = lab.args_file("kmod_update", src=f"/root/{k}.tgz")
    program = lab.install("kmod_update")
    lab.sh(f"setsid {program} {args} > /tmp/killed.json 2>&1 < /dev/null & echo $! > /tmp/killed.pid")
    lab.sh("for i in $(seq 600); do [ -e /tmp/in-depmod ] && exit 0; sleep 0.1; done; exit 1")
    lab.sh("kill -9 -$(cat /tmp/killed.pid)")
    lab.sh("rm /usr/local/sbin/depmod")
    journal = f"/var/lib/kmod_update.journal.aacraid@{k}"
    assert lab.sh(f"ls {journal}").split()[0] == "intent.json"
    assert lab.sh(f"test -e /var/lib/kmod_update/{k}/aacraid.json && echo recorded").strip() == "recorded"

    preview = install(lab, k, check_mode=True)
    assert preview["changed"] is True
    assert [(r["kernel"], r["rolled_back"]) for r in preview["recovered"]] == [(k, True)]
    assert preview["kernels"][0]["action"] == "install", preview
    repaired = install(lab, k)
    assert repaired["changed"] is True
    assert [r["kernel"] for r in repaired["recovered"]] == [k]
    assert repaired["kernels"][0]["action"] == preview["kernels"][0]["action"]
    assert lab.sh(f"ls -d {journal} 2>/dev/null || true") == ""
    assert resolved(lab, k) == f"/lib/modules/{k}/updates/aacraid.ko"
    again = install(lab, k)
    assert again["changed"] is False and again["recovered"] == [], again
    assert lab.module("kmod_update", state="absent")["changed"] is True
    assert content_hash(lab) == pristine


@pytest.mark.parametrize("version", list(ANSIBLE))
def test_through_ansible(version, server, tmp_path):
    lab = server
    inv = inventory(tmp_path, lab)
    install = playbook("install")
    extra = {"kernels": lab.kernels, "expected_version": MODULE_VERSION}
    out, _ = run_ansible(version, "ansible-playbook", "-i", inv, "--check", "--diff", install, extra_vars=extra)
    assert out["stats"]["lab"]["changed"] == 1
    assert all(r["kernels"][0]["action"] == "install" for r in task_results(out)["lab"]["results"])
    assert lab.sh("ls /lib/modules/*/updates 2>/dev/null || true") == ""
    out, _ = run_ansible(version, "ansible-playbook", "-i", inv, install, extra_vars=extra)
    assert out["stats"]["lab"]["changed"] == 1
    for k in lab.kernels:
        assert resolved(lab, k) == f"/lib/modules/{k}/updates/aacraid.ko"
    out, _ = run_ansible(version, "ansible-playbook", "-i", inv, install, extra_vars=extra)
    assert out["stats"]["lab"]["changed"] == 0
    out, _ = run_ansible(version, "ansible", "-i", inv, "lab", "-m", "kmod_update", "-a", "state=absent")
    assert out["stats"]["lab"]["changed"] == 1


# Documented behaviours below run in their own dracut container each.

COMPRESSORS = {
    "xz": "xz --check=crc32 --lzma2=dict=1MiB -c",
    "zst": "zstd -q -c",
    "gz": "gzip -n -c",
}


def test_a_kernel_enforcing_signatures_refuses_the_build_until_forced(artifacts):
    """Issue 16: the first lab kernel's real configuration with
    CONFIG_MODULE_SIG_FORCE=y. kmod_update refuses the DKMS build for it
    (unsigned, or signed by the build host's DKMS key, which the kernel does
    not hold) in check mode and for real, naming the kernel, the signer or
    its absence and the enforcement, and changes nothing; the other kernel
    takes it; with force it is installed with a warning, and then
    initramfs_regen refuses to put it into the enforcing kernel's image.
    The container unmasks /proc/keys (Docker masks it), as on a real host."""
    with Lab("initramfs-tools", "--security-opt", "systempaths=unconfined", prefix="kmod-sig") as lab:
        lab.put_artifacts(artifacts)
        enforcing, other = lab.kernels
        force_signatures(lab, enforcing)
        lab.sh(f"mkdir /root/unpacked && tar -xzf /root/{enforcing}.tgz -C /root/unpacked")
        [ko] = lab.sh("find /root/unpacked -name 'aacraid.ko*'").split()
        signer = lab.sh(f"modinfo -F signer {ko}").strip()
        carries = f"signed by {signer} (key " if signer else "unsigned, and"
        pristine, meta = content_hash(lab), listing(lab)

        for check_mode in (True, False):
            refused = install(lab, enforcing, check_mode=check_mode)
            assert refused["failed"] is True, refused
            msg = refused["msg"]
            assert msg.startswith(f"kernel {enforcing} would not load /root/{enforcing}.tgz"), msg
            assert f": {carries}" in msg, (carries, msg)
            assert "built with CONFIG_MODULE_SIG_FORCE" in msg and msg.endswith("to install it anyway"), msg
            assert listing(lab) == meta and content_hash(lab) == pristine, "a refused install changed the host"

        taken = install(lab, other)
        assert taken["changed"] is True and not taken.get("warnings"), taken
        forced = install(lab, enforcing, force=True)
        assert forced["changed"] is True, forced
        [warning] = forced["warnings"]
        assert warning.startswith(f"kernel {enforcing} would not load") and warning.endswith(
            "installed anyway because force is set"), warning
        assert resolved(lab, enforcing) == f"/lib/modules/{enforcing}/updates/aacraid.ko"

        image = f"/boot/initrd.img-{enforcing}"
        before = lab.sh(f"sha256sum {image}")
        regen = lab.module("initramfs_regen", kernels=[enforcing])
        assert regen["failed"] is True, regen
        assert regen["msg"].startswith(
            f"kernel {enforcing} would not load /lib/modules/{enforcing}/updates/aacraid.ko: {carries}"), regen
        assert lab.sh(f"sha256sum {image}") == before


SERVER_ROLE_PLAYBOOK = """---
- name: Install on a server
  hosts: server
  gather_facts: false
  roles:
    - role: aacraid_server
      vars:
        aacraid_server_package_version: "{{ package_version }}"
        aacraid_server_artifacts_dir: "{{ artifacts_dir }}"
"""


def test_the_server_role_stops_a_server_whose_kernel_would_refuse_the_build_before_any_change(artifacts, tmp_path):
    """Issue 16: the server's second kernel enforces signatures (its real
    configuration with CONFIG_MODULE_SIG_FORCE=y), the DKMS build is not
    signed by a key it trusts. roles/aacraid_server asks kmod_update about
    every kernel in check mode first, so the first kernel, which would take
    the build, is not changed either: the play fails on the check task,
    naming the kernel and why, and /lib/modules, /boot and the records are
    as they were."""
    with Lab("initramfs-tools", prefix="role-sig") as lab:
        first, enforcing = lab.kernels
        force_signatures(lab, enforcing)
        inv = tmp_path / "inventory.ini"
        inv.write_text(f"server ansible_connection=community.docker.docker ansible_host={lab.name}\n")
        book = tmp_path / "server.yml"
        book.write_text(SERVER_ROLE_PLAYBOOK)
        folder = {str(Path(a).parent) for a in artifacts.values()}
        assert len(folder) == 1
        before = lab.tree_hash("/lib/modules", "/boot", "/var/lib/kmod_update", times=True)

        out, proc = run_ansible(NEWEST, "ansible-playbook", "-i", inv, book, check=False,
                                extra_vars={"artifacts_dir": folder.pop(), "package_version": VENDOR_VERSION})

        assert proc.returncode != 0
        tasks = out["plays"][0]["tasks"]
        failed = [t for t in tasks if t["hosts"].get("server", {}).get("failed")]
        assert [t["task"]["name"] for t in failed] == [
            "aacraid_server : Check that every kernel takes its artifact before changing any"]
        assert tasks[-1] is failed[0], "no task ran after the refusal"
        items = {r["__aacraid_server_kernel"]: r for r in failed[0]["hosts"]["server"]["results"]}
        assert sorted(items) == sorted([first, enforcing])
        assert items[first].get("failed") is not True, items[first]
        msg = items[enforcing]["msg"]
        assert msg.startswith(f"kernel {enforcing} would not load "), msg
        assert "unsigned, and" in msg and "built with CONFIG_MODULE_SIG_FORCE" in msg, msg
        assert lab.tree_hash("/lib/modules", "/boot", "/var/lib/kmod_update", times=True) == before


@pytest.fixture
def dracut_server(artifacts):
    """A fresh dracut server (see `fresh_server`)."""
    yield from fresh_server("dracut", artifacts)


def host_state(lab):
    """A digest of what kmod_update may change, cheaper than `content_hash`:
    the metadata of every entry of the watched trees, the bytes of every
    file but those of the kernels' own kernel/ trees (390 MB each), and for
    those the mtimes and ctimes as well, which any write changes."""
    roots = " ".join(WATCHED)
    contents = lab.sh(f"mkdir -p {roots}; find {roots} -path '/lib/modules/*/kernel' -prune -o -type f -print0"
                      " | xargs -0 sha256sum | sort | sha256sum")
    own = [f"/lib/modules/{k}/kernel" for k in lab.kernels]
    return (lab.tree_hash(*WATCHED, contents=False), contents, lab.tree_hash(*own, contents=False, times=True))


def compressed_module(lab, kernel, suffix):
    """The artifact's aacraid.ko for `kernel`, compressed in the container
    by the real tool into /root/ko/aacraid.ko.<suffix>; returns its path."""
    path = f"/root/ko/aacraid.ko.{suffix}"
    lab.sh(f"mkdir -p /root/ko && tar -xzf /root/{kernel}.tgz -C /root/ko aacraid.ko"
           f" && {COMPRESSORS[suffix]} /root/ko/aacraid.ko > {path}")
    return path


def journal_left(lab):
    """Journal folders of kmod_update left in /var/lib."""
    return lab.sh("ls -d /var/lib/kmod_update.journal.* 2>/dev/null || true").split()


@pytest.mark.parametrize("suffix", ["xz", "zst"])
def test_compressed_module_file_is_installed_as_given(dracut_server, suffix):
    """src may be a .ko.xz or .ko.zst file (sidecar: src, name): with no
    kernels given it goes to the kernel of its vermagic, installed as
    aacraid.ko.<suffix> byte for byte; modinfo -n resolves it and kmod
    reads its version; a second run changes nothing and runs no depmod;
    a plain aacraid.ko beside it is refused before any write."""
    lab = dracut_server
    k = lab.kernels[0]
    src = compressed_module(lab, k, suffix)
    target = f"/lib/modules/{k}/updates/aacraid.ko.{suffix}"
    lab.log_calls("depmod")
    result = lab.module("kmod_update", src=src, expected_version=MODULE_VERSION)
    assert result["changed"] is True, result
    assert result["source"] == src
    [entry] = result["kernels"]
    assert (entry["kernel"], entry["action"], entry["path"], entry["resolved"]) == (k, "install", target, target)
    assert entry["version"] == MODULE_VERSION
    assert resolved(lab, k) == target
    assert lab.sh(f"modinfo -k {k} -F version aacraid").strip() == MODULE_VERSION
    assert lab.sh(f"cmp {src} {target} && sha256sum < {target}").split()[0] == entry["sha256"]
    assert lab.sh(f"stat -c '%a %U:%G' {target}").strip() == "644 root:root"
    assert lab.calls("depmod") == [f"depmod -a {k}"]

    settled = host_state(lab)
    again = lab.module("kmod_update", src=src)
    assert again["changed"] is False, again
    assert [e["action"] for e in again["kernels"]] == ["none"]
    assert lab.calls("depmod") == [], "an unchanged run runs no depmod"

    plain = lab.module("kmod_update", src="/root/ko/aacraid.ko")
    assert plain["failed"] is True
    assert f"{target} already exists beside /lib/modules/{k}/updates/aacraid.ko" in plain["msg"], plain["msg"]
    assert lab.calls("depmod") == []
    assert host_state(lab) == settled


def test_gzip_module_is_refused_where_kmod_cannot_read_it(dracut_server):
    """src may be a .ko.gz file (sidecar: src), but the lab's kmod (Debian
    12's) is built without zlib: depmod would skip the file and modinfo
    never resolve it. Everything is checked before the first write
    (sidecar: description): the task fails naming kmod's feature line and
    what it can read, in check mode too, runs no depmod and changes
    nothing."""
    lab = dracut_server
    k = lab.kernels[0]
    features = lab.sh("modinfo -V").splitlines()
    assert "-ZLIB" in features[1].split(), features
    src = compressed_module(lab, k, "gz")
    lab.log_calls("depmod")
    before = host_state(lab)
    for check_mode in (True, False):
        result = lab.module("kmod_update", src=src, check_mode=check_mode)
        assert result["failed"] is True, result
        assert result["msg"] == (
            f"{src} is compressed with gzip, which this host's kmod cannot read ({features[0]}: "
            f"{features[1]}): depmod would not index /lib/modules/{k}/updates/aacraid.ko.gz; "
            "install the module as .ko, .ko.xz or .ko.zst"), result["msg"]
    assert lab.calls("depmod") == []
    assert host_state(lab) == before


def test_kernels_running_is_the_release_the_container_reports(dracut_server):
    """`kernels: [running]` is the running kernel's release (`uname -r`,
    here the host's, which no lab kernel is), and must be installed
    (sidecar: kernels): without a module tree for it the task fails naming
    it and changes nothing; once a tree exists the vermagic check still
    refuses a module built for a kernel other than the tree's own modules;
    a matching one is installed into /lib/modules/<running>/updates and
    resolved there, the lab kernels left alone."""
    lab = dracut_server
    new, old = lab.kernels
    running = lab.sh("uname -r").strip()
    assert running not in lab.kernels, "the container runs a lab kernel: this test needs another"
    pristine = host_state(lab)
    result = lab.module("kmod_update", src=f"/root/{old}.tgz", kernels=["running"])
    assert result["failed"] is True
    assert result["msg"] == (f"kernel {running} is not installed "
                             f"(no module tree /lib/modules/{running} with modules.order)"), result["msg"]
    assert host_state(lab) == pristine

    # A module tree for the running release, made of kernel `old`'s own aacraid.
    tree = f"/lib/modules/{running}"
    lab.sh(f"mkdir -p {tree}/kernel/drivers/scsi/aacraid && "
           f"cp /lib/modules/{old}/kernel/drivers/scsi/aacraid/aacraid.ko {tree}/kernel/drivers/scsi/aacraid/ && "
           f"echo kernel/drivers/scsi/aacraid/aacraid.ko > {tree}/modules.order && "
           f"touch {tree}/modules.builtin && depmod -a {running}")
    intree = f"{tree}/kernel/drivers/scsi/aacraid/aacraid.ko"
    assert resolved(lab, running) == intree
    before = host_state(lab)
    refused = lab.module("kmod_update", src=f"/root/{new}.tgz", kernels=["running"])
    assert refused["failed"] is True
    assert f"was built for `{new} " in refused["msg"], refused["msg"]
    assert f"but kernel {running}'s own modules have vermagic `{old} " in refused["msg"], refused["msg"]
    assert host_state(lab) == before

    result = lab.module("kmod_update", src=f"/root/{old}.tgz", kernels=["running"])
    assert result["changed"] is True, result
    [entry] = result["kernels"]
    target = f"{tree}/updates/aacraid.ko"
    assert (entry["kernel"], entry["action"], entry["resolved"]) == (running, "install", target)
    assert resolved(lab, running) == target
    assert lab.sh(f"modinfo -k {running} -F version aacraid").strip() == MODULE_VERSION
    for k in lab.kernels:
        assert resolved(lab, k) == f"/lib/modules/{k}/kernel/drivers/scsi/aacraid/aacraid.ko"
        assert lab.sh(f"ls /lib/modules/{k}/updates 2>/dev/null || true") == ""


def test_custom_dest(dracut_server):
    """`dest` (sidecar) is the folder under /lib/modules/<kver> to install
    into: with RHEL's search order `extra` lands in extra/, and a folder
    below updates/ in that folder; depmod indexes each, modinfo -n
    resolves each, and `absent` removes them with the folders it made."""
    lab = dracut_server
    new, old = lab.kernels
    lab.sh("mkdir -p /etc/depmod.d && echo 'search updates extra built-in weak-updates' > /etc/depmod.d/dist.conf")
    pristine = host_state(lab)
    dests = {new: "extra", old: "updates/vendor"}
    for k, dest in dests.items():
        result = lab.module("kmod_update", src=f"/root/{k}.tgz", dest=dest)
        assert result["changed"] is True, result
        target = f"/lib/modules/{k}/{dest}/aacraid.ko"
        [entry] = result["kernels"]
        assert (entry["action"], entry["path"], entry["resolved"]) == ("install", target, target)
        assert lab.sh(f"grep -c '^{dest}/aacraid.ko:' /lib/modules/{k}/modules.dep").strip() == "1"
        assert resolved(lab, k) == target
        assert lab.sh(f"modinfo -k {k} -F version aacraid").strip() == MODULE_VERSION
    assert lab.sh(f"ls /lib/modules/{new}/updates 2>/dev/null || true") == "", "nothing went to the default dest"
    gone = lab.module("kmod_update", state="absent")
    assert sorted(e["path"] for e in gone["kernels"]) == sorted(f"/lib/modules/{k}/{d}/aacraid.ko"
                                                               for k, d in dests.items())
    assert host_state(lab) == pristine, "absent removed the files and the folders made for them"


def test_absent_refuses_a_changed_file_unless_forced(dracut_server):
    """`state: absent` on a file that changed since kmod_update installed it
    (sidecar: force): refused, naming the file and both checksums, nothing
    changed (check mode too); with `force: true` it is removed anyway, with
    a warning, and the trees are as before the install."""
    lab = dracut_server
    k = lab.kernels[0]
    target = f"/lib/modules/{k}/updates/aacraid.ko"
    pristine = host_state(lab)
    installed = lab.module("kmod_update", src=f"/root/{k}.tgz")["kernels"][0]["sha256"]
    # Someone copies another build over it by hand.
    lab.sh(f"cp /lib/modules/{k}/kernel/drivers/scsi/aacraid/aacraid.ko {target}")
    changed_sha = lab.sh(f"sha256sum < {target}").split()[0]
    assert changed_sha != installed
    tampered = host_state(lab)
    for check_mode in (True, False):
        refused = lab.module("kmod_update", state="absent", check_mode=check_mode)
        assert refused["failed"] is True
        assert refused["msg"] == (
            f"{target} changed since kmod_update installed it (sha256 {changed_sha} instead of {installed}); "
            "remove it by hand, or set force: true to remove it anyway"), refused["msg"]
        assert host_state(lab) == tampered

    forced = lab.module("kmod_update", state="absent", force=True)
    assert forced["changed"] is True, forced
    assert [(e["kernel"], e["action"], e["path"]) for e in forced["kernels"]] == [(k, "remove", target)]
    assert any("removed anyway because force is set" in w for w in forced.get("warnings", [])), forced
    assert resolved(lab, k) == f"/lib/modules/{k}/kernel/drivers/scsi/aacraid/aacraid.ko"
    assert host_state(lab) == pristine


def test_a_winning_weak_updates_link_is_explained_and_undone(dracut_server):
    """Another file wins after depmod (sidecar: description): a
    weak-updates link, as weak-modules makes, to another kernel's aacraid,
    with a search order preferring weak-updates. The task fails naming the
    link, its target and version and the depmod.d line, and the host is as
    it was: trees byte for byte, no journal left."""
    lab = dracut_server
    new, old = lab.kernels
    theirs = f"/lib/modules/{old}/kernel/drivers/scsi/aacraid/aacraid.ko"
    link = f"/lib/modules/{new}/weak-updates/aacraid.ko"
    lab.sh(f"mkdir -p /etc/depmod.d /lib/modules/{new}/weak-updates && ln -s {theirs} {link}"
           f" && echo 'search weak-updates updates built-in' > /etc/depmod.d/zz-weak.conf && depmod -a {new}")
    assert resolved(lab, new) == link
    before = host_state(lab)
    result = lab.module("kmod_update", src=f"/root/{new}.tgz")
    assert result["failed"] is True
    msg = result["msg"]
    assert (f"after depmod, kernel {new} resolves aacraid to {link} (a link to {theirs}), "
            f"version {lab.intree_version(old)}: ") in msg, msg
    assert ("the search order (/etc/depmod.d/zz-weak.conf: `search weak-updates updates built-in`) "
            "ranks weak-updates before updates") in msg, msg
    assert f"not to the installed /lib/modules/{new}/updates/aacraid.ko" in msg, msg
    assert "every change of this run was undone and depmod rerun: the host is as it was" in msg, msg
    assert host_state(lab) == before
    assert journal_left(lab) == []
    assert resolved(lab, new) == link


def test_a_failed_depmod_is_undone():
    """Any failure after the first write is undone (sidecar: description):
    here depmod itself fails for real, the file system of the kernel's
    module folder (a small tmpfs holding its index files, its kernel/ tree
    bound from the image) having too little room for depmod's new
    modules.alias once the module is written. The module is a copy of the
    kernel's own aacraid.ko (330 kB; the fixture's is too small to tip a
    file system counted in 4 kB pages). The task fails with depmod's
    command, rc and error, removes the module, reruns depmod (which now
    fits), and the host is as it was: index files byte for byte, no record,
    no journal."""
    with Lab("dracut", "--cap-add", "SYS_ADMIN") as lab:
        k = lab.kernels[0]
        tree = f"/lib/modules/{k}"
        intree = f"{tree}/kernel/drivers/scsi/aacraid/aacraid.ko"
        lab.sh(f"cp {intree} /root/aacraid.ko"
               f" && mkdir /mnt/tree && mount -t tmpfs -o size=16m,mode=755 tmpfs /mnt/tree"
               f" && for e in $(ls -A {tree}); do [ $e = kernel ] || cp -a {tree}/$e /mnt/tree/; done"
               f" && mkdir /mnt/tree/kernel && mount --bind {tree}/kernel /mnt/tree/kernel"
               f" && mount --rbind /mnt/tree {tree} && depmod -a {k}")
        # Leave room for depmod's largest index file plus half the module.
        largest = max(int(n) for n in lab.sh(f"stat -c %s {tree}/modules.*").split())
        module = int(lab.sh("stat -c %s /root/aacraid.ko"))
        assert module > 64 * 1024, "the module must outweigh the file system's page rounding"
        free = int(lab.sh(f"df -B1 --output=avail {tree} | tail -1"))
        lab.sh(f"head -c {free - largest - module // 2} /dev/zero > {tree}/reserved")
        before = host_state(lab)
        assert resolved(lab, k) == intree

        result = lab.module("kmod_update", src="/root/aacraid.ko", kernels=[k])
        assert result["failed"] is True
        assert (result["cmd"], result["rc"]) == (f"depmod -a {k}", 1), result
        assert "No space left on device" in result["stderr"], result["stderr"]
        msg = result["msg"]
        assert msg.startswith("every change of this run was undone and depmod rerun: the host is as it was: "
                              f"depmod failed for kernel {k}: `depmod -a {k}` failed with rc 1: "), msg
        assert "No space left on device" in msg, msg
        assert host_state(lab) == before
        assert journal_left(lab) == []
        assert resolved(lab, k) == intree
