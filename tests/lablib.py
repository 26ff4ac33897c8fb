"""The lab helpers shared by the system tests (tests/system), the benchmarks
(tests/bench) and the boot check (tests/bootcheck): lab containers, running
a module binary in one, hashing its trees, and running ansible-core from the
virtual environments under test. Python 3.11 standard library only.

Scripts outside pytest import it after putting tests/ on sys.path:

    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from lablib import Lab
"""

import contextlib
import ipaddress
import json
import os
import shlex
import socket
import subprocess
import tarfile
import time
import uuid
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
VARIANTS = ("dracut", "initramfs-tools")


def read_env(path):
    """KEY=VALUE lines of a shell-sourceable file, without comments."""
    pairs = {}
    for line in Path(path).read_text().splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            key, _, value = line.partition("=")
            pairs[key.strip()] = value.strip()
    return pairs


# The fixture driver: DKMS package version, and the MODULE_VERSION its module reports.
_FIXTURE = read_env(REPO / "tests/fixtures/version.env")
VENDOR_VERSION = _FIXTURE["VENDOR_VERSION"]
MODULE_VERSION = _FIXTURE["MODULE_VERSION"]
# A vendor package version whose module the tests make fail to compile.
BROKEN_VERSION = "9.9.9"


def _venvs():
    """Names of the virtual environments tests/setup.sh makes, in file order."""
    names = []
    for line in (REPO / "tests/venvs.txt").read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            names.append(line.split()[0])
    return names


# ansible-core releases under test, venv name → its bin folder; the first
# (the newest) also holds the tools: pytest, Molecule, ansible-lint.
ANSIBLE = {name: REPO / ".venv" / name / "bin" for name in _venvs()}
NEWEST = next(iter(ANSIBLE))


def paired_version(variant):
    """The ansible-core a test that covers both lab variants runs `variant`
    through, pairwise: each variant one core, each core at least one
    variant, for tests whose cost is a boot or a rebuild per run."""
    versions = list(ANSIBLE)
    return versions[VARIANTS.index(variant) % len(versions)]


# The dracut variant's setting that trades image size for speed (gzip -1).
DRACUT_SPEED_CONF = "/etc/dracut.conf.d/91-aacraid-lab-speed.conf"


def docker(*args, check=True):
    """Runs the docker CLI; returns the completed process (text output)."""
    return subprocess.run(["docker", *args], check=check, capture_output=True, text=True,
                          stdin=subprocess.DEVNULL)


def make_vendor_package(out, version=VENDOR_VERSION, module_version=MODULE_VERSION, broken=False):
    """Path of a fixture vendor package made by
    tests/fixtures/make-vendor-package.sh in the folder `out`; with
    module_version None the script derives it from `version`."""
    options = ["--version", version]
    if module_version is not None:
        options += ["--module-version", module_version]
    if broken:
        options.append("--broken")
    made = subprocess.run(
        [str(REPO / "tests/fixtures/make-vendor-package.sh"), *options, str(out)],
        check=True, capture_output=True, text=True,
    )
    return made.stdout.strip().splitlines()[-1]


