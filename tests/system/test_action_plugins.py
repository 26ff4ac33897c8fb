"""The controller side of aacraid_build and kmod_update (plugins/action/):
the vendor package goes from the controller to a Python-free build host,
the artifacts come back to the controller (fetched only when their checksum
differs), and go out to a Python-free server, through ansible-core's
docker connection alone; and a build host whose result lies about its
artifacts gets nothing onto the controller."""

import hashlib
import json
import shutil
import stat

import pytest

from lablib import ANSIBLE, MODULE_VERSION, VENDOR_VERSION, Lab, inventory, playbook, run_ansible, task_results


@pytest.mark.parametrize("version", list(ANSIBLE))
def test_upload_build_fetch_and_install(version, vendor_packages, tmp_path):
    with Lab("dracut") as lab:
        inv = inventory(tmp_path, lab)
        fetch_dir = tmp_path / "artifacts"
        build = playbook("build_and_fetch")
        build_vars = {"package": vendor_packages["good"], "fetch_dir": str(fetch_dir)}

        out, _ = run_ansible(version, "ansible-playbook", "-i", inv, "--check", build, extra_vars=build_vars)
        result = task_results(out)["lab"]
        assert result["changed"] is True and [f["fetched"] for f in result["fetched"]] == [True, True]
        assert not fetch_dir.exists(), "check mode fetched nothing"

        out, _ = run_ansible(version, "ansible-playbook", "-i", inv, build, extra_vars=build_vars)
        result = task_results(out)["lab"]
        assert [f["fetched"] for f in result["fetched"]] == [True, True]
        for kernel in result["kernels"]:
            local = fetch_dir / kernel["artifact"]["path"].rsplit("/", 1)[1]
            assert hashlib.sha256(local.read_bytes()).hexdigest() == kernel["artifact"]["sha256"]
        assert lab.sh("ls -A /root/.ansible/tmp") == "", "the uploaded package was removed"

        out, _ = run_ansible(version, "ansible-playbook", "-i", inv, build, extra_vars=build_vars)
        assert out["stats"]["lab"]["changed"] == 0
        assert [f["fetched"] for f in task_results(out)["lab"]["fetched"]] == [False, False]

        install = playbook("install_from_controller")
        install_vars = {"fetch_dir": str(fetch_dir), "vendor_version": VENDOR_VERSION,
                        "expected_version": MODULE_VERSION, "kernels": lab.kernels}
        out, _ = run_ansible(version, "ansible-playbook", "-i", inv, install, extra_vars=install_vars)
        assert out["stats"]["lab"]["changed"] == 1
        for k in lab.kernels:
            assert lab.sh(f"modinfo -k {k} -n aacraid").strip() == f"/lib/modules/{k}/updates/aacraid.ko"
        out, _ = run_ansible(version, "ansible-playbook", "-i", inv, install, extra_vars=install_vars)
        assert out["stats"]["lab"]["changed"] == 0
        assert lab.sh("ls -A /root/.ansible/tmp") == ""


# A build host that lies: its aacraid_build answers with a script of its own
# (the result is the host's word, whatever binary was sent), and the files it
# names are crafted on the host. The plugin, ansible-core and the docker
# connection are real.
LIAR_VERSION = "1.0"
LIAR_PLAYBOOK = """---
- name: Build on a build host that lies
  hosts: lab
  gather_facts: false
  tasks:
    - name: Build the vendor driver and fetch the artifacts
      aacraid_build:
        kernels: "{{ kernels }}"
        state: built
        artifacts_dir: /root/artifacts
        fetch_dir: "{{ fetch_dir }}"
      timeout: 60
"""
# A stat that calls everything a small regular file, so that only the fetch itself can catch the lie.
LYING_STAT = "printf '#!/bin/sh\\necho 1000 regular file\\n' > /usr/local/bin/stat && chmod 755 /usr/local/bin/stat"


@pytest.fixture(scope="module")
def liar():
    with Lab("dracut") as lab:
        yield lab


