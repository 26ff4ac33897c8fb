"""raid_driver_facts in each lab variant, checked against the real tools:
modinfo for what each kernel resolves, lsinitrd/lsinitramfs for what each
image holds; and images recompressed with the real gzip, xz and zstd tools,
with and without an early cpio made by the real cpio."""

import contextlib
import subprocess

import pytest

from lablib import REPO, Lab


def facts(lab, **options):
    """Runs the staged binary in the container, as Ansible would."""
    result = lab.module("raid_driver_facts", **options)
    assert result["failed"] is False, result
    assert result["changed"] is False
    return result


def test_both_kernels_resolve_the_in_tree_driver(lab):
    result = facts(lab)
    rd = result["ansible_facts"]["raid_driver"]
    assert [k["release"] for k in rd["kernels"]] == lab.kernels
    assert len(lab.kernels) == 2
    for k in rd["kernels"]:
        release = k["release"]
        expected_path = lab.sh(f"modinfo -k {release} -n aacraid").strip()
        assert expected_path == f"/lib/modules/{release}/kernel/drivers/scsi/aacraid/aacraid.ko"
        assert k["resolved"]["path"] == expected_path
        assert k["resolved"]["tree"] == "kernel"
        assert k["resolved"]["version"] == lab.sh(f"modinfo -k {release} -F version aacraid").strip()
        assert k["resolved"]["srcversion"] == lab.sh(f"modinfo -k {release} -F srcversion aacraid").strip()
        assert k["resolved"]["vermagic"] == lab.sh(f"modinfo -k {release} -F vermagic aacraid").strip()
        assert k["resolved"]["vermagic_matches"] is True
        assert [c["path"] for c in k["copies"]] == [expected_path]
        sha = lab.sh(f"sha256sum {expected_path}").split()[0]
        assert k["resolved"]["sha256"] == sha


def modinfo_signature(lab, path):
    """What the real modinfo reads of a file's signature, in the facts' terms
    (None for an unsigned file)."""
    fields = {f: lab.sh(f"modinfo -F {f} {path}").strip() for f in ("sig_id", "signer", "sig_key", "sig_hashalgo")}
    if not any(fields.values()):
        return None
    return {"id_type": fields["sig_id"], "signer": fields["signer"] or None, "key_id": fields["sig_key"],
            "hash_algo": fields["sig_hashalgo"], "error": None}


@contextlib.contextmanager
def three_copies(lab, tmp_path):
    """Kernel lab.kernels[0] with three copies of aacraid: Debian's in-tree
    module (signed by the kernel build's own key), in extra/ that module
    stripped of its signature, in updates/ the stripped copy signed by the
    kernel's sign-file with a throwaway key and sha512. Yields (kernel,
    in-tree path, extra path, updates path); removes the two copies after,
    since the lab container is shared and the other tests expect the in-tree
    driver alone. depmod is not run: the kernel still resolves the in-tree file."""
    k = lab.kernels[0]
    intree = lab.sh(f"modinfo -k {k} -n aacraid").strip()
    lab.get(intree, tmp_path / "intree.ko")
    data = (tmp_path / "intree.ko").read_bytes()
    marker = b"~Module signature appended~\n"
    assert data.endswith(marker), "Debian signs its in-tree modules"
    sig_len = int.from_bytes(data[-len(marker) - 4:-len(marker)], "big")
    (tmp_path / "unsigned.ko").write_bytes(data[:-(sig_len + 12 + len(marker))])
    key = tmp_path / "key.pem"
    subprocess.run(["openssl", "req", "-new", "-nodes", "-utf8", "-sha256", "-days", "3650", "-batch", "-x509",
                    "-subj", "/O=aacraid lab/CN=aacraid test signing key", "-outform", "PEM", "-out", key,
                    "-keyout", key], check=True, capture_output=True)
    extra, updates = f"/lib/modules/{k}/extra/aacraid.ko", f"/lib/modules/{k}/updates/aacraid.ko"
    try:
        lab.put(key, "/root/key.pem")
        lab.sh(f"mkdir -p /lib/modules/{k}/extra /lib/modules/{k}/updates")
        lab.put(tmp_path / "unsigned.ko", extra)
        lab.put(tmp_path / "unsigned.ko", updates)
        sign_file = lab.sh(f"ls /usr/src/linux-headers-{k}/scripts/sign-file /usr/lib/linux-kbuild-*/scripts/sign-file "
                           "2>/dev/null | head -n1").strip()
        lab.sh(f"{sign_file} sha512 /root/key.pem /root/key.pem {updates}")
        yield k, intree, extra, updates
    finally:
        lab.sh(f"rm -f {extra} {updates} /root/key.pem && rmdir --ignore-fail-on-non-empty /lib/modules/{k}/extra")


