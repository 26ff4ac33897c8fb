"""Shared fixtures of the system tests: the lab containers (Debian 12 with
two real kernels, no Python), the fixture vendor packages and the artifacts
built from them. The helpers themselves live in tests/lablib.py, which this
file puts on sys.path for the test files.

The tests expect `make build` (staged modules in library/) and the lab
images (tests/lab/build-image.sh) to exist; `make system` provides both.
"""

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


@pytest.fixture(scope="session")
def vendor_packages(tmp_path_factory):
    """The fixture vendor package (tests/fixtures/make-vendor-package.sh):
    `good` builds, `broken` fails to compile."""
    out = tmp_path_factory.mktemp("vendor")
    return {
        "good": make_vendor_package(out / "good"),
        "broken": make_vendor_package(out / "broken", BROKEN_VERSION, module_version=None, broken=True),
    }


@pytest.fixture(scope="session")
def artifacts(vendor_packages, tmp_path_factory):
    """kernel release → path on this machine of the artifact aacraid_build
    wrote for it, built with real DKMS in a dracut lab container."""
    out = tmp_path_factory.mktemp("artifacts")
    with Lab("dracut") as builder:
        builder.put(vendor_packages["good"], "/root/good.tgz")
        result = builder.module(
            "aacraid_build", src="/root/good.tgz", kernels=["all"], state="built", artifacts_dir="/root/artifacts"
        )
        assert result["changed"] is True, result
        builder.get("/root/artifacts/.", out)
        return {k: out / f"aacraid-{VENDOR_VERSION}-{k}.tgz" for k in builder.kernels}
