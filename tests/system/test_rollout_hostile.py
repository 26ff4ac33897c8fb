"""playbooks/aacraid.yml when a RAID server lies: the kernel releases a
server reports become commands on the build host (the headers step of
roles/aacraid_build_host is a `raw` line), so a release that is not a plain
release must stop the rollout before the build host runs anything.

The lying server answers raid_driver_facts with a script of its own (the
module result is the server's word, whatever binary was sent); everything
else is real: ansible-core, the playbook, the roles, two lab containers."""

import json

import pytest

from lablib import ANSIBLE, REPO, Lab, run_ansible

# Trees of the build host that a build, a header install or a planted command would touch.
BUILD_HOST_TREES = ("/lib/modules", "/usr/src", "/var/lib/dkms", "/var/lib/dpkg", "/var/lib/aacraid", "/tmp")

LIES = {
    "semicolon": "x;touch /tmp/pwned",
    "substitution": "$(touch /tmp/pwned)",
    "newline": "6.1.0-56-amd64\ntouch /tmp/pwned",
    "dotdot": "..",
}


def lying_facts_module(folder, kernels):
    """A raid_driver_facts next to the wrapper playbook (Ansible searches a
    playbook's library/ first): a shell script that reports `kernels`."""
    library = folder / "library"
    library.mkdir()
    facts = {"changed": False, "ansible_facts": {"raid_driver": {
        "name": "aacraid", "kernels": [{"release": k, "installed": True} for k in kernels]}}}
    script = library / "raid_driver_facts"
    script.write_text(f"#!/bin/sh\ncat <<'EOF'\n{json.dumps(facts)}\nEOF\n")
    script.chmod(0o755)


def fleet_inventory(folder, builder, server):
    path = folder / "inventory.ini"
    connection = "ansible_connection=community.docker.docker"
    path.write_text(f"[build_hosts]\nbuilder {connection} ansible_host={builder.name}\n"
                    f"[raid_servers]\nliar {connection} ansible_host={server.name}\n")
    return path


def wrapper_playbook(folder):
    path = folder / "rollout.yml"
    path.write_text(f"---\n- name: The rollout\n  ansible.builtin.import_playbook: {REPO}/playbooks/aacraid.yml\n")
    return path


@pytest.mark.parametrize("version", list(ANSIBLE))
@pytest.mark.parametrize("lie", list(LIES))
def test_server_reporting_a_shell_command_as_kernel_release(version, lie, vendor_packages, tmp_path):
    """Attack: a compromised RAID server reports a kernel release such as
    `x;touch /tmp/pwned`; the rollout used to paste it into a `raw` line on
    the build host, running the command there as root. Now the server's
    own check refuses it, names the server and the value, and the rollout
    stops before the build host runs anything."""
    bad = LIES[lie]
    with Lab("dracut") as builder, Lab("dracut") as server:
        lying_facts_module(tmp_path, [builder.kernels[0], bad])
        inv = fleet_inventory(tmp_path, builder, server)
        fetch_dir = tmp_path / "artifacts"
        before = builder.tree_hash(*BUILD_HOST_TREES, contents=False, times=True)

        out, proc = run_ansible(version, "ansible-playbook", "-i", inv, wrapper_playbook(tmp_path), check=False,
                                extra_vars={"aacraid_build_host_package": vendor_packages["good"],
                                            "aacraid_build_host_fetch_dir": str(fetch_dir)})

        assert proc.returncode != 0
        assert [p["play"]["name"] for p in out["plays"]] == ["Learn the kernels of the RAID servers"]
        refused = out["plays"][0]["tasks"][1]
        assert refused["task"]["name"] == "Refuse kernel releases the modules would refuse"
        result = refused["hosts"]["liar"]
        assert result["failed"] is True
        assert result["msg"].startswith("liar reported kernels whose release is not a plain release")
        assert json.dumps(bad) in result["msg"], result["msg"]
        assert "builder" not in out["stats"], out["stats"]
        assert builder.sh("ls /tmp/pwned 2>&1 || true").strip().endswith("No such file or directory")
        assert server.sh("ls /tmp/pwned 2>&1 || true").strip().endswith("No such file or directory")
        assert builder.tree_hash(*BUILD_HOST_TREES, contents=False, times=True) == before
        assert not fetch_dir.exists()


