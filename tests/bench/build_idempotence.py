"""Benchmark: aacraid_build's first build for the two lab kernels, its
idempotent second run, and a plain `dkms build` of the same already-built
module, side by side in one run, timed inside a fresh lab container.
Target: the idempotent run under 1/10 of the first build.

Usage (from the repository root, after `make build`):
    .venv/core-latest/bin/python tests/bench/build_idempotence.py
"""

import json
import subprocess
import tempfile
from pathlib import Path

from incontainer import sh, timed

REPO = Path(__file__).resolve().parents[2]
VERSION = "1.2.1.41024"


def main():
    with tempfile.TemporaryDirectory() as tmp:
        package = subprocess.run([str(REPO / "tests/fixtures/make-vendor-package.sh"), "--version", VERSION, tmp],
                                 check=True, capture_output=True, text=True).stdout.strip().splitlines()[-1]
        name = "aacraid-build-bench"
        subprocess.run(["docker", "rm", "-f", name], capture_output=True)
        subprocess.run(["docker", "run", "-d", "--name", name, "aacraid-lab:dracut"], check=True, capture_output=True)
        try:
            subprocess.run(["docker", "cp", package, f"{name}:/root/vendor.tgz"], check=True)
            subprocess.run(["docker", "cp", str(REPO / "library/aacraid_build"), f"{name}:/usr/local/bin/"], check=True)
            kernels = sh(name, "cat /etc/aacraid-lab/kernels").split()
            args = {"src": "/root/vendor.tgz", "kernels": kernels, "force": True, "artifacts_dir": "/root/artifacts"}
            sh(name, f"echo '{json.dumps(args)}' > /tmp/args.json")
            first, out1 = timed(name, "aacraid_build /tmp/args.json")
            second, out2 = timed(name, "aacraid_build /tmp/args.json")
            assert json.loads(out1)["changed"] is True and json.loads(out2)["changed"] is False
            builds = " && ".join(f"dkms build -m aacraid -v {VERSION} -k {k}" for k in kernels)
            plain, _ = timed(name, builds)
        finally:
            subprocess.run(["docker", "rm", "-f", name], capture_output=True)
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
