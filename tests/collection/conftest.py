"""Fixtures of the collection test: the tarball built once per run from this
checkout (tools/build-collection.sh, binaries from library/: `make build`
first), and the fixture vendor package. tests/lablib.py is put on sys.path
for the test file."""

import subprocess
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from lablib import REPO, make_vendor_package  # noqa: E402

# Controllers with nothing but ansible-core (tests/tool-venvs.txt): the oldest release the
# collection supports (meta/runtime.yml) and the newest for this Python.
CONTROLLERS = {"2.16": REPO / ".venv/only-core-2.16/bin", "newest": REPO / ".venv/only-core-latest/bin"}
TOOLS = REPO / ".venv/collection-tools/bin"


def galaxy_version():
    for line in (REPO / "collection/galaxy.yml").read_text().splitlines():
        if line.startswith("version:"):
            return line.split(":", 1)[1].strip()
    raise AssertionError("collection/galaxy.yml has no version")


@pytest.fixture(scope="session")
def tarball(tmp_path_factory):
    """The built collection tarball (binaries included), as `make collection` makes it."""
    out = tmp_path_factory.mktemp("collection")
    subprocess.run([str(REPO / "tools/build-collection.sh"), "--tarball", str(out / "dist"), str(out / "stage")],
                   check=True, cwd=REPO, capture_output=True,
                   env={"PATH": f"{CONTROLLERS['newest']}:/usr/bin:/bin", "HOME": str(out)})
    path = out / "dist" / f"raidfleet-driver_rollout-{galaxy_version()}.tar.gz"
    assert path.is_file(), sorted((out / "dist").iterdir())
    return path


@pytest.fixture(scope="session")
def vendor_package(tmp_path_factory):
    return make_vendor_package(tmp_path_factory.mktemp("vendor"))
