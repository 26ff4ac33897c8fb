"""Shared fixtures of the system tests: the lab containers (Debian 12 with
two real kernels, no Python), and a runner for real ansible-core releases.

The tests expect `make build` (staged modules in library/) and the lab
images (tests/lab/build-image.sh) to exist; `make system` provides both.
"""

import json
import os
import subprocess
import uuid
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
VARIANTS = ("dracut", "initramfs-tools")
# The fixture driver: DKMS package version, and the MODULE_VERSION its module reports.
VENDOR_VERSION = "1.2.1.41024"
MODULE_VERSION = "1.2-1.41024dkms"
BROKEN_VERSION = "9.9.9"
# ansible-core releases under test: the newest pip resolves on Python 3.11,
# and 2.16, the last that still runs Python modules on CentOS 7.
ANSIBLE = {
    "core-latest": REPO / ".venv/core-latest/bin",
    "core-2.16": REPO / ".venv/core-2.16/bin",
}


def docker(*args, check=True):
    return subprocess.run(["docker", *args], check=check, capture_output=True, text=True)


class Lab:
    """One running lab container."""

    def __init__(self, variant, *docker_args):
        self.variant = variant
        self.name = f"rdf-test-{variant}-{uuid.uuid4().hex[:6]}"
        docker("run", "-d", "--name", self.name, *docker_args, f"aacraid-lab:{variant}")
        self.kernels = self.sh("cat /etc/aacraid-lab/kernels").split()
        self.copied = set()

    def put(self, source, dest):
        """Copies a file of this machine into the container."""
        docker("cp", str(source), f"{self.name}:{dest}")

    def module(self, binary, /, check_mode=False, diff=False, **options):
        """Runs one of our module binaries (from library/) in the container
        the way Ansible does: an args file in, one JSON object out; checks
        that the exit code agrees with `failed`. (`binary` is positional
        only: `name` is an option of our modules.)"""
        if binary not in self.copied:
            self.put(REPO / "library" / binary, f"/usr/local/bin/{binary}")
            self.copied.add(binary)
        args = json.dumps({**options, "_ansible_check_mode": check_mode, "_ansible_diff": diff})
        args_file = f"/tmp/args-{uuid.uuid4().hex[:8]}.json"
        self.sh(f"cat > {args_file} <<'EOF'\n{args}\nEOF")
        out = docker("exec", self.name, f"/usr/local/bin/{binary}", args_file, check=False)
        self.sh(f"rm -f {args_file}")
        result = json.loads(out.stdout)
        assert (out.returncode == 1) == result.get("failed", False), out
        return result

    def sh(self, script, check=True):
        """Runs a shell script in the container; returns stdout."""
        out = docker("exec", self.name, "sh", "-c", script, check=False)
        if check and out.returncode != 0:
            raise AssertionError(f"{script!r} failed ({out.returncode}): {out.stderr}")
        return out.stdout

    def remove(self):
        docker("rm", "-f", self.name, check=False)


@pytest.fixture(scope="session", params=VARIANTS)
def lab(request):
    container = Lab(request.param)
    yield container
    container.remove()


@pytest.fixture(scope="session")
def dracut_lab():
    container = Lab("dracut")
    yield container
    container.remove()


@pytest.fixture(scope="session")
def vendor_packages(tmp_path_factory):
    """The fixture vendor package (tests/fixtures/make-vendor-package.sh):
    `good` builds, `broken` fails to compile."""
    out = tmp_path_factory.mktemp("vendor")
    make = REPO / "tests/fixtures/make-vendor-package.sh"
    good = subprocess.run(
        [str(make), "--version", VENDOR_VERSION, "--module-version", MODULE_VERSION, str(out / "good")],
        check=True, capture_output=True, text=True,
    ).stdout.strip().splitlines()[-1]
    broken = subprocess.run(
        [str(make), "--version", BROKEN_VERSION, "--broken", str(out / "broken")],
        check=True, capture_output=True, text=True,
    ).stdout.strip().splitlines()[-1]
    return {"good": good, "broken": broken}


@pytest.fixture(scope="session")
def artifacts(vendor_packages, tmp_path_factory):
    """kernel release → path on this machine of the artifact aacraid_build
    wrote for it, built with real DKMS in a dracut lab container."""
    out = tmp_path_factory.mktemp("artifacts")
    builder = Lab("dracut")
    try:
        builder.put(vendor_packages["good"], "/root/good.tgz")
        result = builder.module(
            "aacraid_build", src="/root/good.tgz", kernels=["all"], state="built", artifacts_dir="/root/artifacts"
        )
        assert result["changed"] is True, result
        docker("cp", f"{builder.name}:/root/artifacts/.", str(out))
        return {k: out / f"aacraid-{VENDOR_VERSION}-{k}.tgz" for k in builder.kernels}
    finally:
        builder.remove()


def inventory(tmp_path, lab_container=None):
    """An inventory with `localhost` (local connection) and, when given, the
    lab container as `lab` over community.docker's docker connection."""
    lines = ["localhost ansible_connection=local"]
    if lab_container is not None:
        lines.append(f"lab ansible_connection=community.docker.docker ansible_host={lab_container.name}")
    path = tmp_path / "inventory.ini"
    path.write_text("\n".join(lines) + "\n")
    return path


def run_ansible(version, program, *args, check=True):
    """Runs `ansible` or `ansible-playbook` of one venv from the repository
    root (so ansible.cfg's library applies) with the JSON callback; returns
    the parsed output."""
    env = dict(os.environ)
    env.update(
        ANSIBLE_CONFIG=str(REPO / "ansible.cfg"),
        ANSIBLE_STDOUT_CALLBACK="json",
        ANSIBLE_LOAD_CALLBACK_PLUGINS="1",
        ANSIBLE_NOCOLOR="1",
        PATH=f"{ANSIBLE[version]}:{env['PATH']}",
    )
    proc = subprocess.run(
        [str(ANSIBLE[version] / program), *map(str, args)],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
    )
    if check and proc.returncode != 0:
        raise AssertionError(f"{program} {args} failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
    start = proc.stdout.find("{")
    return json.loads(proc.stdout[start:]), proc


def task_results(output, task_index=0):
    """Host → result of one task of the first play."""
    return output["plays"][0]["tasks"][task_index]["hosts"]
