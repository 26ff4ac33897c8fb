"""The collection raidfleet.driver_rollout as a user gets it (issue 15).

- Installed: the tarball goes into an empty collections path (a fresh HOME)
  of a controller holding nothing but ansible-core, 2.16 and the newest, and
  is used from a folder outside the repository with no ansible.cfg:
  `ansible-doc -l`, `ansible-doc` of a module and of a role, the facts module
  ad hoc, and the rollout playbook by its collection name over SSH against a
  build host and a server in lab containers, by 2.16 and then by the newest
  from the same folder (which changes nothing).
- `ansible-test sanity` of the newest ansible-core on the collection's tree,
  which holds everything but the binaries (it reads every file as text).
- The changelog passes `antsibull-changelog lint`; the execution environment's
  build context (`ansible-builder create`) carries the tarball and installs it.
"""

import contextlib
import json
import os
import re
import shutil
import subprocess
import tempfile

import pytest
from conftest import CONTROLLERS, TOOLS, galaxy_version
from lablib import MODULE_VERSION, REPO, Lab, LoginKey

MODULES = ["aacraid_build", "initramfs_regen", "kmod_update", "raid_driver_facts"]
FQCN = "raidfleet.driver_rollout"


def user(folder, home, controller):
    """A sysadmin's shell: this controller's ansible first on PATH, a HOME of
    their own (so ~/.ansible/collections starts empty; short, as ssh's
    ControlPath sockets under it must be), no ANSIBLE_* setting, in a folder
    outside the repository."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("ANSIBLE_") and k not in ("PYTHONPATH",)}
    env.update(PATH=f"{controller}:/usr/sbin:/usr/bin:/sbin:/bin", HOME=str(home), ANSIBLE_NOCOLOR="1")

    def run(*args, check=True):
        proc = subprocess.run([str(a) for a in args], cwd=folder, env=env, capture_output=True, text=True)
        if check and proc.returncode != 0:
            raise AssertionError(f"{args} failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
        return proc

    return run


def ad_hoc_facts(run, *args):
    """The raid_driver facts of server1, by the module's collection name, read from the
    built-in minimal callback's `server1 | SUCCESS => {...}` (a controller with only
    ansible-core has no json callback)."""
    out = run("ansible", "-i", "inventory.ini", "server1", "-m", f"{FQCN}.raid_driver_facts", *args).stdout
    head, _, result = out.partition(" => ")
    assert head.strip().startswith("server1 | SUCCESS"), out
    return json.loads(result)["ansible_facts"]["raid_driver"]


def recap(out):
    """host → {ok, changed, failed, ...} from the default callback's PLAY RECAP."""
    counts = {}
    for line in out.split("PLAY RECAP", 1)[1].splitlines():
        m = re.match(r"(\S+)\s+:\s+(.*)", line.strip())
        if m:
            counts[m.group(1)] = {k: int(v) for k, v in re.findall(r"(\w+)=(\d+)", m.group(2))}
    return counts


@contextlib.contextmanager
def installed(tmp_path, controller, tarball, folder=None):
    """The user's folder (`folder`, default a new one) and shell, with the collection
    installed as the README says into a HOME of this shell's own."""
    folder = folder or tmp_path / "user"
    folder.mkdir(exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="coll-home-") as home:
        run = user(folder, home, controller)
        out = run("ansible-galaxy", "collection", "install", tarball)
        assert f"{FQCN}:{galaxy_version()} was installed successfully" in out.stdout, out.stdout
        yield folder, run


@pytest.mark.parametrize("controller", list(CONTROLLERS))
def test_the_installed_collection_documents_its_modules_and_roles(controller, tarball, tmp_path):
    with installed(tmp_path, CONTROLLERS[controller], tarball) as (_, run):
        check_docs(run)


