"""Issue 13's proof on a real machine: playbooks/aacraid.yml drives a QEMU
virtual machine (tests/vmlib.py: GRUB in its own disk, systemd, sshd, a lab
kernel, no Python) over Ansible's ssh connection as a RAID server; a lab
container, also reached over SSH, is the build host. The guest loads aacraid
at boot from its initramfs (QEMU has no Adaptec controller; the disk lists
the module in /etc/initramfs-tools/modules).

1. with aacraid_server_reboot_ok false the play installs, regenerates,
   reports the due reboot with its reason and exports
   aacraid_server_reboot_required, and the machine keeps its boot id;
2. with it true, raw_reboot (the Python-free ansible.builtin.reboot)
   reboots it for real; GRUB reads the regenerated initramfs from the
   guest's disk, and the new driver is the loaded one
   (/sys/module/aacraid/version, the kernel log's banner, the facts);
3. a third run changes nothing and does not reboot.

Run by `make vm-reboot` (in `make test`, beside the crash sample and Molecule), not by
`make system`: its VM keeps both cores busy under software emulation."""

import json
import time

from lablib import MODULE_VERSION, NEWEST, REPO, VENDOR_VERSION, Lab, LoginKey, run_ansible, task_results
from vmlib import VM

PLAYBOOK = REPO / "playbooks/aacraid.yml"


def facts(inventory):
    out, _ = run_ansible(NEWEST, "ansible", "-i", inventory, "server1", "-m", "raid_driver_facts",
                         "-a", json.dumps({"gather_subset": ["modules", "initramfs", "loaded"]}))
    result = task_results(out)["server1"]
    assert result.get("failed") is not True, result
    return result["ansible_facts"]["raid_driver"]


def rollout(inventory, vendor_package, fetch_dir, reboot_ok, check=True):
    """The playbook's JSON output and exit status; with `check`, a failed run fails the test."""
    out, proc = run_ansible(NEWEST, "ansible-playbook", "-i", inventory, PLAYBOOK, check=check, extra_vars={
        "aacraid_build_host_package": vendor_package,
        "aacraid_build_host_fetch_dir": str(fetch_dir),
        "aacraid_report_path": str(fetch_dir.parent / "report"),
        "aacraid_server_driver_version": MODULE_VERSION,
        "aacraid_server_reboot_ok": reboot_ok,
    })
    return out, proc.returncode


def write_inventory(path, key, builder, vm, *containers):
    """The VM as server1 and lab containers started with `key`, all over SSH."""
    path.write_text("\n".join([
        "[build_hosts]",
        f"builder ansible_host={key.trust(builder)}",
        "[raid_servers]",
        vm.inventory_line("server1"),
        *(f"{name} ansible_host={key.trust(lab)}" for name, lab in containers),
        "[all:vars]",
        *key.inventory_vars(),
    ]) + "\n")
    return path


def server_results(out, task_name):
    """server1's results of every task of that name (a role's tasks are
    named "<role> : <name>"), across the plays."""
    found = []
    for play in out["plays"]:
        for task in play["tasks"]:
            name = task["task"]["name"]
            if (name == task_name or name.endswith(f" : {task_name}")) and "server1" in task["hosts"]:
                found.append(task["hosts"]["server1"])
    return found


def test_the_rollout_reboots_a_real_machine_into_the_new_driver(vendor_packages, tmp_path):
    key = LoginKey(tmp_path)
    with VM(tmp_path / "vm") as vm, Lab("initramfs-tools", *key.docker_args(), prefix="vm-build") as builder:
        print(f"VM boot ({vm.accel}): {vm.boot_seconds} s to SSH")
        inventory = write_inventory(tmp_path / "inventory.ini", key, builder, vm)
        fetch_dir = tmp_path / "artifacts"

        intree = vm.ssh("cat /sys/module/aacraid/version").stdout.strip()
        assert intree and intree != MODULE_VERSION
        before = facts(inventory)
        assert before["running_kernel"] == vm.kernel
        assert before["loaded"]["version"] == intree
        assert before["reboot_required"] is False, before["reboot_reason"]
        first_boot = vm.boot_id()

        # 1. No reboot allowed: the due reboot is reported and exported.
        out, _ = rollout(inventory, vendor_packages["good"], fetch_dir, reboot_ok=False)
        assert out["stats"]["server1"]["changed"] > 0 and out["stats"]["server1"]["failures"] == 0
        [exported] = server_results(out, "Export whether a reboot is due")
        assert exported["ansible_facts"]["aacraid_server_reboot_required"] is True
        [said] = server_results(out, "Say that a reboot is due")
        assert MODULE_VERSION in said["msg"] and "aacraid_server_reboot_ok" in said["msg"], said
        [skipped] = server_results(out, "Reboot and verify the loaded driver")
        assert skipped.get("skipped") is True
        assert vm.boot_id() == first_boot
        due = facts(inventory)
        assert due["reboot_required"] is True and due["reboot_reason"], due
        assert due["loaded"]["version"] == intree

        # 2. Reboot allowed: a real reboot through GRUB and the regenerated image.
        started = time.monotonic()
        out, _ = rollout(inventory, vendor_packages["good"], fetch_dir, reboot_ok=True)
        print(f"rollout with the reboot: {time.monotonic() - started:.0f} s")
        assert out["stats"]["server1"]["failures"] == 0
        [reboot] = server_results(out, "Reboot")
        assert reboot["rebooted"] is True and reboot["changed"] is True, reboot
        print(f"reboot (raw_reboot elapsed): {reboot['elapsed']} s")
        second_boot = vm.boot_id()
        assert second_boot != first_boot
        assert vm.ssh("cat /sys/module/aacraid/version").stdout.strip() == MODULE_VERSION
        banner = vm.ssh("dmesg | grep 'Adaptec aacraid driver'").stdout
        assert f"Adaptec aacraid driver {MODULE_VERSION}" in banner, banner
        after = facts(inventory)
        assert after["reboot_required"] is False, after["reboot_reason"]
        assert after["loaded"]["version"] == MODULE_VERSION
        [running] = [k for k in after["kernels"] if k["running"]]
        assert running["resolved"]["version"] == MODULE_VERSION
        assert running["initramfs"]["matches_resolved"] is True, running["initramfs"]

        # 3. Nothing left to do: no change, no reboot.
        out, _ = rollout(inventory, vendor_packages["good"], fetch_dir, reboot_ok=True)
        assert out["stats"]["server1"]["changed"] == 0, out["stats"]
        assert out["stats"]["builder"]["changed"] == 0, out["stats"]
        [skipped] = server_results(out, "Reboot and verify the loaded driver")
        assert skipped.get("skipped") is True
        assert vm.boot_id() == second_boot
        assert VENDOR_VERSION in {p.name.split("-")[1] for p in fetch_dir.glob("aacraid-*.tgz")}


