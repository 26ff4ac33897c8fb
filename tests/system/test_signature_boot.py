"""Issue 16's proof on a real kernel: a lab kernel booted in QEMU with
`module.sig_enforce=1` refuses the unsigned DKMS build and a build signed
with a key it does not hold, and loads Debian's signed in-tree module; the
same kernel without the parameter loads the unsigned build. The build
signed with a throwaway key comes from aacraid_build's sign_key, and its
manifest names the signer the facts show. In every boot
raid_driver_facts runs inside the guest, on the very files the image's init
then loads from, before it loads them (tests/bootcheck/boot-check.py
--facts), and its `will_load` must predict what the kernel did: the banner,
or the kernel's rejection line and no banner."""

import json
import subprocess

from lablib import MODULE_VERSION, REPO, Lab, throwaway_key

BOOT_CHECK = REPO / "tests/bootcheck/boot-check.py"
ENFORCE = ("--append", "module.sig_enforce=1")


def boot(lab, kernel, *options):
    """boot-check's JSON result for `kernel`'s image, with the facts run in
    the guest; fails the test when boot-check does not report success."""
    out = subprocess.run(
        [str(BOOT_CHECK), "--container", lab.name, "--kernel", kernel, "--json",
         "--facts", str(REPO / "library/raid_driver_facts"), *options],
        capture_output=True, text=True, timeout=400,
    )
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout)
    assert result["facts"]["failed"] is False, result["facts"]
    return result


def guest_kernel(result, release):
    """The facts of the booted kernel, as the guest saw them."""
    rd = result["facts"]["ansible_facts"]["raid_driver"]
    assert rd["running_kernel"] == release, rd["running_kernel"]
    [kernel] = rd["kernels"]
    assert kernel["running"] is True
    return rd, kernel


def install_and_regenerate(lab, kernel, src):
    assert lab.module("kmod_update", src=src, kernels=[kernel])["changed"] is True
    assert lab.module("initramfs_regen", kernels=[kernel])["changed"] is True


def test_an_enforcing_kernel_does_what_the_facts_in_the_guest_predicted(artifacts, vendor_packages, tmp_path):
    with Lab("initramfs-tools", prefix="sig-boot") as lab:
        lab.put_artifacts(artifacts)
        built, stranger = lab.kernels

        # Debian's signed in-tree module under enforcement: it loads.
        result = boot(lab, stranger, *ENFORCE, "--expect", lab.intree_version(stranger))
        rd, kernel = guest_kernel(result, stranger)
        assert rd["signing"]["sig_enforce"] is True and rd["signing"]["cmdline_sig_enforce"] is True
        assert rd["signing"]["lockdown"] == "none"
        keys = rd["signing"]["trusted_keys"]
        assert len(keys) >= 1
        # No seccomp in the guest: keyctl names each key's keyring.
        assert ".builtin_trusted_keys" in [k["keyring"] for k in keys], keys
        assert kernel["signing"] == {"enforced": True, "reason": "module.sig_enforce is on"}
        assert kernel["resolved"]["tree"] == "kernel" and kernel["resolved"]["will_load"] is True, kernel
        assert result["refused"] is None

        # The DKMS build, unsigned, in the image: refused under enforcement ...
        install_and_regenerate(lab, built, f"/root/{built}.tgz")
        enforcing = boot(lab, built, *ENFORCE, "--expect-refused")
        (tmp_path / "facts-enforcing.json").write_text(json.dumps(enforcing, indent=1))
        assert "Loading of unsigned module is rejected" in enforcing["refused"], enforcing["refused"]
        _, kernel = guest_kernel(enforcing, built)
        resolved = kernel["resolved"]
        assert (resolved["tree"], resolved["version"], resolved["signature"]) == ("updates", MODULE_VERSION, None)
        assert resolved["will_load"] is False
        assert resolved["will_load_reason"] == (
            f"unsigned, and kernel {built} refuses such modules: module.sig_enforce is on")

        # ... and loaded, tainting the kernel, without it.
        loose = boot(lab, built, "--expect", MODULE_VERSION)
        (tmp_path / "facts-not-enforcing.json").write_text(json.dumps(loose, indent=1))
        rd, kernel = guest_kernel(loose, built)
        assert rd["signing"]["sig_enforce"] is False and rd["signing"]["cmdline_sig_enforce"] is None
        assert kernel["signing"]["enforced"] is False, kernel["signing"]
        assert kernel["resolved"]["will_load"] is True
        assert kernel["resolved"]["will_load_reason"].startswith(
            f"unsigned; kernel {built} loads it and marks itself tainted")

        # The build signed on the build host (aacraid_build's sign_key) with a
        # throwaway key the kernel does not hold: the manifest and the facts
        # name the signer, and the kernel refuses it.
        key = tmp_path / "key.pem"
        throwaway_key(key, "/CN=aacraid throwaway key")
        lab.put(key, "/root/key.pem")
        lab.sh("chmod 600 /root/key.pem")
        lab.put(vendor_packages["good"], "/root/good.tgz")
        built_signed = lab.module("aacraid_build", src="/root/good.tgz", kernels=[stranger], state="built",
                                  artifacts_dir="/root/signed", sign_key="/root/key.pem", sign_cert="/root/key.pem")
        assert built_signed["changed"] is True, built_signed
        artifact = built_signed["kernels"][0]["artifact"]["path"]
        lab.sh(f"mkdir /root/unpacked && tar -xzf {artifact} -C /root/unpacked manifest.json")
        [listed] = json.loads(lab.sh("cat /root/unpacked/manifest.json"))["files"]
        assert listed["signer"] == "aacraid throwaway key", listed
        installed = lab.module("kmod_update", src=artifact, kernels=[stranger], expected_signer="aacraid throwaway key")
        assert installed["changed"] is True, installed
        assert lab.module("initramfs_regen", kernels=[stranger])["changed"] is True
        result = boot(lab, stranger, *ENFORCE, "--expect-refused")
        assert "Loading of module with unavailable key is rejected" in result["refused"], result["refused"]
        _, kernel = guest_kernel(result, stranger)
        resolved = kernel["resolved"]
        assert resolved["tree"] == "updates" and resolved["signature"]["signer"] == "aacraid throwaway key"
        assert resolved["signature"]["key_id"] == listed["key_id"]
        assert resolved["will_load"] is False
        reason = resolved["will_load_reason"]
        assert reason.startswith("signed by aacraid throwaway key (key "), reason
        assert reason.endswith(f"no key the running kernel holds for modules has that name or identifier, and kernel "
                               f"{stranger} refuses untrusted modules: module.sig_enforce is on"), reason