def test_module_signatures_agree_with_modinfo(lab, tmp_path):
    """The signature the facts read from each module file (issue 16) is the
    one the real modinfo reads, for the three copies of three_copies."""
    with three_copies(lab, tmp_path) as (k, intree, extra, updates):
        rd = facts(lab, kernels=[k], gather_subset=["modules"])["ansible_facts"]["raid_driver"]
        [kernel] = rd["kernels"]
        copies = {c["path"]: c["signature"] for c in kernel["copies"]}
        assert sorted(copies) == sorted([intree, extra, updates]), copies
        expected = {path: modinfo_signature(lab, path) for path in copies}
        assert expected[intree]["signer"] == "Build time autogenerated kernel key", expected
        assert expected[extra] is None, expected
        assert expected[updates]["signer"] == "aacraid test signing key", expected
        assert expected[updates]["hash_algo"] == "sha512", expected
        assert copies == expected
        assert kernel["resolved"]["signature"] == expected[intree]


def proc_keys_of_root(lab):
    """The asymmetric keys root owns in the container's /proc/keys, read
    with awk: (name, id) pairs."""
    out = lab.sh("awk '$6 == 0 && $8 ~ /^asymmetri/ && $2 ~ /^I/' /proc/keys")
    keys = []
    for line in out.splitlines():
        parts = line.split(None, 8)[8].split(": ")  # <name>: <id>: <subtype>
        keys.append({"name": ": ".join(parts[:-2]), "id": parts[-2].lower()})
    return keys


def test_signing_facts_follow_the_host_and_the_kernel_configuration(lab, tmp_path):
    """The signing facts (issue 16) against the container's real sources
    read by other means, and the verdicts on real signed and unsigned
    modules under the lab kernel's real Debian configuration (which does not
    force signatures: everything loads) and under that configuration with
    CONFIG_MODULE_SIG_FORCE=y (only the module signed by the kernel's own
    key loads; the stripped copy and the throwaway key's copy are refused).
    Docker masks /proc/keys with /dev/null: in the shared lab the keys are
    unknown, so this test runs in its own container with the mask off, as
    on a real host."""
    masked = facts(lab, kernels=[lab.kernels[0]], gather_subset=["signing"])["ansible_facts"]["raid_driver"]
    assert lab.sh("stat -L -c %F /proc/keys").strip() == "character special file"
    assert masked["signing"]["trusted_keys"] is None
    with Lab(lab.variant, "--security-opt", "systempaths=unconfined", prefix="rdf-keys") as unmasked:
        assert unmasked.sh("stat -L -c %F /proc/keys").strip() == "regular empty file"
        signing_verdicts(unmasked, tmp_path)


