"""The controller side of aacraid_build and kmod_update (plugins/action/):
the vendor package goes from the controller to a Python-free build host,
the artifacts come back to the controller (fetched only when their checksum
differs), and go out to a Python-free server, through ansible-core's
docker connection alone."""

import hashlib

import pytest

from conftest import MODULE_VERSION, Lab, inventory, run_ansible, task_results

BUILD = """- name: Build on the build host, bring the artifacts home
  hosts: lab
  gather_facts: false
  tasks:
    - name: Build the vendor driver for both kernels
      aacraid_build:
        src: {package}
        remote_src: false
        kernels: [all]
        state: built
        artifacts_dir: /root/artifacts
        fetch_dir: {fetch_dir}
"""

INSTALL = """- name: Install from the controller's artifacts
  hosts: lab
  gather_facts: false
  tasks:
    - name: Install the artifact of each kernel
      kmod_update:
        src: {fetch_dir}/aacraid-1.2.1.41024-{{{{ item }}}}.tgz
        remote_src: false
        expected_version: {version}
      loop: {kernels}
"""


@pytest.mark.parametrize("version", ["core-2.16", "core-latest"])
def test_upload_build_fetch_and_install(version, vendor_packages, tmp_path):
    lab = Lab("dracut")
    try:
        inv = inventory(tmp_path, lab)
        fetch_dir = tmp_path / "artifacts"
        build = tmp_path / "build.yml"
        build.write_text(BUILD.format(package=vendor_packages["good"], fetch_dir=fetch_dir))

        out, _ = run_ansible(version, "ansible-playbook", "-i", inv, "--check", build)
        result = task_results(out)["lab"]
        assert result["changed"] is True and all(f["fetched"] for f in result["fetched"])
        assert not fetch_dir.exists(), "check mode fetched nothing"

        out, _ = run_ansible(version, "ansible-playbook", "-i", inv, build)
        result = task_results(out)["lab"]
        assert [f["fetched"] for f in result["fetched"]] == [True, True]
        for kernel in result["kernels"]:
            local = fetch_dir / kernel["artifact"]["path"].rsplit("/", 1)[1]
            assert hashlib.sha256(local.read_bytes()).hexdigest() == kernel["artifact"]["sha256"]
        assert lab.sh("ls -A /root/.ansible/tmp") == "", "the uploaded package was removed"

        out, _ = run_ansible(version, "ansible-playbook", "-i", inv, build)
        assert out["stats"]["lab"]["changed"] == 0
        assert not any(f["fetched"] for f in task_results(out)["lab"]["fetched"])

        install = tmp_path / "install.yml"
        install.write_text(INSTALL.format(fetch_dir=fetch_dir, version=MODULE_VERSION, kernels=lab.kernels))
        out, _ = run_ansible(version, "ansible-playbook", "-i", inv, install)
        assert out["stats"]["lab"]["changed"] == 1
        for k in lab.kernels:
            assert lab.sh(f"modinfo -k {k} -n aacraid").strip() == f"/lib/modules/{k}/updates/aacraid.ko"
        out, _ = run_ansible(version, "ansible-playbook", "-i", inv, install)
        assert out["stats"]["lab"]["changed"] == 0
        assert lab.sh("ls -A /root/.ansible/tmp") == ""
    finally:
        lab.remove()