def test_a_server_that_boots_without_the_new_driver_stops_the_rollout(vendor_packages, tmp_path):
    """Two batches (the default with reboots allowed: the canary first): the
    VM's new image cannot load the driver (modprobe.d runs /bin/false for it,
    and the regenerated image carries that rule), so its check after the
    reboot fails and names the server, the loaded and the expected version;
    the second batch's server is never touched. Then a reboot that does not
    come back within reboot_timeout (the machine powers off) fails with the
    built-in's message."""
    key = LoginKey(tmp_path)
    with (VM(tmp_path / "vm") as vm, Lab("initramfs-tools", *key.docker_args(), prefix="vm-build") as builder,
          Lab("dracut", *key.docker_args(), prefix="vm-batch2") as server2):
        inventory = write_inventory(tmp_path / "inventory.ini", key, builder, vm, ("server2", server2))
        vm.ssh("echo 'install aacraid /bin/false' > /etc/modprobe.d/aacraid-lab-unloadable.conf")
        untouched = server2.tree_hash("/lib/modules", "/boot", "/var/lib")
        first_boot = vm.boot_id()

        out, rc = rollout(inventory, vendor_packages["good"], tmp_path / "artifacts", reboot_ok=True, check=False)
        assert rc != 0
        [reboot] = server_results(out, "Reboot")
        assert reboot["rebooted"] is True, reboot
        assert vm.boot_id() != first_boot
        [verdict] = server_results(out, "Assert that the new driver is the loaded one")
        assert verdict["failed"] is True
        assert verdict["msg"].startswith("server1 rebooted in "), verdict["msg"]
        assert f"loaded aacraid none, expected {MODULE_VERSION}" in verdict["msg"], verdict["msg"]
        last_play = out["plays"][-1]
        assert last_play["play"]["name"] == "Install, regenerate, reboot where allowed and verify"
        assert all("server2" not in task["hosts"] for task in last_play["tasks"]), "the second batch ran"
        assert out["stats"]["server2"]["changed"] == 0
        assert server2.tree_hash("/lib/modules", "/boot", "/var/lib") == untouched
        # The fleet report, written before the stop: the canary failed and why, server2 not reached.
        report = {row["host"]: row for row in json.loads((tmp_path / "report.json").read_text())}
        assert report["server1"]["status"] == "failed" and report["server1"]["reboot"] == "done", report
        assert report["server1"]["failure"].startswith("Assert that the new driver is the loaded one: server1 "), \
            report["server1"]
        assert report["server2"]["status"] == "not reached" and report["server2"]["kernels"] == [], report
        csv = (tmp_path / "report.csv").read_text().splitlines()
        assert csv[1].startswith('"server1","failed",') and csv[2].startswith('"server2","not reached",'), csv
        assert vm.ssh("test -e /sys/module/aacraid", check=False).returncode != 0

        # A reboot that never comes back (the machine powers off) fails at reboot_timeout
        # with the built-in's message. Through raw_reboot itself: with the driver not loaded
        # the facts see no reboot due, so the role would not reboot again.
        started = time.monotonic()
        out, _ = run_ansible(NEWEST, "ansible", "-i", inventory, "server1", "-m", "raw_reboot", "-a",
                             json.dumps({"reboot_timeout": 20, "reboot_command": "systemctl poweroff"}), check=False)
        result = task_results(out)["server1"]
        assert result["failed"] is True and result["rebooted"] is True, result
        assert result["msg"] == "Timed out waiting for last boot time check (timeout=20)", result["msg"]
        print(f"a reboot that does not come back, reboot_timeout 20: failed after {time.monotonic() - started:.0f} s")