def remote_artifact(lab, kernel):
    return f"/root/artifacts/aacraid-{LIAR_VERSION}-{kernel}.tgz"


def local_state(root):
    """Every entry under `root`: its type and permission bits, and the
    SHA-256 of regular files (a device or FIFO is never read)."""
    state = {}
    for path in sorted(root.rglob("*")):
        st = path.lstat()
        digest = hashlib.sha256(path.read_bytes()).hexdigest() if stat.S_ISREG(st.st_mode) else None
        state[str(path.relative_to(root))] = (stat.S_IFMT(st.st_mode), stat.S_IMODE(st.st_mode), digest)
    return state


def run_liar(version, lab, tmp_path, result, kernels, *options, check=True):
    """Runs LIAR_PLAYBOOK (with ansible-playbook's `options`) and an
    aacraid_build that prints `result`; returns the task's result and the
    completed process."""
    library = tmp_path / "library"
    library.mkdir(exist_ok=True)
    module = library / "aacraid_build"
    module.write_text(f"#!/bin/sh\ncat <<'EOF'\n{json.dumps(result)}\nEOF\n")
    module.chmod(0o755)
    book = tmp_path / "liar.yml"
    book.write_text(LIAR_PLAYBOOK)
    out, proc = run_ansible(version, "ansible-playbook", "-i", inventory(tmp_path, lab), *options, book, check=check,
                            extra_vars={"kernels": kernels, "fetch_dir": str(tmp_path / "controller/artifacts")})
    return task_results(out)["lab"], proc


def liar_result(entries, name="aacraid", version=LIAR_VERSION):
    return {"changed": True, "name": name, "version": version,
            "kernels": [{"kernel": k, "artifact": {"path": path, "sha256": sha, "written": True}}
                        for k, path, sha in entries]}


def sha_of_text(text):
    return hashlib.sha256(text.encode()).hexdigest()


def lie(case, lab):
    """Crafts the host's files for one lie; returns the module result, the
    kernels the task asks for, and words the failure must hold."""
    k0, k1 = lab.kernels
    a0, a1 = remote_artifact(lab, k0), remote_artifact(lab, k1)
    good0, good1 = sha_of_text(f"new {k0}"), sha_of_text(f"new {k1}")
    both = [k0, k1]
    if case == "path_ending_in_dotdot":
        return liar_result([(k0, "/root/artifacts/..", good0)]), both, f"only '{a0}' is fetched"
    if case == "path_ending_in_slash":
        return liar_result([(k0, "/root/artifacts/", good0)]), both, f"only '{a0}' is fetched"
    if case == "name_of_another_kernels_artifact":
        return liar_result([(k0, a1, good1)]), both, f"only '{a0}' is fetched"
    if case == "file_outside_the_pattern":
        sha = lab.sh("sha256sum /root/.profile").split()[0]
        return liar_result([(k0, "/root/.profile", sha)]), both, f"only '{a0}' is fetched"
    if case == "kernel_not_asked_for":
        return liar_result([(k1, a1, good1)]), [k0], f"artifact for kernel {k1}, which the task did not ask for"
    if case == "version_with_a_path":
        version = "1.0/../../x"
        path = f"/root/artifacts/aacraid-{version}-{k0}.tgz"
        return liar_result([(k0, path, good0)], version=version), both, "invalid package version '1.0/../../x'"
    if case == "dev_zero_link":
        lab.sh(f"ln -sf /dev/zero {a0}")
        return liar_result([(k0, a0, good0)]), both, "is not a regular file ('9 symbolic link')"
    if case == "dev_zero_node":
        lab.sh(f"rm {a0} && mknod {a0} c 1 5")
        return liar_result([(k0, a0, good0)]), both, "is not a regular file ('0 character special file')"
    if case == "dev_zero_link_behind_a_lying_stat":
        lab.sh(f"ln -sf /dev/zero {a0} && {LYING_STAT}")
        return liar_result([(k0, a0, good0)]), both, f"{a0} did not arrive as a regular file"
    if case == "oversized":
        lab.sh(f"truncate -s 80M {a0}")
        sha = lab.sh(f"sha256sum {a0}").split()[0]
        return liar_result([(k0, a0, sha)]), both, "holds 83886080 bytes, more than the 67108864"
    if case == "oversized_behind_a_lying_stat":
        lab.sh(f"truncate -s 80M {a0}")
        sha = lab.sh(f"sha256sum {a0}").split()[0]
        lab.sh(LYING_STAT)
        return liar_result([(k0, a0, sha)]), both, f"cannot fetch {a0} (an artifact may hold at most 67108864 bytes)"
    if case == "checksum_mismatch":
        return liar_result([(k0, a0, good0), (k1, a1, sha_of_text("something else"))]), both, \
            f"fetched {a1} has sha256 {good1}, the module reported {sha_of_text('something else')}"
    raise ValueError(case)


