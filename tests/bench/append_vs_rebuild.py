"""Benchmark: initramfs_regen on one stale kernel, `method: append` against
`method: rebuild` (the image tool's whole run), in both lab variants, timed
inside the container (docker exec not counted), page cache warm.

In each variant the fixture driver is built for the first kernel with
aacraid_build and installed with kmod_update, which makes exactly that
kernel's image stale; the stale image is kept aside and put back (not
timed) before every sample. The dracut container first drops the lab's
speed-up (gzip -1, tests/lab/README.md), so dracut compresses as Debian
configures it. One warm-up run of each method, then per round both methods
in alternating order. Every run must exit 0 and update exactly that image.

Target (issue 14): per variant, the median append at most 1/20 of the median
rebuild.

Usage (from the repository root, after `make build` and the lab images):
    .venv/core-latest/bin/python tests/bench/append_vs_rebuild.py [--rounds N] [--report-only]
"""

import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchlib import Samples, Target, alternated, finish, parse_args, print_table, ratio  # noqa: E402
from lablib import VARIANTS, VENDOR_VERSION, Lab, make_vendor_package  # noqa: E402

METHODS = ("rebuild", "append")


def main():
    args = parse_args(__doc__)
    samples = Samples()
    with tempfile.TemporaryDirectory() as tmp:
        package = make_vendor_package(tmp)
        for variant in VARIANTS:
            with Lab(variant, prefix="aacraid-append-bench") as lab:
                if variant == "dracut":
                    lab.debian_dracut()
                lab.put(package, "/root/vendor.tgz")
                kernel = lab.kernels[0]
                lab.timed_module("aacraid_build", src="/root/vendor.tgz", kernels=[kernel], state="built",
                                 artifacts_dir="/root/artifacts")
                lab.timed_module("kmod_update", src=f"/root/artifacts/aacraid-{VENDOR_VERSION}-{kernel}.tgz",
                                 kernels=[kernel])
                image = f"/boot/initrd.img-{kernel}"
                lab.sh(f"cp -a {image} /root/stale.img")

                def update(method):
                    lab.sh(f"cp -a /root/stale.img {image}")
                    seconds, result = lab.timed_module("initramfs_regen", kernels=[kernel], method=method)
                    assert [k["rebuilt"] for k in result["kernels"]] == [True], result
                    return seconds

                for method in METHODS:  # warm-up
                    update(method)
                for r in range(args.rounds):
                    for method in alternated(list(METHODS), r):
                        samples.add((variant, method), update(method))

    print_table(f"initramfs_regen, one stale image, seconds inside the container, {args.rounds} rounds",
                samples, columns=("variant", "method"), key_of=lambda row: row,
                extra=[("median vs rebuild", lambda row: f"{ratio(row, (row[0], 'rebuild'))(samples):.3f}")])
    targets = [Target(f"{variant}: append / rebuild", ratio((variant, "append"), (variant, "rebuild")), "<=", 1 / 20)
               for variant in VARIANTS]
    finish(samples, targets, args)


if __name__ == "__main__":
    main()
