"""Issue 13's proof on a real machine: playbooks/aacraid.yml drives a QEMU
virtual machine (tests/vmlib.py: GRUB in its own disk, systemd, sshd, a lab
kernel, no Python) over Ansible's ssh connection as a RAID server; a lab
container is the build host. The guest loads aacraid at boot from its
initramfs (QEMU has no Adaptec controller; the disk lists the module in
/etc/initramfs-tools/modules).

1. with aacraid_server_reboot_ok false the play installs, regenerates,
   reports the due reboot with its reason and exports
   aacraid_server_reboot_required, and the machine keeps its boot id;
2. with it true, raw_reboot (the Python-free ansible.builtin.reboot)
   reboots it for real; GRUB reads the regenerated initramfs from the
   guest's disk, and the new driver is the loaded one
   (/sys/module/aacraid/version, the kernel log's banner, the facts);
3. a third run changes nothing and does not reboot.

Run by `make vm-reboot`, not by `make system` nor (yet) by `make test`: under software
emulation its three rollouts take longer than the suite's budget leaves."""

import json
import time

from lablib import MODULE_VERSION, NEWEST, REPO, VENDOR_VERSION, Lab, run_ansible
from vmlib import VM

PLAYBOOK = REPO / "playbooks/aacraid.yml"


def facts(inventory):
    out, _ = run_ansible(NEWEST, "ansible", "-i", inventory, "server1", "-m", "raid_driver_facts",
                         "-a", json.dumps({"gather_subset": ["modules", "initramfs", "loaded"]}))
    [result] = out["plays"][0]["tasks"][0]["hosts"].values()
    assert result.get("failed") is not True, result
    return result["ansible_facts"]["raid_driver"]


def rollout(inventory, vendor_package, fetch_dir, reboot_ok):
    out, _ = run_ansible(NEWEST, "ansible-playbook", "-i", inventory, PLAYBOOK, extra_vars={
        "aacraid_build_host_package": vendor_package,
        "aacraid_build_host_fetch_dir": str(fetch_dir),
        "aacraid_server_driver_version": MODULE_VERSION,
        "aacraid_server_reboot_ok": reboot_ok,
    })
    return out


def server_results(out, task_name):
    """server1's results of every task of that name, across the plays."""
    found = []
    for play in out["plays"]:
        for task in play["tasks"]:
            if task["task"]["name"] == task_name and "server1" in task["hosts"]:
                found.append(task["hosts"]["server1"])
    return found


def test_the_rollout_reboots_a_real_machine_into_the_new_driver(vendor_packages, tmp_path):
    with VM(tmp_path / "vm") as vm, Lab("initramfs-tools", prefix="vm-build") as builder:
        print(f"VM boot ({vm.accel}): {vm.boot_seconds} s to SSH")
        inventory = tmp_path / "inventory.ini"
        inventory.write_text("\n".join([
            "[build_hosts]",
            f"builder ansible_connection=community.docker.docker ansible_host={builder.name}",
            "[raid_servers]",
            vm.inventory_line("server1"),
        ]) + "\n")
        fetch_dir = tmp_path / "artifacts"

        intree = vm.ssh("cat /sys/module/aacraid/version").stdout.strip()
        assert intree and intree != MODULE_VERSION
        before = facts(inventory)
        assert before["running_kernel"] == vm.kernel
        assert before["loaded"]["version"] == intree
        assert before["reboot_required"] is False, before["reboot_reason"]
        first_boot = vm.boot_id()

        # 1. No reboot allowed: the due reboot is reported and exported.
        out = rollout(inventory, vendor_packages["good"], fetch_dir, reboot_ok=False)
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
        out = rollout(inventory, vendor_packages["good"], fetch_dir, reboot_ok=True)
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
        out = rollout(inventory, vendor_packages["good"], fetch_dir, reboot_ok=True)
        assert out["stats"]["server1"]["changed"] == 0, out["stats"]
        assert out["stats"]["builder"]["changed"] == 0, out["stats"]
        [skipped] = server_results(out, "Reboot and verify the loaded driver")
        assert skipped.get("skipped") is True
        assert vm.boot_id() == second_boot
        assert VENDOR_VERSION in {p.name.split("-")[1] for p in fetch_dir.glob("aacraid-*.tgz")}
