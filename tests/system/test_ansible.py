"""raid_driver_facts through real ansible-core (2.16 and the newest), ad hoc
and in a playbook under --check --diff, against localhost and against a lab
container that has no Python at all."""

import subprocess

import pytest

from lablib import ANSIBLE, REPO, ansible_env, inventory, run_ansible, task_results

VERSIONS = sorted(ANSIBLE)


def test_lab_container_has_no_python(dracut_lab):
    found = dracut_lab.sh("ls /usr/bin /bin /usr/local/bin | grep -E '^python' || true")
    assert found.strip() == "", f"the lab image must have no Python: {found}"


@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.parametrize("target", ["localhost", "lab"])
def test_adhoc(version, target, dracut_lab, tmp_path):
    inv = inventory(tmp_path, dracut_lab)
    out, proc = run_ansible(version, "ansible", "-i", inv, "-m", "raid_driver_facts", target)
    result = task_results(out)[target]
    assert result["changed"] is False
    assert result.get("failed", False) is False, result
    facts = result["ansible_facts"]["raid_driver"]
    assert facts["name"] == "aacraid"
    if target == "lab":
        assert [k["release"] for k in facts["kernels"]] == dracut_lab.kernels
        assert all(k["resolved"]["tree"] == "kernel" for k in facts["kernels"])


@pytest.mark.parametrize("version", VERSIONS)
def test_adhoc_string_arguments(version, dracut_lab, tmp_path):
    """ad hoc -a k=v sends strings; lists come comma-separated."""
    inv = inventory(tmp_path, dracut_lab)
    out, _ = run_ansible(
        version, "ansible", "-i", inv, "-m", "raid_driver_facts",
        "-a", f"kernels={dracut_lab.kernels[1]} gather_subset=modules,loaded", "lab",
    )
    facts = task_results(out)["lab"]["ansible_facts"]["raid_driver"]
    assert [k["release"] for k in facts["kernels"]] == [dracut_lab.kernels[1]]
    assert facts["kernels"][0]["initramfs"] is None
    assert facts["dkms"] is None


@pytest.mark.parametrize("version", VERSIONS)
def test_bad_option_fails_the_task(version, dracut_lab, tmp_path):
    inv = inventory(tmp_path, dracut_lab)
    out, proc = run_ansible(
        version, "ansible", "-i", inv, "-m", "raid_driver_facts", "-a", "name=../x", "lab", check=False
    )
    assert proc.returncode != 0
    result = task_results(out)["lab"]
    assert result["failed"] is True
    assert 'invalid module name "../x"' in result["msg"]


@pytest.mark.parametrize("version", VERSIONS)
def test_playbook_check_diff(version, dracut_lab, tmp_path):
    inv = inventory(tmp_path, dracut_lab)
    out, _ = run_ansible(version, "ansible-playbook", "-i", inv, "--check", "--diff", "playbooks/facts.yml")
    stats = out["stats"]
    for host in ("localhost", "lab"):
        assert stats[host]["changed"] == 0 and stats[host]["failures"] == 0, stats
    line = task_results(out, 1)["lab"]["msg"]
    for k in dracut_lab.kernels:
        assert f"{k}: " in line, line
    assert "reboot required False" in line


@pytest.mark.parametrize("version", VERSIONS)
def test_root_entry_point_is_the_rollout(version):
    """`ansible-playbook aacraid.yml` from the repository root, as the README
    says, lists the same plays and tasks as playbooks/aacraid.yml."""
    def tasks(book):
        proc = subprocess.run([str(ANSIBLE[version] / "ansible-playbook"), "-i", "playbooks/inventory.example.ini",
                               "--list-tasks", book], cwd=REPO, env=ansible_env(version), capture_output=True,
                              text=True)
        assert proc.returncode == 0, proc.stderr
        return [line.strip() for line in proc.stdout.splitlines() if line.startswith(" ")]
    listed = tasks("aacraid.yml")
    assert len(listed) > 10 and listed == tasks("playbooks/aacraid.yml")
