# Controller side of the initramfs_regen module: the plugin all four binary modules share
# (plugins/plugin_utils/binary_module.py; the module cache, remote_src, fetch_dir).

from __future__ import annotations

from ansible_collections.raidfleet.driver_rollout.plugins.plugin_utils.binary_module import ActionModule

__all__ = ["ActionModule"]
