"""Benchmark: aacraid_build's first build for the two lab kernels, its
idempotent second run, and a plain `dkms build` of the same already-built
module, timed inside one lab container (docker exec not counted).

Each round removes the version (state=absent, artifacts deleted, not timed)
and then measures the three runs twice, once per cache state, the states in
alternating order from round to round:
- cold: the host's page cache is dropped before each run (sync; echo 3 >
  /proc/sys/vm/drop_caches; root needed). The container shares the host's
  kernel and so its page cache: the kernel headers, dkms, gcc and the image
  layers are read from disk again;
- warm: the same runs right after the round's other runs or the warm-up
  round (one unsampled first build, second run and plain build).
Every run must succeed; the first build must report changed, the second not.

Target (kept from the first version of this benchmark): the idempotent run
costs at most 1/10 of the first build, checked for each cache state
(median over median, same run). The plain `dkms build` row is for reading
only: what dkms itself charges to find a module already built.

Usage (from the repository root, after `make build` and the lab images):
    .venv/core-latest/bin/python tests/bench/build_idempotence.py [--rounds N] [--report-only]
"""

import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchlib import Samples, Target, alternated, drop_caches, finish, parse_args, print_table, ratio  # noqa: E402
from lablib import VENDOR_VERSION, Lab, make_vendor_package  # noqa: E402

FIRST = "first build (add, build, install, 2 artifacts)"
SECOND = "idempotent second run"
PLAIN = "plain `dkms build` of the built module, both kernels"


def main():
    args = parse_args(__doc__)
    samples = Samples()
    with tempfile.TemporaryDirectory() as tmp, Lab("dracut", prefix="aacraid-build-bench") as lab:
        package = make_vendor_package(tmp)
        lab.put(package, "/root/vendor.tgz")
        kernels = lab.kernels
        build = {"src": "/root/vendor.tgz", "kernels": kernels, "force": True, "artifacts_dir": "/root/artifacts"}
        plain = " && ".join(f"dkms build -m aacraid -v {VENDOR_VERSION} -k {k}" for k in kernels)

        def reset():
            lab.module("aacraid_build", name="aacraid", version=VENDOR_VERSION, kernels=[], state="absent")
            lab.sh("rm -rf /root/artifacts")

        def measure(cache):
            reset()
            for label, run in [(FIRST, lambda: lab.timed_module("aacraid_build", **build)),
                               (SECOND, lambda: lab.timed_module("aacraid_build", **build)),
                               (PLAIN, lambda: (lab.timed(plain)[0], None))]:
                if cache == "cold":
                    drop_caches()
                seconds, result = run()
                if label != PLAIN:
                    assert result["changed"] is (label == FIRST), (label, result)
                if cache is not None:
                    samples.add((label, cache), seconds)

        measure(None)  # warm-up, not sampled
        for r in range(args.rounds):
            for cache in alternated(["cold", "warm"], r):
                measure(cache)

    print_table(f"aacraid_build, kernels {' '.join(kernels)}, seconds inside the container, {args.rounds} rounds",
                samples, columns=("run", "cache"), key_of=lambda row: row,
                extra=[("median vs first build", lambda row: f"{ratio(row, (FIRST, row[1]))(samples):.3f}")])
    finish(samples, [Target(f"{cache}: idempotent run / first build", ratio((SECOND, cache), (FIRST, cache)), "<=", 0.1)
                     for cache in ("cold", "warm")], args)

if __name__ == "__main__":
    main()