def signing_verdicts(lab, tmp_path):
    efi = lab.sh("test -d /sys/firmware/efi && echo yes || echo no").strip() == "yes"
    with three_copies(lab, tmp_path) as (k, intree, extra, updates):
        config = f"/boot/config-{k}"
        assert lab.sh(f"grep -c '^CONFIG_MODULE_SIG=y$' {config}").strip() == "1"
        assert lab.sh(f"grep -c '^# CONFIG_MODULE_SIG_FORCE is not set$' {config}").strip() == "1"
        rd = facts(lab, kernels=[k])["ansible_facts"]["raid_driver"]
        host = rd["signing"]
        assert host["trusted_keys"] == proc_keys_of_root(lab)
        if not efi:
            assert host["secure_boot"] is False
        lockdown = lab.sh("cat /sys/kernel/security/lockdown 2>/dev/null || true").strip()
        assert host["lockdown"] == (lockdown.split("[")[1].split("]")[0] if lockdown else None)
        cmdline = lab.sh("cat /proc/cmdline")
        assert host["cmdline_sig_enforce"] == (True if "module.sig_enforce=1" in cmdline.split() else None)
        [kernel] = rd["kernels"]
        assert kernel["running"] is False, "the lab kernels never run in a container"
        if host["secure_boot"] is False and host["cmdline_sig_enforce"] is None:
            assert kernel["signing"] == {
                "enforced": False,
                "reason": "neither CONFIG_MODULE_SIG_FORCE, module.sig_enforce nor a Secure Boot lockdown applies"}
            loads = {c["path"]: c["will_load"] for c in kernel["copies"]}
            assert loads == {intree: True, extra: True, updates: True}
            assert kernel["resolved"]["will_load"] is True
            assert kernel["initramfs"]["module"]["will_load"] is True
            reason = {c["path"]: c["will_load_reason"] for c in kernel["copies"]}[extra]
            assert reason.startswith(f"unsigned; kernel {k} loads it and marks itself tainted"), reason

        lab.sh(f"cp -p {config} /root/config.saved && sed -i "
               f"'s/^# CONFIG_MODULE_SIG_FORCE is not set$/CONFIG_MODULE_SIG_FORCE=y/' {config}")
        try:
            rd = facts(lab, kernels=[k])["ansible_facts"]["raid_driver"]
        finally:
            lab.sh(f"mv /root/config.saved {config}")
        [kernel] = rd["kernels"]
        assert kernel["signing"] == {"enforced": True, "reason": "built with CONFIG_MODULE_SIG_FORCE"}
        copies = {c["path"]: c for c in kernel["copies"]}
        assert len(copies) == 3
        assert copies[intree]["will_load"] is True
        assert copies[intree]["will_load_reason"].endswith(f"the key of kernel {k}'s own modules")
        assert copies[extra]["will_load"] is False
        assert copies[extra]["will_load_reason"] == (
            f"unsigned, and kernel {k} refuses such modules: built with CONFIG_MODULE_SIG_FORCE")
        assert copies[updates]["will_load"] is False, copies[updates]
        assert copies[updates]["will_load_reason"].startswith("signed by aacraid test signing key (key ")
        assert "no key the running kernel holds has that name or identifier" in copies[updates]["will_load_reason"]
        # The image holds Debian's signed in-tree module.
        assert kernel["initramfs"]["module"]["signature"] == copies[intree]["signature"]
        assert kernel["initramfs"]["module"]["will_load"] is True


def list_image(lab, image):
    tool = "lsinitrd" if lab.variant == "dracut" else "lsinitramfs"
    return lab.sh(f"{tool} {image}")


def test_images_hold_what_the_real_tools_list(lab):
    rd = facts(lab)["ansible_facts"]["raid_driver"]
    for k in rd["kernels"]:
        image = k["initramfs"]
        assert image["exists"] is True
        assert image["path"] == f"/boot/initrd.img-{k['release']}"
        listed = [line.split()[-1] for line in list_image(lab, image["path"]).splitlines() if "aacraid.ko" in line]
        assert image["contains_module"] is bool(listed)
        assert image["contains_module"] is True
        assert image["module"]["path"] in listed
        assert image["matches_resolved"] is True
        assert image["module"]["version"] == k["resolved"]["version"]
        magic = lab.sh(f"head -c 6 {image['path']} | od -An -tx1").split()
        expected = {"1f": "gzip", "28": "zstd", "fd": "xz"}.get(magic[0], "none")
        if expected != "none":
            assert image["compression"] == expected and image["early_cpio"] is False
        else:
            assert image["early_cpio"] is True


# lz4 runs on the test machine (the lab images have no lz4): legacy frames,
# `lz4 -l`, as the kernel reads them and Ubuntu 20.04's initramfs-tools
# writes them.
LZ4 = "lz4 -l -9 -q"


