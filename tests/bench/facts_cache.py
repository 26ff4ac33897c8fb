"""Benchmark: a full raid_driver_facts gather (two kernels, two images) with
the image cache warm (images and module trees served from it), without it
(every image decoded, every module tree walked), and by the build of
an earlier revision (the decoder and the module as they were before the
image cache), in both lab variants (dracut: gzip images; initramfs-tools:
zstd), in one run.

The earlier build is made from `--baseline` (a git revision, default the
last commit before the image cache) in a temporary git worktree, with its own
target folder. Each row runs the binary inside the lab container (`date`
around it, so neither docker exec nor the controller is counted), from an args
file as Ansible would, and checks its result. Page cache: the images are read
once before sampling, so every row reads them from memory; what differs is
the decoding. Order alternates per round (as listed, then reversed).

Targets (issue 14, item 2), per variant, medians of this run:
- warm: a full gather with the cache warm takes at most 0.150 s;
- cold: a gather that decodes every image takes at most half the time the
  earlier build takes.

Usage (from the repository root, after `make build` and the lab images):
    .venv/core-latest/bin/python tests/bench/facts_cache.py [--rounds N] [--baseline REV] [--report-only]
"""

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchlib import Samples, Target, alternated, finish, parse_args, print_table, ratio  # noqa: E402
from lablib import REPO, VARIANTS, Lab  # noqa: E402

# The last commit before the image cache and the zlib-rs gzip decoder.
BASELINE = "830308a"
MUSL = "x86_64-unknown-linux-musl"

EARLIER = "earlier build, every image decoded"
COLD = "this build, no image cache (every image decoded)"
WARM = "this build, image cache warm"


def build_baseline(revision, folder):
    """Path of raid_driver_facts built from `revision` in a worktree under `folder`."""
    tree = folder / "tree"
    subprocess.run(["git", "-C", str(REPO), "worktree", "add", "--detach", "-q", str(tree), revision], check=True)
    try:
        subprocess.run(["cargo", "build", "-q", "--release", "--locked", "--target", MUSL, "-p", "raid_driver_facts"],
                       cwd=tree, check=True, env=dict(os.environ, CARGO_TARGET_DIR=str(REPO / "target/bench-baseline")))
    finally:
        subprocess.run(["git", "-C", str(REPO), "worktree", "remove", "--force", str(tree)], check=True)
    return REPO / "target/bench-baseline" / MUSL / "release/raid_driver_facts"


def served(out):
    """How many images and module trees a gather's result says came from the
    cache (trees: None for a build that does not report it)."""
    result = json.loads(out)
    if result.get("failed"):
        sys.exit(f"the gather failed: {result.get('msg')}")
    kernels = result["ansible_facts"]["raid_driver"]["kernels"]
    images = sum(k["initramfs"].get("from_cache") is True for k in kernels)
    if any("copies_from_cache" not in k for k in kernels):
        return images, None
    return images, sum(k["copies_from_cache"] is True for k in kernels)


def main():
    args = parse_args(__doc__, lambda p: p.add_argument("--baseline", default=BASELINE,
                                                        help=f"git revision of the earlier build (default {BASELINE})"))
    samples = Samples()
    with tempfile.TemporaryDirectory() as tmp:
        earlier = build_baseline(args.baseline, Path(tmp))
        for variant in VARIANTS:
            with Lab(variant, prefix="rdf-bench") as lab:
                lab.put(earlier, "/usr/local/bin/raid_driver_facts-earlier")
                current = lab.install("raid_driver_facts")
                runs = {
                    EARLIER: f"/usr/local/bin/raid_driver_facts-earlier {lab.args_file('raid_driver_facts')}",
                    COLD: f"{current} {lab.args_file('raid_driver_facts', image_cache='')}",
                    WARM: f"{current} {lab.args_file('raid_driver_facts')}",
                }
                lab.sh("cat /boot/initrd.img-* > /dev/null")
                lab.timed(runs[WARM])  # fills the cache
                for r in range(args.rounds):
                    for row in alternated(runs, r):
                        seconds, out = lab.timed(runs[row])
                        cached = served(out)
                        expected = len(lab.kernels) if row == WARM else 0
                        if cached != (expected, expected if row != EARLIER else None):
                            sys.exit(f"{row} in {variant}: (images, module trees) from the cache {cached}, "
                                     f"expected {expected} each:\n{out[-2000:]}")
                        samples.add((variant, row), seconds)

    print_table(f"A full gather, two kernels, {args.rounds} rounds (seconds inside the container; "
                f"earlier build: {args.baseline})", samples, columns=("variant", "gather"),
                key_of=lambda row: row, digits=3)
    targets = []
    for variant in VARIANTS:
        targets.append(Target(f"{variant}: warm gather, seconds", lambda s, v=variant: s.median((v, WARM)),
                              "<=", 0.150))
        targets.append(Target(f"{variant}: cold gather / earlier build", ratio((variant, COLD), (variant, EARLIER)),
                              "<=", 0.5))
    finish(samples, targets, args)


if __name__ == "__main__":
    main()
