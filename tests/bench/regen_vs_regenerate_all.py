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

import json
import subprocess
import tempfile
from pathlib import Path

from incontainer import sh, timed

REPO = Path(__file__).resolve().parents[2]
VERSION = "1.2.1.41024"
MODULES = ("aacraid_build", "kmod_update", "initramfs_regen")


def module(container, name, **args):
    sh(container, f"echo '{json.dumps(args)}' > /tmp/{name}.json")
    seconds, out = timed(container, f"{name} /tmp/{name}.json")
    result = json.loads(out)
    assert not result.get("failed"), result
    return seconds, result


def main():
    name = "aacraid-regen-bench"
    with tempfile.TemporaryDirectory() as tmp:
        package = subprocess.run([str(REPO / "tests/fixtures/make-vendor-package.sh"), "--version", VERSION, tmp],
                                 check=True, capture_output=True, text=True).stdout.strip().splitlines()[-1]
        subprocess.run(["docker", "rm", "-f", name], capture_output=True)
        subprocess.run(["docker", "run", "-d", "--name", name, "aacraid-lab:dracut"], check=True, capture_output=True)
        try:
            subprocess.run(["docker", "cp", package, f"{name}:/root/vendor.tgz"], check=True)
            for m in MODULES:
                subprocess.run(["docker", "cp", str(REPO / "library" / m), f"{name}:/usr/local/bin/"], check=True)
            kernels = sh(name, "cat /etc/aacraid-lab/kernels").split()
            module(name, "aacraid_build", src="/root/vendor.tgz", kernels=kernels, state="built",
                   artifacts_dir="/root/artifacts")
            regenerate_all, _ = timed(name, "dracut --regenerate-all --force")
            idempotent, result = module(name, "initramfs_regen")
            assert result["changed"] is False, result
            module(name, "kmod_update", src=f"/root/artifacts/aacraid-{VERSION}-{kernels[0]}.tgz")
            one_stale, result = module(name, "initramfs_regen")
            assert [k["rebuilt"] for k in result["kernels"]] == [True, False], result
        finally:
            subprocess.run(["docker", "rm", "-f", name], capture_output=True)
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