LIES = ["path_ending_in_dotdot", "path_ending_in_slash", "name_of_another_kernels_artifact",
        "file_outside_the_pattern", "kernel_not_asked_for", "version_with_a_path", "dev_zero_link",
        "dev_zero_node", "dev_zero_link_behind_a_lying_stat", "oversized", "oversized_behind_a_lying_stat",
        "checksum_mismatch"]


def prepare_liar(lab, tmp_path):
    """The host's honest artifacts (`new <kernel>`) and, on the controller,
    an artifact fetched earlier for the second kernel."""
    lab.sh("rm -rf /root/artifacts /usr/local/bin/stat && mkdir /root/artifacts")
    for k in lab.kernels:
        lab.sh(f"printf 'new {k}' > {remote_artifact(lab, k)}")
    fetch_dir = tmp_path / "controller/artifacts"
    fetch_dir.mkdir(parents=True)
    (fetch_dir / f"aacraid-{LIAR_VERSION}-{lab.kernels[1]}.tgz").write_text(f"old {lab.kernels[1]}")
    return fetch_dir


@pytest.mark.parametrize("version", list(ANSIBLE))
@pytest.mark.parametrize("case", LIES)
def test_build_host_that_lies_about_its_artifacts(version, case, liar, tmp_path):
    """Attack: the build host's module result names artifacts that are not
    what the task asked for: a path ending in `/..` or `/` (copied a folder
    or crashed), another kernel's artifact name or any other file name
    (overwrote that file in fetch_dir), a kernel or a version the task did
    not ask for, /dev/zero as a link or a device (hung the controller
    hashing it, or filled its disk over ssh), a file past the size cap
    (fetched whole), even behind a `stat` that lies, or a checksum the file
    does not match (the earlier artifact of that name was already
    overwritten by the fetch). Each fails the task with a message naming
    the problem, and the controller's folder, fetch_dir and its parent,
    stays exactly as it was: no file appears, none changes, no temporary
    file is left."""
    fetch_dir = prepare_liar(liar, tmp_path)
    result, kernels, words = lie(case, liar)
    before = local_state(tmp_path / "controller")
    assert len(before) == 2

    task, proc = run_liar(version, liar, tmp_path, result, kernels, check=False)

    assert proc.returncode != 0
    assert task["failed"] is True
    assert words in task["msg"], task["msg"]
    assert local_state(tmp_path / "controller") == before
    assert (fetch_dir / f"aacraid-{LIAR_VERSION}-{liar.kernels[1]}.tgz").read_text() == f"old {liar.kernels[1]}"
    assert liar.sh("ls -A /root/.ansible/tmp") == ""