@pytest.mark.parametrize("compressor,name", [("gzip -1", "gzip"), ("xz -0 --check=crc32", "xz"), ("zstd -1 -q", "zstd"),
                                             ("xz --format=lzma -0", "lzma"), (LZ4, "lz4")])
@pytest.mark.parametrize("early", [False, True])
def test_recompressed_images(dracut_lab, compressor, name, early, tmp_path):
    """The main archive recompressed by the real tools, optionally behind an
    early microcode cpio written by the real cpio (as dracut does). lzma and
    lz4 images were recognised but not read; an lz4 image is also checked by
    initramfs_regen (current: nothing to do)."""
    lab = dracut_lab
    kver = lab.kernels[0]
    image = f"/boot/initrd.img-{kver}"
    lab.sh(f"test -f {image}.orig || cp {image} {image}.orig")
    script = "rm -f /tmp/new.img && "
    if early:
        script += (
            "rm -rf /tmp/early && mkdir -p /tmp/early/kernel/x86/microcode && "
            "echo ucode > /tmp/early/kernel/x86/microcode/GenuineIntel.bin && "
            "(cd /tmp/early && find . | cpio -o -H newc --quiet) > /tmp/new.img && "
        )
    # The lab's dracut images are gzip: decode and re-encode the main archive.
    if compressor == LZ4:
        lab.sh(script + f"gzip -dc {image}.orig > /tmp/main.cpio")
        lab.get("/tmp/main.cpio", tmp_path / "main.cpio")
        subprocess.run(f"{LZ4} {tmp_path}/main.cpio {tmp_path}/main.lz4", shell=True, check=True)
        lab.put(tmp_path / "main.lz4", "/tmp/main.lz4")
        lab.sh(f"touch /tmp/new.img && cat /tmp/main.lz4 >> /tmp/new.img && mv /tmp/new.img {image}")
    else:
        lab.sh(script + f"gzip -dc {image}.orig | {compressor} >> /tmp/new.img && mv /tmp/new.img {image}")
    try:
        rd = facts(lab, kernels=[kver], gather_subset=["modules", "initramfs"])["ansible_facts"]["raid_driver"]
        img = rd["kernels"][0]["initramfs"]
        assert img["error"] is None, img
        assert img["compression"] == name
        assert img["early_cpio"] is early
        assert img["contains_module"] is True
        assert img["matches_resolved"] is True
        if name == "lz4":
            preview = lab.module("initramfs_regen", check_mode=True, kernels=[kver])
            assert not preview.get("failed"), preview["msg"]
            assert preview["changed"] is False, preview
    finally:
        lab.sh(f"cp {image}.orig {image}")



ARCCONF_FIXTURES = REPO / "crates/formats/tests/fixtures"


def put_arcconf_stand_in(lab, path, output, rc=0):
    """A root-owned shell script at `path` standing in for Microchip's
    arcconf: it logs its arguments to /root/arcconf-calls.log and, for
    `getversion`, prints the file `output` (a real arcconf's output) and
    exits `rc`; any other command is refused, as arcconf refuses them."""
    lab.sh(f"mkdir -p $(dirname {path})")
    lab.put(output, f"{path}.out")
    lab.sh(f"cat > {path} <<'EOF'\n#!/bin/sh\necho \"$*\" >> /root/arcconf-calls.log\n"
           f"[ \"$*\" = getversion ] || {{ echo 'Invalid command.'; exit 2; }}\ncat {path}.out\nexit {rc}\nEOF\n"
           f"chmod 755 {path}")


def arcconf_calls(lab):
    """The argument lists the stand-ins were run with since the last look."""
    return lab.sh("cat /root/arcconf-calls.log 2>/dev/null; rm -f /root/arcconf-calls.log").splitlines()


def arcconf_warnings(result):
    """The warnings of a result that mention arcconf."""
    return [w for w in result.get("warnings", []) if "arcconf" in w]


