# Controller side of our four binary modules (aacraid_build, kmod_update,
# initramfs_regen, raid_driver_facts; the files named after them are links to
# this one). The binaries run on hosts without Python.
#
# Running a module: each binary is kept on the host in a root-only,
# content-addressed cache (CACHE_DIR/<module>-<sha256>, the folder 0700 and
# owned by root). With pipelining on, a task is one remote command: a short
# sh script checks the cached file's SHA-256 and, when it matches, executes it
# with the task's arguments on stdin (never on a command line, where `ps`
# would show them). Only when the host lacks that exact binary is it uploaded
# (once), stored in the cache and run in the same command; the newest KEEP
# binaries of each module are kept. With pipelining off, the arguments go in
# a file in the task's temporary folder as ansible-core does, and the binary
# still comes from the cache. The cache is not used (the module is sent the
# normal way, with a warning that says why once per host and reason) when the
# task does not run as root, runs async, the host variable
# `aacraid_module_cache` is false, or the cache folder cannot hold or execute
# files (read-only or noexec filesystem, no room).
#
# Moving files (the binaries cannot use the copy or fetch modules: they need
# Python on the host; this plugin uses the connection itself, as those
# modules' own action plugins do):
# - remote_src: false  -> `src` is a controller file (found like copy's src);
#   it is uploaded into the task's temporary folder and the module runs on
#   that copy (remote_src: true), which is removed with the folder.
# - fetch_dir (aacraid_build) -> after the module ran, each kernel's
#   artifact is fetched into that controller folder unless a copy with the
#   same SHA-256 is already there; a fetched copy is checked and counts as a
#   change. In check mode nothing is fetched; `fetched` says what would be.
#
# The module's result is the build host's word and is not trusted: an
# artifact is fetched only when it is `<artifacts_dir>/<name>-<version>-<kernel>.tgz`
# for a kernel the task asked for (name, version and kernel checked with the
# modules' own rules), it is a regular file on the host of at most
# MAX_ARTIFACT_BYTES, and it arrives as a regular file of that size at most
# (the cap also binds while the connection writes it). Every artifact is
# staged in a private folder inside fetch_dir and renamed into place only
# after all of them matched their SHA-256; a failure removes the folder and
# leaves fetch_dir as it was.
#
# Options are documented in the modules' sidecars (library/<name>.yml).

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import posixpath
import re
import resource
import shlex
import shutil
import signal
import stat
import tempfile

from ansible import constants as C
from ansible.module_utils.parsing.convert_bool import boolean
from ansible.plugins.action import ActionBase
from ansible.utils.display import Display
from ansible.vars.clean import remove_internal_keys

try:  # ansible-core 2.19 and later serialize module arguments through a profile
    from ansible.module_utils.common.json import Direction, get_module_encoder
except ImportError:
    get_module_encoder = None

display = Display()

# An artifact holds one kernel's few module files (aacraid.ko is about 0.3 MiB);
# 64 MiB leaves room for modules built with debug information.
MAX_ARTIFACT_BYTES = 64 << 20

# The modules' rules: formats::modinfo::validate_name (name),
# aacraid_build's PACKAGE_VERSION check (version), linux_host::kernel::validate_release (kernel).
NAME = re.compile(r"[A-Za-z0-9_-]{1,56}")
VERSION = re.compile(r"[A-Za-z0-9._+~-]+")
RELEASE = re.compile(r"(?!\.\.?\Z)[A-Za-z0-9._+~-]+")
SHA256 = re.compile(r"[0-9a-f]{64}")
KERNEL_WORDS = ("running", "all")

# The modules that take a controller file (`src`) and fetch artifacts.
UPLOADS = ("aacraid_build", "kmod_update")
FETCHES = ("aacraid_build",)

CACHE_DIR = "/var/cache/aacraid-modules"
CACHE_VAR = "aacraid_module_cache"
# Binaries kept per module: the one in use and a few older ones, so that
# controllers on neighbouring releases do not evict each other's.
KEEP = 3
CACHE_PATH = re.compile(r"/[A-Za-z0-9._/-]+")
MODULE_NAME = re.compile(r"[a-z0-9_]+")
# The first stdout line of the cache script when it did not run the module.
MARK = "#aacraid-module-cache:"
UNSAFE = "must be a real folder of root's that no one else may write, and the cache folder itself mode 0700"


