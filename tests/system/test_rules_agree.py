"""The modules' rules for a kernel release and a module name are mirrored
on the controller: in the roles' vars (checked before a value reaches a
`raw` line or a controller path), in the rollout playbook (checked on
what the servers report) and in the action plugin (checked before an
artifact is fetched). A mirror that drifts from the Rust rule lets a
hostile value through, or refuses a real kernel. Here each mirror and the
staged binaries judge the same candidates and must agree.

The binaries run on this machine, read-only: kmod_update in check mode
with `state: absent` (a bad release is refused while the options are
read; a good one then fails as not installed), raid_driver_facts with a
name and only the `loaded` facts."""

import importlib.util
import json
import re
import subprocess

import pytest
import yaml

from lablib import REPO

RELEASES = [
    "6.1.0-56-amd64", "3.10.0-229.11.1.el7.x86_64", "5.15.0-1+b1~bpo", "a", "...", "a..b", "-",
    "", ".", "..", "x;touch /tmp/pwned", "$(touch /tmp/pwned)", "x\n", "x\ny", "a b", "a/b",
    "x/../../secret", "é", "6.1\t", "~",
]
NAMES = ["aacraid", "smartpqi", "megaraid_sas", "mpt3sas", "a-b", "x" * 56, "x" * 57, "", "a.b", "a/b",
         "aacraid; rm -rf /", "..", "a\n", "é"]


def run_binary(binary, tmp_path, **options):
    args = tmp_path / "args.json"
    args.write_text(json.dumps(dict(options, _ansible_check_mode=True)))
    out = subprocess.run([REPO / "library" / binary, args], capture_output=True, text=True, check=False)
    return json.loads(out.stdout)


def rust_accepts_release(release, tmp_path):
    result = run_binary("kmod_update", tmp_path, state="absent", kernels=[release])
    assert result.get("failed") is True, result
    return "invalid kernel release" not in result["msg"]


def rust_accepts_name(name, tmp_path):
    result = run_binary("raid_driver_facts", tmp_path, name=name, gather_subset=["loaded"])
    return not (result.get("failed") and "invalid module name" in result["msg"])


def vars_pattern(role, key):
    return yaml.safe_load((REPO / "roles" / role / "vars" / "main.yml").read_text())[key]


def playbook_pattern():
    """The rollout's own copy, in the vars of the task that checks what
    the servers report."""
    def find(node):
        if isinstance(node, dict):
            if "__aacraid_pattern" in node:
                return node["__aacraid_pattern"]
            node = list(node.values())
        if isinstance(node, list):
            return next((found for found in map(find, node) if found is not None), None)
        return None
    pattern = find(yaml.safe_load((REPO / "playbooks/aacraid.yml").read_text()))
    assert pattern, "playbooks/aacraid.yml has no __aacraid_pattern"
    return pattern


def plugin():
    spec = importlib.util.spec_from_file_location("binary_module", REPO / "plugins/action/binary_module.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def python_accepts(pattern, value):
    """As the roles' `is match(pattern)` test judges it."""
    return re.match(pattern, value) is not None


@pytest.mark.parametrize("release", RELEASES)
def test_release_rule_mirrors_agree(release, tmp_path):
    rust = rust_accepts_release(release, tmp_path)
    mirrors = {
        "aacraid_build_host vars": python_accepts(
            vars_pattern("aacraid_build_host", "__aacraid_build_host_release_pattern"), release),
        "aacraid_server vars": python_accepts(vars_pattern("aacraid_server", "__aacraid_server_release_pattern"),
                                              release),
        "rollout playbook": python_accepts(playbook_pattern(), release),
        "transfer plugin": plugin().RELEASE.fullmatch(release) is not None,
    }
    assert mirrors == {k: rust for k in mirrors}, f"the Rust rule says {rust} for {release!r}"


@pytest.mark.parametrize("name", NAMES)
def test_name_rule_mirrors_agree(name, tmp_path):
    rust = rust_accepts_name(name, tmp_path)
    mirrors = {
        "aacraid_server vars": python_accepts(vars_pattern("aacraid_server", "__aacraid_server_name_pattern"), name),
        "transfer plugin": plugin().NAME.fullmatch(name) is not None,
    }
    assert mirrors == {k: rust for k in mirrors}, f"the Rust rule says {rust} for {name!r}"


def test_the_candidates_cover_both_verdicts(tmp_path):
    releases = {rust_accepts_release(r, tmp_path) for r in RELEASES}
    names = {rust_accepts_name(n, tmp_path) for n in NAMES}
    assert releases == {True, False} and names == {True, False}
