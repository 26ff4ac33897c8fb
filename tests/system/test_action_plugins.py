"""The controller side of aacraid_build and kmod_update (plugins/action/):
the vendor package goes from the controller to a Python-free build host,
the artifacts come back to the controller (fetched only when their checksum
differs), and go out to a Python-free server, through ansible-core's
docker connection alone."""

import hashlib

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
        assert result["changed"] is True and all(f["fetched"] for f in result["fetched"])
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
        assert not any(f["fetched"] for f in task_results(out)["lab"]["fetched"])

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
