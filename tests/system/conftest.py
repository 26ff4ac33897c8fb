"""Shared fixtures of the system tests: the lab containers (Debian 12 with
two real kernels, no Python), the fixture vendor packages and the artifacts
built from them. The helpers themselves live in tests/lablib.py, which this
file puts on sys.path for the test files.

The tests expect `make build` (staged modules in library/) and the lab
images (tests/lab/build-image.sh) to exist; `make system` provides both.
"""

import fcntl
import json
import os
import shutil
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from lablib import BROKEN_VERSION, VARIANTS, VENDOR_VERSION, Lab, make_vendor_package  # noqa: E402


@pytest.fixture(scope="session", params=VARIANTS)
def lab(request):
    with Lab(request.param) as container:
        yield container


@pytest.fixture(scope="session")
def dracut_lab():
    with Lab("dracut") as container:
        yield container


def made_once(tmp_path_factory, name, make):
    """What `make(folder)` returns (JSON), made once per test run: under
    pytest-xdist the first worker to ask makes it in a folder all workers
    share, the others wait on a lock and read the result. The things made
    are files; nothing a test changes is shared this way."""
    root = tmp_path_factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER"):
        root = root.parent
    folder = root / f"shared-{name}"
    with open(root / f"shared-{name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        done = root / f"shared-{name}.json"
        if not done.exists():
            shutil.rmtree(folder, ignore_errors=True)  # a failed try of an earlier worker
            folder.mkdir()
            done.write_text(json.dumps(make(folder)))
        return json.loads(done.read_text())


@pytest.fixture(scope="session")
def vendor_packages(tmp_path_factory):
    """Paths (strings) of the fixture vendor package
    (tests/fixtures/make-vendor-package.sh): `good` builds, `broken` fails
    to compile."""

    def make(out):
        return {
            "good": make_vendor_package(out / "good"),
            "broken": make_vendor_package(out / "broken", BROKEN_VERSION, module_version=None, broken=True),
        }

    return made_once(tmp_path_factory, "vendor", make)


@pytest.fixture(scope="session")
def artifacts(vendor_packages, tmp_path_factory):
    """kernel release → path on this machine of the artifact aacraid_build
    wrote for it, built with real DKMS in a dracut lab container."""

    def make(out):
        with Lab("dracut") as builder:
            builder.put(vendor_packages["good"], "/root/good.tgz")
            result = builder.module(
                "aacraid_build", src="/root/good.tgz", kernels=["all"], state="built", artifacts_dir="/root/artifacts"
            )
            assert result["changed"] is True, result
            builder.get("/root/artifacts/.", out)
            return {k: str(out / f"aacraid-{VENDOR_VERSION}-{k}.tgz") for k in builder.kernels}

    return {kernel: Path(path) for kernel, path in made_once(tmp_path_factory, "artifacts", make).items()}
