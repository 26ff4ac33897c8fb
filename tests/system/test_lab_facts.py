"""raid_driver_facts in each lab variant, checked against the real tools:
modinfo for what each kernel resolves, lsinitrd/lsinitramfs for what each
image holds; and images recompressed with the real gzip, xz and zstd tools,
with and without an early cpio made by the real cpio."""

import pytest


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


@pytest.mark.parametrize("compressor,name", [("gzip -1", "gzip"), ("xz -0 --check=crc32", "xz"), ("zstd -1 -q", "zstd")])
@pytest.mark.parametrize("early", [False, True])
def test_recompressed_images(dracut_lab, compressor, name, early):
    """The main archive recompressed by the real tools, optionally behind an
    early microcode cpio written by the real cpio (as dracut does)."""
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
    script += f"gzip -dc {image}.orig | {compressor} >> /tmp/new.img && mv /tmp/new.img {image}"
    lab.sh(script)
    try:
        rd = facts(lab, kernels=[kver], gather_subset=["modules", "initramfs"])["ansible_facts"]["raid_driver"]
        img = rd["kernels"][0]["initramfs"]
        assert img["error"] is None, img
        assert img["compression"] == name
        assert img["early_cpio"] is early
        assert img["contains_module"] is True
        assert img["matches_resolved"] is True
    finally:
        lab.sh(f"cp {image}.orig {image}")
