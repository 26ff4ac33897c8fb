"""raw_reboot (plugins/action/raw_reboot.py) on a Python-free host, under
each ansible-core release: it learns the distribution and finds the
shutdown command with plain commands (the built-in would run `setup` and
`find`, which need Python), and keeps the built-in's results. A container
cannot reboot, so these runs stop at the reboot command; the real reboot
is tests/system/test_vm_reboot.py's."""

import json

import pytest

from lablib import ANSIBLE, Lab, inventory, run_ansible, task_results


@pytest.fixture(scope="module")
def host():
    with Lab("dracut", prefix="raw-reboot") as lab:
        yield lab


def reboot(version, host, tmp_path, **args):
    out, _ = run_ansible(version, "ansible", "-i", inventory(tmp_path, host), "lab", "-m", "raw_reboot",
                         "-a", json.dumps(args), check=False)
    return task_results(out)["lab"]


@pytest.mark.parametrize("version", list(ANSIBLE))
def test_a_failing_reboot_command_is_reported_as_the_builtin_does(version, host, tmp_path):
    before = host.sh("cat /proc/sys/kernel/random/boot_id")
    # `false` is looked up in the search paths like `shutdown` would be; it fails at once.
    result = reboot(version, host, tmp_path, reboot_command="false now", reboot_timeout=30)
    assert result["failed"] is True and result["rebooted"] is False, result
    assert result["msg"].startswith("Reboot command failed"), result["msg"]
    assert "python" not in result["msg"].lower()
    assert host.sh("cat /proc/sys/kernel/random/boot_id") == before


@pytest.mark.parametrize("version", list(ANSIBLE))
def test_a_command_missing_from_the_search_paths_is_named(version, host, tmp_path):
    result = reboot(version, host, tmp_path, reboot_command="no-such-shutdown -r now", search_paths=["/usr/sbin", "/sbin"])
    assert result["failed"] is True, result
    assert result["msg"].endswith("Unable to find command \"no-such-shutdown\" in search paths: ['/usr/sbin', '/sbin']"), result


@pytest.mark.parametrize("version", list(ANSIBLE))
def test_check_mode_predicts_a_reboot_and_runs_nothing(version, host, tmp_path):
    out, _ = run_ansible(version, "ansible", "-i", inventory(tmp_path, host), "lab", "-m", "raw_reboot",
                         "-a", json.dumps({"reboot_command": "false"}), "--check")
    result = task_results(out)["lab"]
    assert result["changed"] is True and result["rebooted"] is True, result


def test_a_command_name_with_a_slash_inside_is_refused(host, tmp_path):
    result = reboot(next(iter(ANSIBLE)), host, tmp_path, reboot_command="sbin/../shutdown -r now")
    assert result["failed"] is True
    assert "bare name or an absolute path" in result["msg"], result