def check_docs(run):
    listing = run("ansible-doc", "-l", FQCN)
    listed = {line.split()[0] for line in listing.stdout.splitlines() if line.strip()}
    assert listed == {f"{FQCN}.{m}" for m in MODULES + ["raw_reboot"]}, listing.stdout
    assert "WARNING" not in listing.stderr and "ERROR" not in listing.stderr, listing.stderr

    doc = " ".join(run("ansible-doc", f"{FQCN}.kmod_update").stdout.split())
    assert "The server's half of a driver rollout, for hosts without DKMS or a compiler" in doc
    assert "expected_version" in doc and f"{FQCN}.kmod_update:" in doc, doc[-2000:]

    for role, required in (("aacraid_server", "aacraid_server_package_version"),
                           ("aacraid_build_host", "aacraid_build_host_package")):
        doc = " ".join(run("ansible-doc", "-t", "role", f"{FQCN}.{role}").stdout.split())
        assert required in doc and "raidfleet maintainers" in doc, doc


def test_the_installed_collection_rolls_the_driver_out_over_ssh(tarball, vendor_package, tmp_path):
    """The oldest controller rolls the driver out; then the newest, with the collection
    installed in a HOME of its own and run from the same folder (a controller upgraded in
    place), finds nothing to change. One lab for both: a rollout costs a DKMS build and an
    image rebuild per kernel."""
    with installed(tmp_path, CONTROLLERS["2.16"], tarball) as (folder, oldest), \
            installed(tmp_path, CONTROLLERS["newest"], tarball, folder=folder) as (_, newest):
        check_rollout(folder, oldest, newest, vendor_package, tmp_path)


def check_rollout(folder, run, upgraded, vendor_package, tmp_path):
    key = LoginKey(tmp_path)
    with Lab("dracut", *key.docker_args(), prefix="coll-build") as builder, \
            Lab("initramfs-tools", *key.docker_args(), prefix="coll-server") as server:
        (folder / "inventory.ini").write_text("\n".join([
            "[build_hosts]", f"builder ansible_host={key.trust(builder)}",
            "[raid_servers]", f"server1 ansible_host={key.trust(server)}",
            "[all:vars]", *key.inventory_vars(), ""]))

        before = ad_hoc_facts(run)
        assert sorted(k["release"] for k in before["kernels"]) == sorted(server.kernels)
        assert all(k["resolved"]["version"] != MODULE_VERSION for k in before["kernels"]), before["kernels"]

        rollout = ("ansible-playbook", "-i", "inventory.ini", f"{FQCN}.aacraid",
                   "-e", f"aacraid_build_host_package={vendor_package}",
                   "-e", f"aacraid_server_driver_version={MODULE_VERSION}")
        first = recap(run(*rollout).stdout)
        assert first["server1"]["changed"] > 0 and first["server1"]["failed"] == 0, first
        # The artifacts land in the folder ansible-playbook ran from, not in the installed collection.
        fetched = sorted(p.name for p in (folder / "aacraid-artifacts").iterdir())
        assert fetched == sorted(f"aacraid-{version_of(vendor_package)}-{k}.tgz" for k in server.kernels), fetched

        after = ad_hoc_facts(run, "-a", json.dumps({"gather_subset": ["modules", "initramfs"]}))
        for k in after["kernels"]:
            assert k["resolved"]["version"] == MODULE_VERSION, k
            assert k["initramfs"]["matches_resolved"] is True, k["initramfs"]

        # The fleet report, in the same folder: one row per server.
        [row] = json.loads((folder / "aacraid-report.json").read_text())
        assert row["host"] == "server1" and row["status"] == "ok" and row["failure"] == "", row
        assert {k["release"]: (k["resolves"], k["image_carries"]) for k in row["kernels"]} == \
            {k: (MODULE_VERSION, True) for k in server.kernels}, row
        csv = (folder / "aacraid-report.csv").read_text().splitlines()
        assert csv[0] == "host,status,kernels,resolves,image_carries,loaded,reboot,failure"
        assert csv[1].startswith('"server1","ok",'), csv

        second = recap(upgraded(*rollout).stdout)
        assert {h: c["changed"] for h, c in second.items()} == {"builder": 0, "server1": 0}, second
        assert all(k["resolved"]["version"] == MODULE_VERSION for k in ad_hoc_facts(upgraded)["kernels"])