class Lab:
    """One running lab container (Debian 12, two real kernels, no Python);
    a context manager that removes it on exit."""

    def __init__(self, variant, *docker_args, image=None, prefix="rdf-test"):
        self.variant = variant
        self.name = f"{prefix}-{variant}-{uuid.uuid4().hex[:6]}"
        docker("run", "-d", "--name", self.name, *docker_args, image or f"aacraid-lab:{variant}")
        self.kernels = self.sh("cat /etc/aacraid-lab/kernels").split()
        self.copied = set()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.remove()

    def debian_dracut(self):
        """Removes the lab's dracut speed setting (tests/lab/build-image.sh,
        gzip -1), so that dracut compresses as Debian configures it: what the
        benchmarks time."""
        self.sh(f"rm -f {DRACUT_SPEED_CONF}")

    def put(self, source, dest):
        """Copies a file of this machine into the container."""
        docker("cp", str(source), f"{self.name}:{dest}")

    def get(self, source, dest):
        """Copies a file or folder (`folder/.` for its content) of the
        container to this machine."""
        docker("cp", f"{self.name}:{source}", str(dest))

    def put_artifacts(self, artifacts):
        """Copies each kernel's artifact (kernel → path here) to /root/<kernel>.tgz."""
        for kernel, path in artifacts.items():
            self.put(path, f"/root/{kernel}.tgz")

    def install(self, binary):
        """Copies a staged module (library/<binary>) to /usr/local/bin once."""
        if binary not in self.copied:
            self.put(REPO / "library" / binary, f"/usr/local/bin/{binary}")
            self.copied.add(binary)
        return f"/usr/local/bin/{binary}"

    def args_file(self, binary, /, check_mode=False, diff=False, **options):
        """Writes a module's args file the way Ansible does; returns its path."""
        args = json.dumps({**options, "_ansible_check_mode": check_mode, "_ansible_diff": diff,
                           "_ansible_module_name": binary})
        path = f"/tmp/args-{uuid.uuid4().hex[:8]}.json"
        self.sh(f"cat > {path} <<'EOF'\n{args}\nEOF")
        return path

    def module(self, binary, /, check_mode=False, diff=False, **options):
        """Runs one of our module binaries (from library/) in the container
        the way Ansible does: an args file in, one JSON object out; checks
        that the exit code agrees with `failed`. (`binary` is positional
        only: `name` is an option of our modules.)"""
        program = self.install(binary)
        args_file = self.args_file(binary, check_mode, diff, **options)
        out = docker("exec", self.name, program, args_file, check=False)
        self.sh(f"rm -f {args_file}")
        result = json.loads(out.stdout)
        assert (out.returncode == 1) == result.get("failed", False), out
        if not result.get("failed"):
            check_return(binary, result)
        return result

    def timed(self, command):
        """Seconds `command` takes inside the container (so neither docker
        exec nor the host's load between runs is counted), and its output.
        A non-zero exit status of `command` raises: a failed run is no sample."""
        out = self.sh(f"s=$(date +%s%N); {{ {command}; }} > /tmp/out 2>&1; rc=$?; e=$(date +%s%N); "
                      f"echo $(( (e - s) / 1000000 )) $rc; cat /tmp/out")
        first, _, rest = out.partition("\n")
        ms, rc = first.split()
        if rc != "0":
            raise AssertionError(f"{command!r} failed ({rc}) in {self.name}:\n{rest[-3000:]}")
        return int(ms) / 1000, rest

    def timed_module(self, binary, /, **options):
        """Seconds a module run takes inside the container, and its result,
        which must not be a failure."""
        args_file = self.args_file(binary, **options)
        seconds, out = self.timed(f"{self.install(binary)} {args_file}")
        result = json.loads(out)
        assert not result.get("failed"), result
        check_return(binary, result)
        return seconds, result

    def sh(self, script, check=True):
        """Runs a shell script in the container; returns stdout."""
        out = docker("exec", self.name, "sh", "-c", script, check=False)
        if check and out.returncode != 0:
            raise AssertionError(f"{script!r} failed ({out.returncode}): {out.stderr}")
        return out.stdout

    def tree_hash(self, *roots, contents=True, times=False):
        """A digest of the trees under `roots` (created when missing): every
        entry's name, type, mode, owner, link target and, but for folders,
        size; with `contents` the bytes of every file; with `times` also
        every entry's mtime and ctime (any write, rename, chmod or removal
        changes them) and folder sizes. Folder sizes are left out otherwise:
        fuse-overlayfs reports them unsteadily across writes."""
        where = " ".join(roots)
        entry = "%p %y %m %U:%G %s %l" + (" %T@ %C@" if times else "")
        folder = entry if times else "%p %y %m %U:%G"
        script = (f"mkdir -p {where}; "
                  f"find {where} \\( -type d -printf '{folder}\\n' \\) -o -printf '{entry}\\n' | sort | sha256sum")
        if contents:
            script += f"; find {where} -type f -exec sha256sum {{}} + | sort | sha256sum"
        return self.sh(script)

    @contextlib.contextmanager
    def lock_held(self, path):
        """Holds flock(2) on `path` from a process in the container, the way
        another run would, until the block ends. The holder lets go only
        when told: a fixed hold time raced with slow hashing on a loaded
        machine."""
        release = f"/tmp/release-{uuid.uuid4().hex[:8]}"
        hold = f"while [ ! -e {release} ]; do sleep 0.1; done"
        self.sh(f"setsid flock {path} sh -c '{hold}' > /dev/null 2>&1 < /dev/null &")
        self.sh(f"until flock -n {path} true; [ $? -eq 1 ]; do sleep 0.1; done")
        try:
            yield
        finally:
            self.sh(f"touch {release}")

    def log_calls(self, tool):
        """Puts a root-owned wrapper for `tool` in /usr/local/sbin, which the
        modules search first, that logs each command line and runs the real
        `tool` from /usr/sbin; `calls` reads the log."""
        log = f"/root/{tool}-calls.log"
        self.sh(f"printf '#!/bin/sh\\necho \"{tool} $*\" >> {log}\\nexec /usr/sbin/{tool} \"$@\"\\n'"
                f" > /usr/local/sbin/{tool} && chmod 755 /usr/local/sbin/{tool}")

    def calls(self, tool):
        """The command lines of `tool` logged since the last call (see
        `log_calls`); clears the log."""
        return self.sh(f"cat /root/{tool}-calls.log 2>/dev/null; rm -f /root/{tool}-calls.log").splitlines()

    def pretend_rpm_based(self):
        """Makes this Debian container look rpm-based to aacraid_build with a
        root-owned wrapper, /usr/local/sbin/rpm: /bin/sh is "owned" by a
        package, and installs go to the real rpm (Debian's rpm wants
        --force-debian). Remove /usr/local/sbin/rpm to undo."""
        self.sh("cat > /usr/local/sbin/rpm <<'EOF'\n" + RPM_HOST + "EOF\nchmod 755 /usr/local/sbin/rpm")

    def intree_version(self, kernel):
        """The version of the kernel's own aacraid.ko (the file itself, not
        what the kernel resolves)."""
        path = f"/lib/modules/{kernel}/kernel/drivers/scsi/aacraid/aacraid.ko"
        version = self.sh(f"modinfo -F version {path}").strip()
        assert version, f"{path} has no version"
        return version

    def snapshot(self):
        """An image of the container as it is now (tag returned); the caller
        removes it with `docker rmi`."""
        tag = f"aacraid-lab-snapshot:{self.name}"
        docker("commit", self.name, tag)
        return tag

    def remove(self):
        docker("rm", "-f", self.name, check=False)


