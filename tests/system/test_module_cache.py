"""The module cache of plugins/action/binary_module.py, through real
ansible-core and its docker connection on Python-free lab containers: a
task's binary is uploaded once per host and content, kept root-only under
its SHA-256, and run in one remote command (pipelining on) after that; a
changed or damaged binary is uploaded again; older binaries are pruned; a
cache that cannot be used (noexec; a link, a file, a folder that is not
root's alone, or one below a folder others may write; turned off) makes the
module go the normal way, with a warning once.

Round trips and uploads are counted from ansible's -vvv lines (`EXEC` is one
`docker exec`, `PUT` one upload), not timed."""

import hashlib
import json
import os
import re
import shutil
import subprocess

import pytest

from lablib import ANSIBLE, NEWEST, REPO, Lab, ansible_env, inventory

CACHE = "/var/cache/aacraid-modules"
BINARY = REPO / "library/raid_driver_facts"
WARNING = "the module cache is not used"


def sha256(path):
    return hashlib.sha256(path.read_bytes()).hexdigest()


def facts(lab, tmp_path, version=NEWEST, pipelining=True, library=None, tasks=1, extra_vars=None, environment=None):
    """Runs `tasks` raid_driver_facts tasks (gather_subset=loaded) at -vvv;
    returns the results, the EXEC and PUT lines, and the reasons of the
    cache warnings (ansible-core 2.19 puts a task's warnings in its result,
    2.16 prints them on stderr)."""
    book = tmp_path / "facts.yml"
    env_keyword = f"      environment: {json.dumps(environment)}\n" if environment else ""
    book.write_text("- hosts: lab\n  gather_facts: false\n  tasks:\n" + "".join(
        f"    - name: Facts {i}\n      raid_driver_facts:\n        gather_subset: [loaded]\n{env_keyword}"
        for i in range(tasks)))
    env = dict(ansible_env(version), ANSIBLE_PIPELINING="1" if pipelining else "0",
               ANSIBLE_STDOUT_CALLBACK="json", ANSIBLE_LOAD_CALLBACK_PLUGINS="1")
    if library is not None:
        env["ANSIBLE_LIBRARY"] = str(library)
    extra = ["-e", json.dumps(extra_vars)] if extra_vars else []
    proc = subprocess.run([str(ANSIBLE[version] / "ansible-playbook"), "-vvv", "-i", str(inventory(tmp_path, lab)),
                           *extra, str(book)], cwd=REPO, env=env, capture_output=True, text=True)
    start = proc.stdout.find('{\n    "custom_stats"')
    assert proc.returncode == 0 and start >= 0, f"{proc.stdout[-4000:]}\n{proc.stderr[-2000:]}"
    verbose, out = proc.stdout[:start], json.loads(proc.stdout[start:])
    results = [task["hosts"]["lab"] for task in out["plays"][0]["tasks"]]
    assert len(results) == tasks
    execs = [line for line in verbose.splitlines() if line.startswith("<") and "> EXEC " in line]
    puts = [line for line in verbose.splitlines() if line.startswith("<") and "> PUT " in line]
    said = proc.stderr + json.dumps([r.get("warnings", []) for r in results])
    return results, execs, puts, re.findall(rf"lab: {WARNING} \((.*?)\); the module is sent", said)


def binary_puts(puts, library=REPO / "library"):
    return [line for line in puts if f"PUT {library}/raid_driver_facts TO " in line]


def cached(lab):
    """name → (mode, owner, sha256) of the files in the cache folder."""
    out = lab.sh(f"cd {CACHE} && for f in $(ls -A); do echo $f $(stat -c '%a %U' $f) $(sha256sum < $f); done")
    return {name: (mode, owner, digest) for name, mode, owner, digest, _ in (line.split() for line in out.splitlines())}


def variant_of(tmp_path, n):
    """A copy of the raid_driver_facts binary with `n` trailing bytes added
    (an ELF file runs the same with bytes after its sections), in its own
    library folder."""
    library = tmp_path / f"library-{n}"
    library.mkdir()
    binary = library / "raid_driver_facts"
    shutil.copy(BINARY, binary)
    with open(binary, "ab") as f:
        f.write(b"\0" * n)
    shutil.copy(REPO / "library/raid_driver_facts.yml", library)
    return library, binary