@pytest.mark.parametrize("version", list(ANSIBLE))
def test_honest_artifacts_are_fetched_and_replace_older_ones(version, liar, tmp_path):
    """The same harness with a result that tells the truth: both artifacts
    arrive under their names, the older copy is replaced, no temporary file
    is left, and a second run fetches nothing."""
    fetch_dir = prepare_liar(liar, tmp_path)
    entries = [(k, remote_artifact(liar, k), sha_of_text(f"new {k}")) for k in liar.kernels]

    task, _ = run_liar(version, liar, tmp_path, liar_result(entries), liar.kernels)
    assert [f["fetched"] for f in task["fetched"]] == [True, True]
    assert sorted(p.name for p in fetch_dir.iterdir()) == sorted(
        f"aacraid-{LIAR_VERSION}-{k}.tgz" for k in liar.kernels)
    for k in liar.kernels:
        assert (fetch_dir / f"aacraid-{LIAR_VERSION}-{k}.tgz").read_text() == f"new {k}"
    assert sorted(p.name for p in (tmp_path / "controller").iterdir()) == ["artifacts"]

    task, _ = run_liar(version, liar, tmp_path, liar_result(entries), liar.kernels)
    assert [f["fetched"] for f in task["fetched"]] == [False, False]
    assert task["changed"] is True, "the module's own changed stays"


@pytest.mark.parametrize("version", list(ANSIBLE))
def test_failed_fetch_into_a_new_folder_leaves_no_folder(version, liar, tmp_path):
    """Attack: a checksum mismatch when fetch_dir does not exist yet: the
    folders the fetch created (fetch_dir and its missing parents) are
    removed again, so the controller is as it was."""
    prepare_liar(liar, tmp_path)
    shutil.rmtree(tmp_path / "controller")
    k0 = liar.kernels[0]
    result = liar_result([(k0, remote_artifact(liar, k0), sha_of_text("something else"))])

    task, proc = run_liar(version, liar, tmp_path, result, liar.kernels, check=False)

    assert proc.returncode != 0
    assert task["msg"].startswith(f"fetched {remote_artifact(liar, k0)} has sha256 {sha_of_text('new ' + k0)}")
    assert not (tmp_path / "controller").exists()


@pytest.mark.parametrize("version", list(ANSIBLE))
def test_check_mode_refuses_a_lying_result_too(version, liar, tmp_path):
    """Attack: the lie in a --check run, where nothing is fetched: the
    result still fails instead of reporting a fetch to fetch_dir/.. for a
    later real run."""
    prepare_liar(liar, tmp_path)
    k0 = liar.kernels[0]
    before = local_state(tmp_path / "controller")
    result = liar_result([(k0, "/root/artifacts/..", None)])

    task, proc = run_liar(version, liar, tmp_path, result, liar.kernels, "--check", check=False)

    assert proc.returncode != 0
    assert f"only '{remote_artifact(liar, k0)}' is fetched" in task["msg"], task["msg"]
    assert local_state(tmp_path / "controller") == before


@pytest.mark.parametrize("check_mode", [True, False])
def test_fetch_dir_without_artifacts_dir_is_refused_before_the_build(vendor_packages, tmp_path, check_mode):
    """fetch_dir without artifacts_dir (the sidecar says it needs it): the
    module used to build first, changing the build host, and then had no
    artifact to fetch. The plugin now refuses the task before the module
    runs: the host's trees and the controller are as they were."""
    trees = ("/usr/src", "/var/lib/dkms", "/lib/modules")
    with Lab("dracut") as lab:
        lab.put(vendor_packages["good"], "/root/good.tgz")
        before = lab.tree_hash(*trees)
        fetch_dir = tmp_path / "fetched"
        args = json.dumps({"src": "/root/good.tgz", "kernels": ["all"], "fetch_dir": str(fetch_dir)})
        out, proc = run_ansible(next(iter(ANSIBLE)), "ansible", "lab", "-i", inventory(tmp_path, lab),
                                "-m", "aacraid_build", "-a", args, *(["--check"] if check_mode else []), check=False)
        result = task_results(out)["lab"]
        assert proc.returncode != 0
        assert result["failed"] is True and result["changed"] is False
        assert result["msg"].startswith("fetch_dir needs artifacts_dir"), result["msg"]
        assert lab.tree_hash(*trees) == before
        assert not fetch_dir.exists()