def test_arcconf_getversion_through_a_stand_in_for_the_vendor_tool():
    """The `controllers` part runs `arcconf getversion` and reports each
    controller's versions under `arcconf` (sidecar: gather_subset,
    arcconf_path, RETURN arcconf). arcconf is Microchip's proprietary tool
    and cannot be downloaded here, so a shell script stands in for it,
    printing the output of real arcconf releases (crates/formats/tests/
    fixtures/arcconf_getversion_{1,2}.txt, sources in SOURCES.md): this
    proves that the module finds arcconf in a vendor folder off PATH
    (/usr/Arcconf), that arcconf_path overrides it, that the output is
    parsed as the real tool prints it, that a failing arcconf gives null
    facts and a warning, and that a copy a user other than root could
    replace is not run and a warning names it (arcconf_path); not that it
    agrees with a real controller."""
    with Lab("dracut") as lab:
        put_arcconf_stand_in(lab, "/usr/Arcconf/arcconf", ARCCONF_FIXTURES / "arcconf_getversion_1.txt")
        found = facts(lab, gather_subset=["controllers"])
        assert arcconf_warnings(found) == []
        assert arcconf_calls(lab) == ["getversion"]
        rd = found["ansible_facts"]["raid_driver"]
        assert isinstance(rd["controllers"], list)
        series_7 = {"version": "7.5-0", "build": "32118", "raw": "7.5-0 (32118)"}
        assert rd["arcconf"] == [{
            "number": 1, "model": None, "status": None,
            "driver": {"version": "1.2-1", "build": "50983", "raw": "1.2-1 (50983)"},
            "firmware": series_7, "staged_firmware": series_7, "bios": series_7, "boot_flash": series_7,
        }]

        put_arcconf_stand_in(lab, "/opt/vendor/bin/arcconf", ARCCONF_FIXTURES / "arcconf_getversion_2.txt")
        chosen = facts(lab, gather_subset=["controllers"], arcconf_path="/opt/vendor/bin/arcconf")
        assert arcconf_calls(lab) == ["getversion"]
        assert chosen["ansible_facts"]["raid_driver"]["arcconf"] == [{
            "number": 1, "model": None, "status": None,
            "driver": {"version": "1.2.10-025", "build": None, "raw": "Linux 1.2.10-025"},
            "firmware": {"version": "03.01.02.042", "build": None, "raw": "03.01.02.042"},
            "staged_firmware": None, "bios": None, "boot_flash": None,
        }]

        # Planted where the search looks first, replaceable by any user: not run.
        lab.sh("printf '#!/bin/sh\\ntouch /root/pwned\\n' > /usr/local/bin/arcconf && chmod 777 /usr/local/bin/arcconf")
        beside = facts(lab, gather_subset=["controllers"])
        assert arcconf_calls(lab) == ["getversion"]
        assert lab.sh("test -e /root/pwned && echo ran || echo not run").strip() == "not run"
        assert beside["ansible_facts"]["raid_driver"]["arcconf"] == rd["arcconf"]
        assert arcconf_warnings(beside) == [
            "arcconf: /usr/Arcconf/arcconf is run, not /usr/local/bin/arcconf is writable by every user "
            "(a tool that runs as root must be writable by root only)"]
        lab.sh("rm /usr/local/bin/arcconf && chmod 777 /usr/Arcconf/arcconf")
        refused = facts(lab, gather_subset=["controllers"])
        assert arcconf_calls(lab) == []
        assert refused["ansible_facts"]["raid_driver"]["arcconf"] is None
        warnings = arcconf_warnings(refused)
        assert len(warnings) == 1, warnings
        assert warnings[0].startswith("arcconf is not run, its facts are null: `arcconf` is refused: "
                                      "/usr/Arcconf/arcconf is writable by every user"), warnings

        put_arcconf_stand_in(lab, "/usr/Arcconf/arcconf", ARCCONF_FIXTURES / "arcconf_getversion_1.txt", rc=1)
        failed = facts(lab, gather_subset=["controllers"])
        assert arcconf_calls(lab) == ["getversion"]
        assert failed["ansible_facts"]["raid_driver"]["arcconf"] is None
        warnings = arcconf_warnings(failed)
        assert len(warnings) == 1 and warnings[0].startswith("arcconf failed, its facts are null"), warnings
        assert "/usr/Arcconf/arcconf getversion" in warnings[0], warnings
