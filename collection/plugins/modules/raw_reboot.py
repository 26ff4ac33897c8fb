# Documentation of the raw_reboot action plugin (plugins/action/raw_reboot.py); the
# action runs on the controller and sends only shell commands, so there is no module code.

from __future__ import annotations

DOCUMENTATION = r"""
module: raw_reboot
short_description: Reboot a host that has no Python and wait for it to come back
description:
  - M(ansible.builtin.reboot) without its two Python modules. The built-in runs C(setup) to learn the
    distribution and C(find) to locate the shutdown command; this action learns the first from
    C(/etc/os-release) and C(uname -s), and the second with C(test -x) over O(search_paths), both through
    the connection, so it reboots hosts without Python (CentOS 7 under current ansible-core, minimal images).
  - Everything else is the built-in's own code - the boot id read before and compared after, the
    connection reset, the waits and the test command - and so are the options and the results.
  - Values put into commands are quoted; what the host prints back is only compared with the built-in's
    tables of distributions or tested for being an absolute path.
version_added: 1.0.0
author:
  - raidfleet maintainers (@raidfleet)
requirements:
  - A POSIX shell, C(uname) and C(cat) on the host; no Python.
options:
  pre_reboot_delay:
    description:
      - Seconds to wait before the reboot, passed to the shutdown command (rounded down to minutes on Linux).
    type: int
    default: 0
  post_reboot_delay:
    description:
      - Seconds to wait after the host came back, before O(test_command) is run.
    type: int
    default: 0
  reboot_timeout:
    description:
      - Seconds to wait for the host to shut down, come back and pass O(test_command).
    type: int
    default: 600
  connect_timeout:
    description:
      - Seconds each connection attempt may take while waiting; the connection plugin's default when unset.
    type: int
  test_command:
    description:
      - Command that must succeed on the host before it counts as back.
    type: str
    default: whoami
  msg:
    description:
      - Message shown to logged-in users before the reboot.
    type: str
    default: Reboot initiated by Ansible
  search_paths:
    description:
      - Folders searched for the shutdown command when it is not an absolute path.
    type: list
    elements: str
    default: [/sbin, /bin, /usr/sbin, /usr/bin, /usr/local/sbin]
  boot_time_command:
    description:
      - Command whose output changes with every boot; it is read before and after the reboot.
    type: str
    default: cat /proc/sys/kernel/random/boot_id
  reboot_command:
    description:
      - Command that reboots the host, instead of the built-in's choice for the distribution; its first word
        is the shutdown command, looked up in O(search_paths) unless it is an absolute path.
    type: str
attributes:
  action:
    description: Runs on the controller as an action plugin.
    support: full
  check_mode:
    description: Can run in check mode and report what would change.
    support: full
    details: In check mode the host is not rebooted.
  diff_mode:
    description: Reports a diff.
    support: none
  platform:
    description: The hosts it can reboot.
    support: full
    platforms: posix
notes:
  - The host must answer over the connection again after the reboot, with the same credentials.
seealso:
  - module: ansible.builtin.reboot
"""

EXAMPLES = r"""
- name: Reboot a server without Python and wait up to 15 minutes
  raidfleet.driver_rollout.raw_reboot:
    reboot_timeout: 900
    msg: Rebooting to load the new RAID driver
"""

RETURN = r"""
rebooted:
  description: Whether the host was rebooted.
  returned: always
  type: bool
  sample: true
elapsed:
  description: Seconds from the reboot command to the host passing O(test_command).
  returned: always
  type: int
  sample: 23
"""
