# ansible.builtin.reboot for hosts without Python. The built-in action runs two Python
# modules on the host: `setup` to learn the distribution (only to pick the shutdown
# command and its arguments from its tables) and `find` to locate the shutdown binary.
# This plugin keeps the rest of the built-in as it is (its options: reboot_timeout,
# connect_timeout, pre/post_reboot_delay, test_command, boot_time_command, msg,
# reboot_command, search_paths; its results: rebooted, elapsed, msg; the boot id check and
# the connection resets) and answers those two questions with plain commands through the
# connection, so it works wherever the connection does (ProxyJump and bastions included).
#
# Every value put into a command is quoted; what the host prints back is only compared
# against the built-in's tables or tested for being an absolute path.

from __future__ import annotations

import re
import shlex

from ansible.errors import AnsibleError
from ansible.module_utils.common.text.converters import to_native, to_text
from ansible.module_utils.common.validation import check_type_list, check_type_str
from ansible.plugins.action.reboot import ActionModule as BuiltinReboot

DEFAULT_SEARCH_PATHS = ["/sbin", "/bin", "/usr/sbin", "/usr/bin", "/usr/local/sbin"]
# os-release keys are shell-style assignments; only plain values are taken.
OS_RELEASE_LINE = re.compile(r'([A-Z_]+)=("?)([A-Za-z0-9._ -]{0,64})\2')
# An os-release file is a few hundred bytes; a host that prints more is not read past this.
MAX_OS_RELEASE = 16 << 10


def parse_os_release(text):
    """ID, VERSION_ID and ID_LIKE of an os-release file, each '' when absent."""
    values = {}
    for line in text[:MAX_OS_RELEASE].splitlines():
        m = OS_RELEASE_LINE.fullmatch(line.strip())
        if m:
            values[m.group(1)] = m.group(3)
    return values.get("ID", ""), values.get("VERSION_ID", ""), values.get("ID_LIKE", "")


class ActionModule(BuiltinReboot):
    def get_distribution(self, task_vars):
        """The built-in's distribution triple (name, major version, family), from
        /etc/os-release and `uname -s` instead of the setup module."""
        result = self._low_level_execute_command(
            "uname -s; cat /etc/os-release 2>/dev/null || cat /usr/lib/os-release 2>/dev/null",
            sudoable=self.DEFAULT_SUDOABLE,
        )
        if result["rc"] not in (0, 1) or not result["stdout"].strip():
            raise AnsibleError(
                "Failed to determine the system with uname and os-release: rc {0}, {1}".format(
                    result["rc"], to_native(result["stderr"]).strip()
                )
            )
        system, dummy, release = to_text(result["stdout"]).partition("\n")
        ident, version, like = parse_os_release(release)
        system = system.strip().lower()
        # The built-in's tables are keyed by distribution, then family; outside Linux
        # the system name (freebsd, openbsd, ...) is both.
        name = ident.lower() or system
        family = (like.split() or [name])[0].lower() if system == "linux" else system
        return {"name": name, "version": version.split(".")[0], "family": family}

    def get_shutdown_command(self, task_vars, distribution):
        """The shutdown binary's path: reboot_command's first word, or the built-in's
        table entry, looked up in search_paths with `test -x` instead of `find`."""
        reboot_command = self._task.args.get("reboot_command")
        if reboot_command is not None:
            try:
                reboot_command = check_type_str(reboot_command, allow_conversion=False)
            except TypeError as e:
                raise AnsibleError("Invalid value given for 'reboot_command': %s." % to_native(e))
            shutdown_bin = reboot_command.split(" ", 1)[0]
        else:
            shutdown_bin = self._get_value_from_facts(
                "SHUTDOWN_COMMANDS", distribution, "DEFAULT_SHUTDOWN_COMMAND"
            )
        if shutdown_bin.startswith("/"):
            return shutdown_bin
        if not shutdown_bin or "/" in shutdown_bin:
            raise AnsibleError(
                "The shutdown command {0!r} must be a bare name or an absolute path".format(shutdown_bin)
            )
        try:
            search_paths = check_type_list(self._task.args.get("search_paths", DEFAULT_SEARCH_PATHS))
        except TypeError:
            raise AnsibleError(
                "'search_paths' must be a string or flat list of strings, got {0}".format(
                    self._task.args.get("search_paths")
                )
            )
        candidates = " ".join(shlex.quote("{0}/{1}".format(p.rstrip("/"), shutdown_bin)) for p in search_paths)
        result = self._low_level_execute_command(
            'for c in {0}; do if [ -f "$c" ] && [ -x "$c" ]; then printf "%s\\n" "$c"; exit 0; fi; done; exit 1'.format(
                candidates
            ),
            sudoable=self.DEFAULT_SUDOABLE,
        )
        found = to_text(result["stdout"]).strip().splitlines()
        if result["rc"] != 0 or not found or not found[0].startswith("/"):
            raise AnsibleError(
                'Unable to find command "{0}" in search paths: {1}'.format(shutdown_bin, search_paths)
            )
        return found[0]