@pytest.mark.parametrize("version", list(ANSIBLE))
@pytest.mark.parametrize("pipelining", [True, False], ids=["pipelining", "no-pipelining"])
def test_binary_is_uploaded_once_and_then_run_from_the_cache(version, pipelining, tmp_path):
    with Lab("dracut") as lab:
        first, execs, puts, _ = facts(lab, tmp_path, version, pipelining)
        assert len(binary_puts(puts)) == 1, puts
        digest = sha256(BINARY)
        assert cached(lab) == {f"raid_driver_facts-{digest}": ("700", "root", digest)}
        assert lab.sh(f"stat -c '%a %U %F' {CACHE}").strip() == "700 root directory"
        assert lab.sh("ls -A /root/.ansible/tmp") == "", "the upload's temporary folder was removed"

        second, execs, puts, _ = facts(lab, tmp_path, version, pipelining)
        assert binary_puts(puts) == [], "a cached binary is not sent again"
        if pipelining:
            assert len(execs) == 1 and puts == [], (execs, puts)
        else:
            # home, temporary folder, the module, removal; the arguments are the one upload.
            assert len(execs) == 4 and len(puts) == 1 and puts[0].rstrip().endswith("/args"), (execs, puts)
        assert second[0]["ansible_facts"] == first[0]["ansible_facts"]
        assert second[0]["ansible_facts"]["raid_driver"]["kernels"], "the facts list the lab's kernels"


def test_changed_or_damaged_binary_is_sent_again_and_old_ones_are_pruned(tmp_path):
    with Lab("dracut") as lab:
        facts(lab, tmp_path)
        original = f"raid_driver_facts-{sha256(BINARY)}"

        library, binary = variant_of(tmp_path, 1)
        results, _, puts, _ = facts(lab, tmp_path, library=library)
        assert len(binary_puts(puts, library)) == 1, "a changed binary is a new cache entry"
        assert set(cached(lab)) == {original, f"raid_driver_facts-{sha256(binary)}"}
        assert results[0]["ansible_facts"]["raid_driver"]["kernels"]

        lab.sh(f"printf x >> {CACHE}/{original}")
        results, _, puts, _ = facts(lab, tmp_path)
        assert len(binary_puts(puts)) == 1, "a cached copy whose checksum differs is replaced"
        assert cached(lab)[original][2] == sha256(BINARY)
        assert results[0]["ansible_facts"]["raid_driver"]["kernels"]

        newest = []
        for n in (2, 3, 4):
            library, binary = variant_of(tmp_path, n)
            facts(lab, tmp_path, library=library)
            newest.append(f"raid_driver_facts-{sha256(binary)}")
        assert set(cached(lab)) == set(newest), "only the 3 newest binaries of a module are kept"


def test_noexec_cache_falls_back_with_one_warning(tmp_path):
    with Lab("dracut", "--tmpfs", "/var/cache:rw,noexec") as lab:
        results, _, puts, warnings = facts(lab, tmp_path, tasks=2)
        assert len(binary_puts(puts)) == 2, "without the cache each task sends its binary"
        assert len(results) == 2 and all(r["ansible_facts"]["raid_driver"]["kernels"] for r in results)
        assert set(warnings) == {f"{CACHE} is on a filesystem mounted noexec"}, warnings

        # What a user sees (the default output): the warning once for both tasks.
        book = tmp_path / "facts.yml"
        proc = subprocess.run([str(ANSIBLE[NEWEST] / "ansible-playbook"), "-i", str(inventory(tmp_path, lab)),
                               str(book)], cwd=REPO, env=ansible_env(NEWEST), capture_output=True, text=True)
        assert proc.returncode == 0 and proc.stdout.count("ok: [lab]") == 2, proc.stdout
        shown = (proc.stdout + proc.stderr).count(f"[WARNING]: lab: {WARNING}")
        assert shown == 1, proc.stdout + proc.stderr


UNSAFE = "must be a real folder of root's that no one else may write, and the cache folder itself mode 0700"


@pytest.mark.parametrize("case", ["link", "others_may_read", "a_file", "not_roots", "folder_above_others_may_write",
                                  "link_above"])