@pytest.mark.parametrize("version", list(ANSIBLE))
def test_build_host_role_refuses_a_shell_command_as_kernel(version, vendor_packages, tmp_path):
    """Attack: a kernel list that reaches roles/aacraid_build_host from a
    variable (here an extra var, as a wrapper playbook or inventory would
    set it) holds `x;touch /tmp/pwned`; the headers step used to run it on
    the build host. The role's own check refuses the value by name first."""
    bad = "x;touch /tmp/pwned"
    with Lab("dracut") as lab:
        inv = tmp_path / "inventory.ini"
        inv.write_text(f"[build_hosts]\nlab ansible_connection=community.docker.docker ansible_host={lab.name}\n"
                       "[raid_servers]\nlab\n")
        fetch_dir = tmp_path / "artifacts"
        before = lab.tree_hash(*BUILD_HOST_TREES, contents=False, times=True)

        out, proc = run_ansible(version, "ansible-playbook", "-i", inv, REPO / "playbooks/aacraid.yml", check=False,
                                extra_vars={"aacraid_build_host_package": vendor_packages["good"],
                                            "aacraid_build_host_fetch_dir": str(fetch_dir),
                                            "aacraid_build_host_kernels": [lab.kernels[0], bad]})

        assert proc.returncode != 0
        build = out["plays"][1]
        failed = [t for t in build["tasks"] if t["hosts"].get("lab", {}).get("failed")]
        assert len(failed) == 1
        assert failed[0]["task"]["name"] == "aacraid_build_host : Refuse kernel releases the modules would refuse"
        assert json.dumps([bad]) in failed[0]["hosts"]["lab"]["msg"], failed[0]["hosts"]["lab"]["msg"]
        assert build["tasks"][-1] is failed[0], "no task ran after the refusal"
        assert lab.sh("ls /tmp/pwned 2>&1 || true").strip().endswith("No such file or directory")
        assert lab.tree_hash(*BUILD_HOST_TREES, contents=False, times=True) == before
        assert not fetch_dir.exists()


SERVER_ROLE_PLAYBOOK = """---
- name: Install on a server
  hosts: liar
  gather_facts: false
  roles:
    - role: aacraid_server
      vars:
        aacraid_server_package_version: "1.0"
        aacraid_server_artifacts_dir: "{{ artifacts_dir }}"
"""


@pytest.mark.parametrize("version", list(ANSIBLE))
def test_server_reporting_a_path_as_kernel_release(version, tmp_path):
    """Attack: a compromised RAID server reports the kernel release
    `x/../../secret`; roles/aacraid_server names the artifact to upload
    `<artifacts_dir>/aacraid-1.0-x/../../secret.tgz`, which Ansible folds to
    a controller file outside the artifacts folder, and uploaded it to that
    server. Now the role refuses the release, naming the server and the
    value, before any upload: no byte of the file reaches the server (a
    copier on the server watching Ansible's temporary folder finds
    nothing)."""
    controller = tmp_path / "controller"
    (controller / "artifacts").mkdir(parents=True)
    (controller / "secret.tgz").write_text("controller secret 5f1c")
    with Lab("dracut") as server:
        bad = "x/../../secret"
        lying_facts_module(tmp_path, [server.kernels[0], bad])
        inv = tmp_path / "inventory.ini"
        inv.write_text(f"liar ansible_connection=community.docker.docker ansible_host={server.name}\n")
        book = tmp_path / "server.yml"
        book.write_text(SERVER_ROLE_PLAYBOOK)
        server.sh("mkdir -p /root/stolen /root/.ansible/tmp; nohup sh -c 'while :; do "
                  "cp -r /root/.ansible/tmp/. /root/stolen/ 2>/dev/null; done' >/dev/null 2>&1 &")
        before = server.tree_hash("/lib/modules", "/boot", contents=False, times=True)

        out, proc = run_ansible(version, "ansible-playbook", "-i", inv, book, check=False,
                                extra_vars={"artifacts_dir": str(controller / "artifacts")})

        assert proc.returncode != 0
        tasks = out["plays"][0]["tasks"]
        failed = [t for t in tasks if t["hosts"].get("liar", {}).get("failed")]
        assert len(failed) == 1
        assert failed[0]["task"]["name"] == "aacraid_server : Refuse kernel releases the modules would refuse"
        assert failed[0]["hosts"]["liar"]["msg"].startswith("liar: kernels whose release is not a plain release")
        assert json.dumps([bad]) in failed[0]["hosts"]["liar"]["msg"]
        assert tasks[-1] is failed[0], "no task ran after the refusal"
        assert server.sh("grep -rl 'controller secret 5f1c' /root/stolen || true") == ""
        assert server.tree_hash("/lib/modules", "/boot", contents=False, times=True) == before
