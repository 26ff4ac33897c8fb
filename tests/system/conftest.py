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

    def __init__(self, variant):
        self.variant = variant
        self.name = f"rdf-test-{variant}-{uuid.uuid4().hex[:6]}"
        docker("run", "-d", "--name", self.name, f"aacraid-lab:{variant}")
        self.kernels = self.sh("cat /etc/aacraid-lab/kernels").split()

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
