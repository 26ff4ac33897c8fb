"""Benchmark: aacraid_build's first build for the two lab kernels, its
idempotent second run, and a plain `dkms build` of the same already-built
module, side by side in one run, timed inside a fresh lab container.
Target: the idempotent run under 1/10 of the first build.

Usage (from the repository root, after `make build`):
    .venv/core-latest/bin/python tests/bench/build_idempotence.py
"""

import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from lablib import VENDOR_VERSION, Lab, make_vendor_package  # noqa: E402


def main():
    with tempfile.TemporaryDirectory() as tmp, Lab("dracut", prefix="aacraid-build-bench") as lab:
        package = make_vendor_package(tmp)
        lab.put(package, "/root/vendor.tgz")
        kernels = lab.kernels
        args = {"src": "/root/vendor.tgz", "kernels": kernels, "force": True, "artifacts_dir": "/root/artifacts"}
        first, out1 = lab.timed_module("aacraid_build", **args)
        second, out2 = lab.timed_module("aacraid_build", **args)
        assert out1["changed"] is True and out2["changed"] is False
        builds = " && ".join(f"dkms build -m aacraid -v {VENDOR_VERSION} -k {k}" for k in kernels)
        plain, _ = lab.timed(builds)
    print(f"\naacraid_build, kernels {' '.join(kernels)}, timed inside the container\n")
    print("| run | seconds | vs first build |")
    print("|---|---:|---:|")
    for label, secs in [("first build (add, build, install, 2 artifacts)", first),
                        ("idempotent second run", second),
                        ("plain `dkms build` of the built module, both kernels", plain)]:
        print(f"| {label} | {secs:.2f} | {secs / first:.3f} |")
    ratio = second / first
    print(f"\nTarget: idempotent run under 1/10 of the first build: {ratio:.3f} "
          f"{'meets' if ratio < 0.1 else 'MISSES'} the target")


if __name__ == "__main__":
    main()