class Refused(Exception):
    """An artifact this plugin will not fetch, or a fetch that went wrong;
    the task fails with this message."""


def sha256_of(path, limit=None):
    """SHA-256 of a regular file (never through a symlink), or None when
    there is none at `path`; fails when the file holds more than `limit`
    bytes."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except FileNotFoundError:
        return None
    except OSError as e:
        raise Refused(f"{path} is not a regular file ({e.strerror})") from e
    with os.fdopen(fd, "rb") as f:
        if not stat.S_ISREG(os.fstat(f.fileno()).st_mode):
            raise Refused(f"{path} is not a regular file")
        digest = hashlib.sha256()
        size = 0
        for block in iter(lambda: f.read(1 << 20), b""):
            size += len(block)
            if limit is not None and size > limit:
                raise Refused(f"{path} holds more than {limit} bytes")
            digest.update(block)
    return digest.hexdigest()


def full(pattern, value):
    return isinstance(value, str) and pattern.fullmatch(value) is not None


@contextlib.contextmanager
def file_size_cap(limit):
    """No file written by this process or the programs it starts (docker cp,
    scp, sftp) grows past `limit` bytes: the write fails with EFBIG instead
    of SIGXFSZ killing the writer."""
    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    cap = limit if hard == resource.RLIM_INFINITY else min(limit, hard)
    handler = signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (cap, hard))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
        signal.signal(signal.SIGXFSZ, handler)


def unsafe_folders(directory):
    """A `find` that prints the cache folder or any folder above it unless
    each is a real folder (not a link) of root's that no one else may write,
    and the cache folder itself has mode 0700: then no other user can swap
    the binary between its check and its run. Prints nothing when all are."""
    parts = directory.strip("/").split("/")
    above = ["/"] + ["/" + "/".join(parts[:i]) for i in range(1, len(parts))]
    q = shlex.quote
    return (f"find {' '.join(map(q, above))} {q(directory)} -maxdepth 0 "
            f"\\( ! -user 0 -o -perm /022 -o ! -type d -o \\( -path {q(directory)} ! -perm 0700 \\) \\) "
            f"-print 2>&1 | head -n 1")


def probe_script(directory, file_name, digest, arg):
    """The one remote command of a task whose binary is cached: runs it when
    its SHA-256 matches and the folders are safe, else prints MARK and
    `miss` or `unusable <why>`."""
    q = shlex.quote
    return (
        f"d={q(directory)}; f=\"$d\"/{q(file_name)}; UNSAFE={q(UNSAFE)}; "
        f"if [ \"$(id -u)\" != 0 ]; then echo {q(MARK + ' unusable the cache is root-only and the task does not run as root')}; exit 0; fi; "
        f"if [ -e \"$d\" ] || [ -L \"$d\" ]; then bad=$({unsafe_folders(directory)}); "
        f"if [ -n \"$bad\" ]; then echo {q(MARK)} unusable \"$bad: $UNSAFE\"; exit 0; fi; fi; "
        f"if [ -f \"$f\" ] && [ ! -L \"$f\" ] "
        f"&& [ \"$(sha256sum < \"$f\")\" = {q(digest + '  -')} ]; then "
        f"if [ -x \"$f\" ]; then exec \"$f\" {arg}; fi; "
        f"echo {q(MARK)} unusable \"$d is on a filesystem mounted noexec\"; exit 0; fi; "
        f"echo {q(MARK + ' miss')}"
    )


def install_script(directory, module, digest, uploaded, arg):
    """Stores the uploaded binary in the cache (a private name, checked, then
    renamed into place), prunes the module's older binaries and runs it. When
    the cache cannot hold or execute it, runs the uploaded copy instead and
    says why on stderr after MARK."""
    q = shlex.quote
    name = f"{module}-{digest}"
    return (
        f"umask 077; d={q(directory)}; UNSAFE={q(UNSAFE)}; f=\"$d\"/{q(name)}; u={q(uploaded)}; t=\"$d/.{name}.$$\"; "
        f"fail() {{ rm -f \"$t\"; echo {q(MARK)} unusable \"$1\" >&2; chmod 0700 \"$u\"; exec \"$u\" {arg}; }}; "
        f"if [ ! -e \"$d\" ] && [ ! -L \"$d\" ]; then mkdir -p -m 0700 \"$d\" 2>/dev/null || fail \"cannot create $d\"; fi; "
        f"bad=$({unsafe_folders(directory)}); [ -z \"$bad\" ] || fail \"$bad: $UNSAFE\"; "
        f"find \"$d\" -maxdepth 1 -name '.*' -type f -mmin +60 -exec rm -f {{}} + 2>/dev/null; "
        f"cp \"$u\" \"$t\" 2>/dev/null && chmod 0700 \"$t\" "
        f"&& [ \"$(sha256sum < \"$t\")\" = {q(digest + '  -')} ] || fail \"cannot store and check a file in $d (no room, or no sha256sum)\"; "
        f"\"$t\" </dev/null >/dev/null 2>&1; "
        f"if [ $? = 126 ]; then mv -f \"$t\" \"$f\"; fail \"$d is on a filesystem mounted noexec\"; fi; "
        f"mv -f \"$t\" \"$f\" || fail \"cannot store a file in $d\"; "
        f"n=0; for old in $(ls -t \"$d\"); do case $old in {module}-[0-9a-f]*) n=$((n + 1)); "
        f"[ $n -gt {KEEP} ] && rm -f \"$d/$old\";; esac; done; "
        f"exec \"$f\" {arg}"
    )


class ActionModule(ActionBase):
    # The temporary folder is made only when something is uploaded: a cached
    # module with pipelining on needs none.
    TRANSFERS_FILES = False

    def run(self, tmp=None, task_vars=None):
        super().run(tmp, task_vars)
        del tmp
        task_vars = task_vars or {}
        module = self._task.action.rsplit(".", 1)[-1]
        args = dict(self._task.args)
        fetch_dir = args.pop("fetch_dir", None) if module in FETCHES else None
        if fetch_dir and not args.get("artifacts_dir"):
            # Refused before the module runs: the build would change the host
            # and then have nothing to fetch.
            return {"failed": True, "changed": False,
                    "msg": "fetch_dir needs artifacts_dir: the folder on the build host the artifacts are written to, "
                           "and fetched from"}
        try:
            if module in UPLOADS and not boolean(args.get("remote_src", True), strict=False) and args.get("src"):
                args["src"] = self._upload(args["src"])
                args["remote_src"] = True
            result = self._run_module(args, task_vars)
            if fetch_dir and not result.get("failed"):
                try:
                    self._fetch_artifacts(result, args, fetch_dir)
                except Refused as e:
                    result["failed"] = True
                    result["msg"] = str(e)
            return result
        finally:
            self._remove_tmp_path(self._connection._shell.tmpdir)

    def _cache_dir(self, task_vars):
        """The cache folder for this host, or None when the cache is off or
        the task cannot use it."""
        if self._task.async_val or C.DEFAULT_KEEP_REMOTE_FILES:
            return None
        if self._task.delegate_to:
            task_vars = task_vars.get("ansible_delegated_vars", {}).get(self._task.delegate_to, task_vars)
        setting = self._templar.template(task_vars.get(CACHE_VAR, CACHE_DIR))
        if setting is True or str(setting).lower() in ("true", "yes", "on"):
            return CACHE_DIR
        if setting is False or str(setting).lower() in ("false", "no", "off", "0", ""):
            return None
        parts = setting.strip("/").split("/") if full(CACHE_PATH, setting) else []
        if not parts or any(part in ("", ".", "..") for part in parts):
            raise Refused(f"{CACHE_VAR} must be an absolute path of a folder below / (letters, digits and ._-, "
                          f"no . or .. parts) or false, not {setting!r}")
        return "/" + "/".join(parts)

    def _run_module(self, args, task_vars):
        """Runs the task's module through the cache when it can, else as
        ansible-core does."""
        name = self._task.action
        try:
            directory = self._cache_dir(task_vars)
        except Refused as e:
            return {"failed": True, "changed": False, "msg": str(e)}
        leaf = name.rsplit(".", 1)[-1]
        if directory is None or not full(MODULE_NAME, leaf):
            return self._execute_module(module_name=name, module_args=args, task_vars=task_vars)

        module_args = dict(args)
        self._update_module_args(name, module_args, task_vars)
        configured = self._configure_module(module_name=name, module_args=module_args, task_vars=task_vars)
        if len(configured) == 2:  # ansible-core 2.19 and later
            bits, local = configured
            style, data, profile = bits.module_style, bits.b_module_data, bits.serialization_profile
        else:
            style, dummy, data, local = configured
            profile = None
        if style != "binary":
            return self._execute_module(module_name=name, module_args=args, task_vars=task_vars)
        if profile is not None and get_module_encoder is not None:
            payload = json.dumps(module_args, cls=get_module_encoder(profile, Direction.CONTROLLER_TO_MODULE))
        else:
            payload = json.dumps(module_args)
        digest = hashlib.sha256(data).hexdigest()

        if self._is_pipelining_enabled("new"):
            arg, in_data = "/dev/stdin", payload.encode()
        else:
            args_file = self._connection._shell.join_path(self._tmpdir(), "args")
            self._transfer_data(args_file, payload)
            self._fixup_perms2((self._tmpdir(), args_file), execute=False)
            arg, in_data = shlex.quote(args_file), None
        env = self._compute_environment_string()
        prefix = f"export {env}; " if env else ""

        res = self._low_level_execute_command(
            prefix + probe_script(directory, f"{leaf}-{digest}", digest, arg), sudoable=True, in_data=in_data)
        state = self._cache_state(res)
        if state == "miss":
            uploaded = self._put(local, leaf, execute=True)
            res = self._low_level_execute_command(
                prefix + install_script(directory, leaf, digest, uploaded, arg), sudoable=True, in_data=in_data)
            state = self._cache_state(res, stream="stderr")
            if state is not None:
                self._warn_uncached(state, task_vars)
        elif state is not None:
            self._warn_uncached(state, task_vars)
            return self._execute_module(module_name=name, module_args=args, task_vars=task_vars)

        data = self._parse_returned_data(res, profile) if profile is not None else self._parse_returned_data(res)
        data.pop("_ansible_suppress_tmpdir_delete", None)
        remove_internal_keys(data)
        return data

    @staticmethod
    def _cache_state(res, stream="stdout"):
        """What the cache script said after MARK (`miss`, `unusable <why>`):
        the first line of stdout for the probe, a line of stderr for the
        install (the module's output follows it); None when it said nothing."""
        lines = (res.get(stream) or "").lstrip().splitlines()
        if stream == "stdout":
            lines = lines[:1]
        said = next((line.strip() for line in lines if line.startswith(MARK)), None)
        return None if said is None else said[len(MARK):].strip()[:300]

    def _warn_uncached(self, state, task_vars):
        why = state.removeprefix("unusable").strip()
        host = self._task.delegate_to or task_vars.get("inventory_hostname") or self._play_context.remote_addr
        # Identical warnings are shown once per run: once per host and reason.
        display.warning(f"{host}: the module cache is not used ({why}); the module is sent with each task")

    def _tmpdir(self):
        """The task's temporary folder on the host, made on first use."""
        if self._connection._shell.tmpdir is None:
            self._make_tmp_path()
        return self._connection._shell.tmpdir

    def _put(self, local, name, execute=False):
        """Uploads a controller file into the task's temporary folder; returns its path there."""
        remote = self._connection._shell.join_path(self._tmpdir(), name)
        self._transfer_file(local, remote)
        self._fixup_perms2((self._tmpdir(), remote), execute=execute)
        return remote

    def _upload(self, src):
        local = self._loader.get_real_file(self._find_needle("files", os.path.expanduser(src)))
        return self._put(local, os.path.basename(local))

    def _expected_artifacts(self, result, args):
        """(remote path, file name, sha256) of each artifact the
        result names, once each has been checked against what the task asked
        for and the modules' rules."""
        name, version, kernels = result.get("name"), result.get("version"), result.get("kernels")
        if not full(NAME, name):
            raise Refused(f"the module returned an invalid package name {name!r}")
        if not full(VERSION, version):
            raise Refused(f"the module returned an invalid package version {version!r}")
        if not isinstance(kernels, list) or not all(isinstance(k, dict) for k in kernels):
            raise Refused("the module returned no list of kernels")
        asked = args.get("kernels") or []
        if isinstance(asked, str):
            asked = asked.split(",")
        asked = [str(k).strip() for k in asked]
        only = None if any(k in KERNEL_WORDS for k in asked) else set(asked)
        artifacts_dir = args.get("artifacts_dir")
        expected, seen = [], set()
        for entry in kernels:
            artifact = entry.get("artifact")
            if not artifact:
                continue
            kernel = entry.get("kernel")
            if not full(RELEASE, kernel) or kernel in KERNEL_WORDS:
                raise Refused(f"the module returned an invalid kernel release {kernel!r}")
            if only is not None and kernel not in only:
                raise Refused(f"the module returned an artifact for kernel {kernel}, which the task did not ask for")
            if kernel in seen:
                raise Refused(f"the module returned kernel {kernel} twice")
            seen.add(kernel)
            file_name = f"{name}-{version}-{kernel}.tgz"
            path = artifact.get("path") if isinstance(artifact, dict) else None
            if not isinstance(artifacts_dir, str) or path != posixpath.join(artifacts_dir, file_name):
                raise Refused(
                    f"the module returned the artifact path {path!r} for kernel {kernel}; "
                    f"only {posixpath.join(str(artifacts_dir), file_name)!r} is fetched")
            want = artifact.get("sha256")
            if not (want is None and self._task.check_mode) and not full(SHA256, want):
                raise Refused(f"the module returned an invalid sha256 {want!r} for {path}")
            expected.append((path, file_name, want))
        return expected

    def _check_remote_file(self, path):
        """Fails unless `path` is a regular file on the host of at most
        MAX_ARTIFACT_BYTES (the fetch enforces the cap again: a host can lie
        here too)."""
        out = self._low_level_execute_command(f"LC_ALL=C stat -c '%s %F' -- {shlex.quote(path)}")
        words = out.get("stdout", "").strip()
        size, dummy, kind = words.partition(" ")
        if out.get("rc") != 0 or not size.isdigit() or kind not in ("regular file", "regular empty file"):
            shown = (words or out.get("stderr", "").strip())[:200]
            raise Refused(f"{path} on the build host is not a regular file ({shown!r})")
        if int(size) > MAX_ARTIFACT_BYTES:
            raise Refused(f"{path} holds {size} bytes, more than the {MAX_ARTIFACT_BYTES} an artifact may")

    def _fetch_artifacts(self, result, args, fetch_dir):
        fetch_dir = os.path.abspath(os.path.expanduser(fetch_dir))
        plan = []
        for remote, file_name, want in self._expected_artifacts(result, args):
            local = os.path.join(fetch_dir, file_name)
            have = sha256_of(local) if os.path.lexists(local) else None
            plan.append((remote, local, want, want is None or want != have))
        result["fetched"] = [{"path": r, "local": loc, "fetched": needed} for r, loc, dummy, needed in plan]
        todo = [(r, loc, want) for r, loc, want, needed in plan if needed]
        if not todo or self._task.check_mode:
            result["changed"] = result.get("changed", False) or bool(todo)
            return
        for remote, dummy, dummy in todo:
            self._check_remote_file(remote)

        # The highest folder this run creates, removed again if the fetch fails.
        created = None
        if not os.path.lexists(fetch_dir):
            created = fetch_dir
            while not os.path.lexists(os.path.dirname(created)):
                created = os.path.dirname(created)
        try:
            self._fetch_into(fetch_dir, todo)
        except BaseException:
            if created is not None:
                shutil.rmtree(created, ignore_errors=True)
            raise
        result["changed"] = True

    def _fetch_into(self, fetch_dir, todo):
        """Fetches each (remote, local, sha256) into a private folder in
        fetch_dir, and moves them to their names once all of them match."""
        staging = None
        try:
            os.makedirs(fetch_dir, exist_ok=True)
            staging = tempfile.mkdtemp(dir=fetch_dir, prefix=".fetch-")
            staged = []
            for i, (remote, local, want) in enumerate(todo):
                part = os.path.join(staging, str(i))
                try:
                    with file_size_cap(MAX_ARTIFACT_BYTES):
                        self._connection.fetch_file(remote, part)
                except Exception as e:
                    raise Refused(
                        f"cannot fetch {remote} (an artifact may hold at most {MAX_ARTIFACT_BYTES} bytes): {e}") from e
                if not os.path.lexists(part) or not stat.S_ISREG(os.lstat(part).st_mode):
                    raise Refused(f"{remote} did not arrive as a regular file")
                got = sha256_of(part, MAX_ARTIFACT_BYTES)
                if got != want:
                    raise Refused(f"fetched {remote} has sha256 {got}, the module reported {want}")
                os.chmod(part, 0o644)
                staged.append((part, local))
            for part, local in staged:
                os.replace(part, local)
        except OSError as e:
            raise Refused(f"cannot store the artifacts in {fetch_dir}: {e}") from e
        finally:
            if staging is not None:
                shutil.rmtree(staging, ignore_errors=True)