class LoginKey:
    """An SSH key pair made for one lab run (`folder`/id_ed25519) and the
    known_hosts file of the containers that trust it. A lab container started
    with `docker_args()` runs sshd and lets this key log in as root
    (tests/lab/aacraid-lab-init); `trust` waits for that sshd and records its
    host key, read through docker: out of band, as an admin reads a new
    server's key off its console."""

    def __init__(self, folder):
        self.private = Path(folder) / "id_ed25519"
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "aacraid-lab-login",
                        "-f", str(self.private)], check=True, capture_output=True, stdin=subprocess.DEVNULL)
        self.public = self.private.with_name("id_ed25519.pub").read_text().strip()
        self.known_hosts = Path(folder) / "known_hosts"
        self.known_hosts.touch()

    def docker_args(self):
        return ["-e", f"AACRAID_LAB_LOGIN_KEY={self.public}"]

    def trust(self, lab, timeout=30):
        """The container's address once its sshd listens; its host key is
        then in known_hosts."""
        inspected = docker("inspect", "-f", "{{range .NetworkSettings.Networks}}{{.IPAddress}} {{end}}", lab.name)
        address = str(ipaddress.ip_address(inspected.stdout.split()[0]))
        deadline = time.monotonic() + timeout
        while True:
            try:
                socket.create_connection((address, 22), timeout=1).close()
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise AssertionError(f"sshd of {lab.name} did not listen on {address}:22 in {timeout} s")
                time.sleep(0.2)
        kind, key = lab.sh("cat /etc/ssh/ssh_host_ed25519_key.pub").split()[:2]
        with self.known_hosts.open("a") as out:
            out.write(f"{address} {kind} {key}\n")
        return address

    def inventory_vars(self):
        """INI `[all:vars]` lines that reach the trusted containers the way a
        user's inventory does: the ssh connection as root, this key only, host
        keys checked (ControlPersist comes from ansible.cfg's ssh_args)."""
        common = f"-o UserKnownHostsFile={self.known_hosts} -o StrictHostKeyChecking=yes -o IdentitiesOnly=yes"
        return ["ansible_connection=ssh", "ansible_user=root", f"ansible_ssh_private_key_file={self.private}",
                f"ansible_ssh_common_args={shlex.quote(common)}"]


