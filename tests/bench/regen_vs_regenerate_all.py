"""Benchmark: what the notes run, `dracut --regenerate-all --force`, against
initramfs_regen's idempotent run and its run when one of the two images is
stale, on one dracut lab container with two kernels, timed inside the
container (docker exec not counted).

The fixture driver is built for both kernels with aacraid_build (state
built, artifacts only); kmod_update then installs it for the first kernel,
which makes exactly that kernel's image stale. That stale image is kept
aside and put back (not timed) before each one-stale sample.

One warm-up run of each, then per round both cache states, in alternating
order from round to round, and within a state the three runs in
alternating order (regenerate-all, idempotent, one stale; then reversed):
- cold: the host's page cache is dropped before each run (sync; echo 3 >
  /proc/sys/vm/drop_caches; root needed). The container shares the host's
  kernel and so its page cache: modules, firmware, the images read back and
  dracut itself come from disk again;
- warm: no drop; every file was read by an earlier run.
Every run must exit 0 (a failed regenerate-all is an error, not a sample),
the idempotent run must report no change and the one-stale run must
rebuild exactly the first kernel's image.

Targets (kept from the first version of this benchmark), for each cache
state, medians of the same run: the idempotent run at least 50 times faster
than regenerate-all; the one-stale run at most 0.6 of regenerate-all (one of
two images to build, plus reading both).

Usage (from the repository root, after `make build` and the lab images):
    .venv/core-latest/bin/python tests/bench/regen_vs_regenerate_all.py [--rounds N] [--report-only]
"""

import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchlib import Samples, Target, alternated, drop_caches, finish, parse_args, print_table, ratio  # noqa: E402
from lablib import VENDOR_VERSION, Lab, make_vendor_package  # noqa: E402

ALL = "`dracut --regenerate-all --force` (the notes)"
IDEMPOTENT = "initramfs_regen, both images current (idempotent)"
ONE_STALE = "initramfs_regen, one of two images stale"


def main():
    args = parse_args(__doc__)
    samples = Samples()
    with tempfile.TemporaryDirectory() as tmp, Lab("dracut", prefix="aacraid-regen-bench") as lab:
        lab.debian_dracut()
        package = make_vendor_package(tmp)
        lab.put(package, "/root/vendor.tgz")
        kernels = lab.kernels
        lab.timed_module("aacraid_build", src="/root/vendor.tgz", kernels=kernels, state="built",
                         artifacts_dir="/root/artifacts")
        lab.timed_module("kmod_update", src=f"/root/artifacts/aacraid-{VENDOR_VERSION}-{kernels[0]}.tgz")
        image = f"/boot/initrd.img-{kernels[0]}"
        lab.sh(f"cp -a {image} /root/stale.img")

        def regenerate_all():
            lab.sh(f"cp -a /root/stale.img {image}")
            return lab.timed("dracut --regenerate-all --force")[0]

        def idempotent():
            seconds, result = lab.timed_module("initramfs_regen")
            assert result["changed"] is False, result
            return seconds

        def one_stale():
            lab.sh(f"cp -a /root/stale.img {image}")
            seconds, result = lab.timed_module("initramfs_regen")
            assert [k["rebuilt"] for k in result["kernels"]] == [True, False], result
            return seconds

        # Each order leaves both images current before the idempotent run.
        runs = [(ALL, regenerate_all), (IDEMPOTENT, idempotent), (ONE_STALE, one_stale)]
        for _, run in runs:  # warm-up
            run()
        for r in range(args.rounds):
            for cache in alternated(["cold", "warm"], r):
                for label, run in alternated(runs, r):
                    if cache == "cold":
                        drop_caches()
                    samples.add((label, cache), run())

    print_table(f"initramfs images of kernels {' '.join(kernels)} (dracut), seconds inside the container, "
                f"{args.rounds} rounds", samples, columns=("run", "cache"), key_of=lambda row: row,
                extra=[("median vs regenerate-all", lambda row: f"{ratio(row, (ALL, row[1]))(samples):.3f}")])
    targets = []
    for cache in ("cold", "warm"):
        targets.append(Target(f"{cache}: regenerate-all / idempotent (speed-up)",
                              ratio((ALL, cache), (IDEMPOTENT, cache)), ">=", 50))
        targets.append(Target(f"{cache}: one stale / regenerate-all", ratio((ONE_STALE, cache), (ALL, cache)),
                              "<=", 0.6))
    finish(samples, targets, args)


if __name__ == "__main__":
    main()