def test_cache_folder_others_could_change_is_not_used(case, tmp_path):
    """A user who could rename or write the cache folder, or a folder above
    it, could swap the binary between its check and its run as root: such a
    cache is never used, and nothing is written into or through it."""
    with Lab("dracut") as lab:
        setup, folder, unsafe = {
            "link": (f"mkdir -m 0700 /root/elsewhere && ln -s /root/elsewhere {CACHE}", CACHE, CACHE),
            "others_may_read": (f"mkdir -m 0755 {CACHE}", CACHE, CACHE),
            "a_file": (f"touch {CACHE}", CACHE, CACHE),
            "not_roots": (f"mkdir -m 0700 {CACHE} && chown nobody {CACHE}", CACHE, CACHE),
            "folder_above_others_may_write": ("mkdir -p -m 0700 /tmp/cache", "/tmp/cache", "/tmp"),
            "link_above": ("mkdir -m 0755 /root/real && mkdir -m 0700 /root/real/cache && ln -s /root/real /srv/link",
                           "/srv/link/cache", "/srv/link"),
        }[case]
        lab.sh(setup)
        watched = ("/var/cache", "/tmp", "/srv", "/root/elsewhere", "/root/real")
        before = lab.tree_hash(*watched)
        results, _, puts, warnings = facts(lab, tmp_path, extra_vars={"aacraid_module_cache": folder})
        assert results[0]["ansible_facts"]["raid_driver"]["kernels"]
        assert warnings == [f"{unsafe}: {UNSAFE}"]
        assert len(binary_puts(puts)) == 1, "the module went the normal way"
        assert lab.tree_hash(*watched) == before, "nothing was written through or into it"


def test_cache_turned_off_or_misconfigured(tmp_path):
    with Lab("dracut") as lab:
        results, execs, puts, warnings = facts(lab, tmp_path, extra_vars={"aacraid_module_cache": False})
        assert len(binary_puts(puts)) == 1 and warnings == []
        assert results[0]["ansible_facts"]["raid_driver"]["kernels"]
        assert lab.sh(f"ls -d {CACHE} 2>/dev/null || true") == ""

        elsewhere = "/root/module-cache"
        facts(lab, tmp_path, extra_vars={"aacraid_module_cache": elsewhere})
        assert lab.sh(f"ls {elsewhere}").split() == [f"raid_driver_facts-{sha256(BINARY)}"]

        env = dict(ansible_env(NEWEST), ANSIBLE_STDOUT_CALLBACK="json", ANSIBLE_LOAD_CALLBACK_PLUGINS="1")
        proc = subprocess.run([str(ANSIBLE[NEWEST] / "ansible"), "-i", str(inventory(tmp_path, lab)), "lab",
                               "-m", "raid_driver_facts", "-e", json.dumps({"aacraid_module_cache": "/tmp/../etc"})],
                              cwd=REPO, env=env, capture_output=True, text=True)
        assert proc.returncode != 0 and "aacraid_module_cache must be an absolute path" in proc.stdout, proc.stdout


@pytest.mark.parametrize("pipelining", [True, False], ids=["pipelining", "no-pipelining"])
def test_task_environment_is_exported_quoted(pipelining, tmp_path):
    """The task's `environment:` reaches the cached binary's command as
    ansible-core quotes it; a value cannot run a command of its own."""
    with Lab("dracut") as lab:
        facts(lab, tmp_path, pipelining=pipelining)
        value = "a b'; touch /tmp/injected; echo '"
        results, execs, _, _ = facts(lab, tmp_path, pipelining=pipelining, environment={"AACRAID_PROBE": value})
        assert results[0]["ansible_facts"]["raid_driver"]["kernels"]
        runs = [line for line in execs if "aacraid-modules" in line]
        assert len(runs) == 1 and "export AACRAID_PROBE=" in runs[0], execs
        assert lab.sh("ls /tmp/injected 2>/dev/null || true") == ""


def test_task_not_run_as_root_does_not_use_the_cache(tmp_path):
    with Lab("dracut") as lab:
        results, _, puts, warnings = facts(lab, tmp_path, extra_vars={
            "ansible_user": "nobody", "ansible_remote_tmp": "/tmp/.ansible-nobody"})
        assert results[0]["ansible_facts"]["raid_driver"]["kernels"]
        assert warnings == ["the cache is root-only and the task does not run as root"]
        assert len(binary_puts(puts)) == 1
        assert lab.sh(f"ls -d {CACHE} 2>/dev/null || true") == ""


def test_ad_hoc_module_goes_through_the_cache(tmp_path):
    with Lab("initramfs-tools") as lab:
        env = dict(ansible_env(NEWEST), ANSIBLE_PIPELINING="1")
        command = [str(ANSIBLE[NEWEST] / "ansible"), "-vvv", "-i", str(inventory(tmp_path, lab)), "lab",
                   "-m", "raid_driver_facts", "-a", "gather_subset=loaded"]
        for expected_execs in (None, 1):
            proc = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True)
            assert proc.returncode == 0 and "lab | SUCCESS" in proc.stdout, proc.stdout[-3000:]
            execs = [line for line in proc.stdout.splitlines() if line.startswith("<") and "> EXEC " in line]
            if expected_execs is not None:
                assert len(execs) == expected_execs, execs
        assert os.path.basename(lab.sh(f"ls {CACHE}").strip()) == f"raid_driver_facts-{sha256(BINARY)}"
