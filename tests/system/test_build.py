"""The staged modules are what Ansible will copy to every host on every
task: static x86_64 executables of at most 1 MiB, each with its sidecar
documentation, readable by ansible-doc."""

import json
import os
import subprocess
from pathlib import Path

import pytest

from lablib import ANSIBLE, REPO

LIMIT = 1024 * 1024
MODULES = sorted(p.parent.name for p in (REPO / "modules").glob("*/*.yml"))


def test_every_module_is_staged():
    assert MODULES, "no module sidecars found"
    staged = sorted(p.name for p in (REPO / "library").iterdir() if not p.name.endswith(".yml"))
    assert staged == MODULES


@pytest.mark.parametrize("module", MODULES)
def test_static_and_small(module):
    binary = REPO / "library" / module
    assert binary.stat().st_size <= LIMIT, f"{module} is {binary.stat().st_size} bytes"
    with open(binary, "rb") as f:
        head = f.read(64)
    assert head[:4] == b"\x7fELF" and head[4] == 2, "a 64-bit ELF"
    description = subprocess.run(["file", "-b", str(binary)], capture_output=True, text=True, check=True).stdout
    assert "statically linked" in description, description
    assert "interpreter" not in description, description


@pytest.mark.parametrize("module", MODULES)
@pytest.mark.parametrize("version", sorted(ANSIBLE))
def test_ansible_doc_reads_the_sidecar(module, version):
    out = subprocess.run(
        [str(ANSIBLE[version] / "ansible-doc"), "--json", module],
        cwd=REPO, capture_output=True, text=True, check=True,
    ).stdout
    doc = json.loads(out)[module]["doc"]
    assert doc["module"] == module
    assert set(doc["attributes"]) >= {"check_mode", "diff_mode", "action", "platform"}
    # A ": " inside a list item makes YAML read a mapping, which the text view cannot print.
    assert doc["requirements"] and all(isinstance(r, str) for r in doc["requirements"]), doc["requirements"]
    # What a user types: the text view renders.
    text = subprocess.run([str(ANSIBLE[version] / "ansible-doc"), module], cwd=REPO, capture_output=True, text=True)
    assert text.returncode == 0 and module in text.stdout, text.stderr


def test_a_panic_in_a_release_build_is_a_failed_result(tmp_path):
    """Release builds abort on panic; the entry point's hook must still
    print one failed JSON object and exit 1 (examples/panicking.rs)."""
    subprocess.run(
        ["cargo", "build", "--release", "--locked", "--target", "x86_64-unknown-linux-musl",
         "-p", "ansible_protocol", "--example", "panicking"],
        cwd=REPO, check=True, capture_output=True,
    )
    args = tmp_path / "args.json"
    args.write_text("{}")
    target = Path(os.environ.get("CARGO_TARGET_DIR") or REPO / "target")
    binary = target / "x86_64-unknown-linux-musl/release/examples/panicking"
    proc = subprocess.run([str(binary), str(args)], capture_output=True, text=True)
    assert proc.returncode == 1
    assert len(proc.stdout.splitlines()) == 1, proc.stdout
    result = json.loads(proc.stdout)
    assert result["failed"] is True and result["changed"] is False
    assert result["msg"].startswith("internal error in module panicking: deliberate panic for the test (at ")
