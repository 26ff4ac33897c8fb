"""Benchmark: what the notes run, `dracut --regenerate-all --force`, against
initramfs_regen's idempotent run and its run when one of the two images is
stale, in one run on one dracut lab container with two kernels, timed
inside the container. Targets: the idempotent run at least 50 times faster
than regenerate-all; the one-stale run at most 0.6 of it.

The fixture driver is built for both kernels with aacraid_build (state
built, artifacts only); kmod_update then installs it for one kernel, which
makes exactly that kernel's image stale.

Usage (from the repository root, after `make build` and the lab images):
    .venv/core-latest/bin/python tests/bench/regen_vs_regenerate_all.py
"""

import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from lablib import VENDOR_VERSION, Lab, make_vendor_package  # noqa: E402


def main():
    with tempfile.TemporaryDirectory() as tmp, Lab("dracut", prefix="aacraid-regen-bench") as lab:
        package = make_vendor_package(tmp)
        lab.put(package, "/root/vendor.tgz")
        kernels = lab.kernels
        lab.timed_module("aacraid_build", src="/root/vendor.tgz", kernels=kernels, state="built",
                         artifacts_dir="/root/artifacts")
        regenerate_all, _ = lab.timed("dracut --regenerate-all --force")
        idempotent, result = lab.timed_module("initramfs_regen")
        assert result["changed"] is False, result
        lab.timed_module("kmod_update", src=f"/root/artifacts/aacraid-{VENDOR_VERSION}-{kernels[0]}.tgz")
        one_stale, result = lab.timed_module("initramfs_regen")
        assert [k["rebuilt"] for k in result["kernels"]] == [True, False], result
    print(f"\ninitramfs images of kernels {' '.join(kernels)} (dracut), timed inside the container\n")
    print("| run | seconds | vs regenerate-all |")
    print("|---|---:|---:|")
    rows = [("`dracut --regenerate-all --force` (the notes)", regenerate_all),
            ("initramfs_regen, both images current (idempotent)", idempotent),
            ("initramfs_regen, one of two images stale", one_stale)]
    for label, secs in rows:
        print(f"| {label} | {secs:.2f} | {secs / regenerate_all:.3f} |")
    speedup = regenerate_all / idempotent
    share = one_stale / regenerate_all
    print(f"\nTargets: idempotent at least 50x faster: {speedup:.0f}x ({'met' if speedup >= 50 else 'MISSED'}); "
          f"one stale at most 0.6 of regenerate-all: {share:.2f} ({'met' if share <= 0.6 else 'MISSED'})")


if __name__ == "__main__":
    main()
