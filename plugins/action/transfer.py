# Controller side of our binary modules (kmod_update, aacraid_build; the
# files named after them are links to this one). The binaries run on hosts
# without Python, so moving files between the controller and a host cannot
# use the copy or fetch modules: this plugin uses the connection itself, as
# those modules' own action plugins do.
#
# - remote_src: false  -> `src` is a controller file (found like copy's src);
#   it is uploaded into the task's temporary folder and the module runs on
#   that copy (remote_src: true), which is removed with the folder.
# - fetch_dir (aacraid_build) -> after the module ran, each kernel's
#   artifact is fetched into that controller folder unless a copy with the
#   same SHA-256 is already there; a fetched copy is checked and counts as a
#   change. In check mode nothing is fetched; `fetched` says what would be.
#
# Options are documented in the modules' sidecars (library/<name>.yml).

from __future__ import annotations

import hashlib
import os
import tempfile

from ansible.errors import AnsibleActionFail
from ansible.module_utils.parsing.convert_bool import boolean
from ansible.plugins.action import ActionBase


def sha256_of(path):
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


class ActionModule(ActionBase):
    TRANSFERS_FILES = True

    def run(self, tmp=None, task_vars=None):
        super().run(tmp, task_vars)
        del tmp
        args = dict(self._task.args)
        fetch_dir = args.pop("fetch_dir", None)
        try:
            if not boolean(args.get("remote_src", True), strict=False) and args.get("src"):
                args["src"] = self._upload(args["src"])
                args["remote_src"] = True
            result = self._execute_module(module_name=self._task.action, module_args=args, task_vars=task_vars)
            if fetch_dir and not result.get("failed"):
                self._fetch_artifacts(result, fetch_dir)
            return result
        finally:
            self._remove_tmp_path(self._connection._shell.tmpdir)

    def _upload(self, src):
        local = self._loader.get_real_file(self._find_needle("files", os.path.expanduser(src)))
        tmpdir = self._connection._shell.tmpdir
        remote = self._connection._shell.join_path(tmpdir, os.path.basename(local))
        self._transfer_file(local, remote)
        self._fixup_perms2((tmpdir, remote), execute=False)
        return remote

    def _fetch_artifacts(self, result, fetch_dir):
        fetch_dir = os.path.expanduser(fetch_dir)
        fetched = []
        for kernel in result.get("kernels", []):
            artifact = kernel.get("artifact")
            if not artifact:
                continue
            remote = artifact["path"]
            local = os.path.join(fetch_dir, os.path.basename(remote))
            want = artifact.get("sha256")
            have = sha256_of(local) if os.path.exists(local) else None
            needed = want is None or want != have
            if needed and not self._task.check_mode:
                os.makedirs(fetch_dir, exist_ok=True)
                fd, part = tempfile.mkstemp(dir=fetch_dir, prefix=".fetch-")
                os.close(fd)
                try:
                    self._connection.fetch_file(remote, part)
                    got = sha256_of(part)
                    if got != want:
                        raise AnsibleActionFail(f"fetched {remote} has sha256 {got}, the module reported {want}")
                    os.chmod(part, 0o644)
                    os.replace(part, local)
                finally:
                    if os.path.exists(part):
                        os.unlink(part)
            fetched.append({"path": remote, "local": local, "fetched": needed})
        result["fetched"] = fetched
        if any(f["fetched"] for f in fetched):
            result["changed"] = True