RPM_HOST = """#!/bin/sh
case "$1 $2" in
    "-qf /bin/sh") echo bash-5.1.8-9.el9.x86_64; exit 0 ;;
esac
[ "$1" = "-i" ] && { shift; exec /usr/bin/rpm -i --force-debian "$@"; }
exec /usr/bin/rpm "$@"
"""


# Keys every module result may carry whatever its RETURN documents.
COMMON_KEYS = {"changed", "failed", "msg", "diff", "warnings", "deprecations", "invocation"}
RETURN_TYPES = {"str": str, "bool": bool, "list": list, "dict": dict, "int": int}


def check_return(binary, result):
    """A successful result holds exactly what the module's sidecar RETURN
    documents: no undocumented key at any depth (dicts, and lists of dicts,
    against their `contains`), every `returned: always` key, and each value
    (when not null) of the documented type."""
    documented = yaml.safe_load((REPO / "modules" / binary / f"{binary}.yml").read_text())["RETURN"]
    extra = set(result) - COMMON_KEYS - set(documented)
    assert not extra, f"{binary} returned keys its RETURN does not document: {sorted(extra)}"
    for key, spec in documented.items():
        if spec.get("returned") == "always":
            assert key in result, f"{binary}'s RETURN says {key} is always returned: {sorted(result)}"
        if key in result:
            check_value(binary, key, spec, result[key])


def check_value(binary, where, spec, value):
    """`value` against its RETURN entry `spec`: its type, and below it the keys its `contains` lists."""
    if value is None:
        return
    if spec.get("type") in RETURN_TYPES:
        assert isinstance(value, RETURN_TYPES[spec["type"]]), f"{binary}'s {where} is documented as {spec['type']}: {value!r}"
    contains = spec.get("contains")
    if not contains:
        return
    for i, item in enumerate(value if isinstance(value, list) else [value]):
        if not isinstance(item, dict):
            continue
        at = f"{where}[{i}]" if isinstance(value, list) else where
        extra = set(item) - set(contains)
        assert not extra, f"{binary} returned {at} keys its RETURN does not document: {sorted(extra)}"
        for key, sub in contains.items():
            if key in item:
                check_value(binary, f"{at}.{key}", sub, item[key])


def ansible_env(version=NEWEST):
    """The environment for ansible-core of one venv, run from the repository
    root: ansible.cfg's library applies, the venv comes first on PATH."""
    return dict(os.environ, ANSIBLE_CONFIG=str(REPO / "ansible.cfg"), ANSIBLE_NOCOLOR="1",
                PATH=f"{ANSIBLE[version]}:{os.environ['PATH']}")


def inventory(tmp_path, lab_container=None):
    """An inventory with `localhost` (local connection) and, when given, the
    lab container as `lab` over community.docker's docker connection."""
    lines = ["localhost ansible_connection=local"]
    if lab_container is not None:
        lines.append(f"lab ansible_connection=community.docker.docker ansible_host={lab_container.name}")
    path = Path(tmp_path) / "inventory.ini"
    path.write_text("\n".join(lines) + "\n")
    return path


def playbook(name):
    """Path of a test playbook, tests/system/playbooks/<name>.yml."""
    return REPO / "tests/system/playbooks" / f"{name}.yml"