def version_of(package):
    """The vendor package's version, from its file name (aacraid-dkms-<version>.tgz)."""
    return re.fullmatch(r"aacraid-dkms-(.+)\.tgz", os.path.basename(package)).group(1)


def test_ansible_test_sanity_passes_on_the_collection_tree(tmp_path):
    subprocess.run([str(REPO / "tools/build-collection.sh"), "--no-binaries", str(tmp_path)], check=True, cwd=REPO)
    tree = tmp_path / "ansible_collections/raidfleet/driver_rollout"
    proc = subprocess.run([str(CONTROLLERS["newest"] / "ansible-test"), "sanity", "--venv", "--python", "3.11",
                           "--color", "no"], cwd=tree, capture_output=True, text=True,
                          env=dict(os.environ, PATH=f"{CONTROLLERS['newest']}:{os.environ['PATH']}"))
    errors = [line for line in (proc.stdout + proc.stderr).splitlines() if line.startswith(("ERROR", "FATAL"))]
    assert proc.returncode == 0, "\n".join(errors) or proc.stderr[-3000:]
    ran = set(re.findall(r'Running sanity test "([a-z0-9-]+)"', proc.stdout + proc.stderr))
    assert {"validate-modules", "ansible-doc", "import", "pylint", "pep8", "yamllint", "changelog",
            "action-plugin-docs", "runtime-metadata", "shebang", "symlinks"} <= ran, sorted(ran)
    assert "due to missing" not in proc.stdout + proc.stderr, proc.stdout + proc.stderr


def test_the_changelog_passes_its_lint():
    proc = subprocess.run([str(TOOLS / "antsibull-changelog"), "lint"], cwd=REPO / "collection", capture_output=True,
                          text=True)
    assert proc.returncode == 0 and not proc.stdout.strip(), proc.stdout + proc.stderr
    assert f"v{galaxy_version()}".replace(".", "\\.") in (REPO / "collection/CHANGELOG.md").read_text()


def test_the_execution_environment_context_installs_the_collection(tarball, tmp_path):
    """`ansible-builder create` on execution-environment.yml, beside the
    tarball as `make collection` leaves it; then the context's galaxy
    requirements installed as the image's galaxy stage does, with the context's
    copy of the tarball (the image itself cannot be built here: no registry)."""
    work = tmp_path / "repo"
    (work / "dist").mkdir(parents=True)
    shutil.copy(tarball, work / "dist")
    shutil.copy(REPO / "execution-environment.yml", work)
    shutil.copytree(REPO / "ee", work / "ee")
    subprocess.run([str(TOOLS / "ansible-builder"), "create", "-f", "execution-environment.yml", "-c", "context"],
                   cwd=work, check=True, capture_output=True)
    context = work / "context"
    copied = context / "_build/collections" / tarball.name
    assert copied.read_bytes() == tarball.read_bytes()
    steps = (context / "Dockerfile").read_text()
    assert "COPY _build/collections/ /build/collections/" in steps
    assert "ansible-galaxy collection install" in steps and "-r requirements.yml" in steps

    requirements = (context / "_build/requirements.yml").read_text()
    assert f"/build/collections/{tarball.name}" in requirements
    local = tmp_path / "requirements.yml"
    local.write_text(requirements.replace("/build/collections/", f"{context / '_build/collections'}/"))
    out = subprocess.run([str(CONTROLLERS["newest"] / "ansible-galaxy"), "collection", "install", "-r", str(local),
                          "-p", str(tmp_path / "collections")], capture_output=True, text=True, check=True)
    assert f"{FQCN}:{galaxy_version()} was installed successfully" in out.stdout, out.stdout
    assert (tmp_path / "collections/ansible_collections/raidfleet/driver_rollout/plugins/modules/kmod_update").is_file()