def run_ansible(version, program, *args, extra_vars=None, check=True):
    """Runs `ansible` or `ansible-playbook` of one venv from the repository
    root with the JSON callback, and `extra_vars` as one JSON -e; returns
    the parsed output and the completed process."""
    env = dict(ansible_env(version), ANSIBLE_STDOUT_CALLBACK="json", ANSIBLE_LOAD_CALLBACK_PLUGINS="1")
    extra = ["-e", json.dumps(extra_vars)] if extra_vars is not None else []
    proc = subprocess.run(
        [str(ANSIBLE[version] / program), *map(str, args), *extra],
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


def throwaway_key(key, subject, cert=None):
    """A new RSA key at `key` and its self-signed certificate at `cert` (the
    same PEM file when None), made by openssl: a signing key no kernel
    trusts. `subject` is openssl's form, e.g. "/CN=aacraid throwaway key"."""
    subprocess.run(["openssl", "req", "-new", "-nodes", "-utf8", "-sha256", "-days", "3650", "-batch", "-x509",
                    "-subj", subject, "-outform", "PEM", "-out", cert or key, "-keyout", key],
                   check=True, capture_output=True)


def force_signatures(lab, kernel):
    """Makes `kernel`'s real build configuration in the container say
    CONFIG_MODULE_SIG_FORCE=y (Debian's says it is not set)."""
    config = f"/boot/config-{kernel}"
    lab.sh(f"sed -i 's/^# CONFIG_MODULE_SIG_FORCE is not set$/CONFIG_MODULE_SIG_FORCE=y/' {config}")
    assert lab.sh(f"grep -cx CONFIG_MODULE_SIG_FORCE=y {config}").strip() == "1"


def file_stamps(lab, *paths):
    """path → (inode and mtime to the nanosecond, sha256) of files in the
    lab container, read there with stat and sha256sum: a file written
    again, even with the same bytes, gets another mtime (and, renamed into
    place, another inode)."""
    quoted = " ".join(f"'{p}'" for p in paths)
    stamps = dict(line.split(" ", 1) for line in lab.sh(f"stat -c '%n %i %y' {quoted}").splitlines())
    digests = {path: digest for digest, path in
               (line.split("  ", 1) for line in lab.sh(f"sha256sum {quoted}").splitlines())}
    assert sorted(stamps) == sorted(digests) == sorted(paths), (stamps, digests)
    return {path: (stamps[path], digests[path]) for path in paths}


def driver_rpm(package, out):
    """Extracts the driver rpm (`<name>-<version>-dkms.noarch.rpm`) of a
    vendor tarball on this machine into the folder `out`; returns its path."""
    with tarfile.open(package) as tar:
        member = next(m for m in tar.getmembers() if m.name.endswith("-dkms.noarch.rpm"))
        tar.extract(member, out, filter="data")
    return Path(out) / member.name


def file_sha256(lab, path):
    """SHA-256 of a file in the lab container."""
    return lab.sh(f"sha256sum < {path}").split()[0]


def shadow_module(lab, kernel, name):
    """Makes `kernel` resolve a copy of its own module `name` in updates/
    (the same bytes, found by the real depmod), so that every image holding
    the in-tree file is stale; returns the copy's path."""
    source = lab.sh(f"modinfo -k {kernel} -n {name}").strip()
    target = f"/lib/modules/{kernel}/updates/{source.rsplit('/', 1)[-1]}"
    lab.sh(f"mkdir -p /lib/modules/{kernel}/updates && cp -p {source} {target} && depmod -a {kernel}")
    resolved = lab.sh(f"modinfo -k {kernel} -n {name}").strip()
    assert resolved == target, f"{kernel} resolves {resolved} for {name}, not the copy {target}"
    return target


def wait_for_process(lab, name, seconds=60):
    """Waits until a process whose name (comm, 15 characters at most) is
    `name` runs in the container."""
    lab.sh(f"for i in $(seq {seconds * 10}); do cat /proc/[0-9]*/comm 2>/dev/null | grep -qx {name[:15]}"
           " && exit 0; sleep 0.1; done; exit 1")
