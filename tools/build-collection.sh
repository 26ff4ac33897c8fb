#!/usr/bin/env bash
# Stages the raidfleet.driver_rollout collection from this repository into
# <root>/ansible_collections/raidfleet/driver_rollout (the layout ansible-test
# wants) and, with --tarball <dir>, builds its tarball there with
# ansible-galaxy. The module binaries come from library/ (`make build`);
# --no-binaries leaves them out, for `ansible-test sanity`, which reads
# every file of the tree and cannot read an ELF binary. ANSIBLE_GALAXY names
# the ansible-galaxy to run (default: the one on PATH).
#
#   tools/build-collection.sh [--no-binaries] [--tarball <dir>] <root>
#
# The tree: collection/ (galaxy.yml, meta/runtime.yml, README.md, the changelog, the
# per-module action plugins, raw_reboot's documentation), the shared action plugin as
# plugins/plugin_utils/binary_module.py, raw_reboot's action, each module's documentation as
# plugins/modules/<m>.py (tools/sidecar_doc.py), the three roles and the two playbooks.
# Each binary is bin/<m>, and plugins/modules/<m> a link to it: ansible-core runs the module
# through the link, and `ansible-doc -l` passes over links, so it lists the module from its .py
# (given the binary itself, it fails to read it as text and drops the module from the list,
# even though it then finds the .py: ansible-core 2.16 to 2.19).
set -euo pipefail
cd "$(dirname "$0")/.."

binaries=true tarball=""
while (($#)); do
    case $1 in
        --no-binaries) binaries=false; shift ;;
        --tarball) tarball=$2; shift 2 ;;
        -*) echo "build-collection.sh: unknown option $1" >&2; exit 2 ;;
        *) break ;;
    esac
done
(($# == 1)) || { echo "usage: tools/build-collection.sh [--no-binaries] [--tarball <dir>] <root>" >&2; exit 2; }
# The Makefile's rule: a module is a folder of modules/ holding a sidecar <name>/<name>.yml.
MODULES=()
for sidecar in modules/*/*.yml; do
    m=$(basename "$(dirname "$sidecar")")
    [[ $sidecar == "modules/$m/$m.yml" ]] && MODULES+=("$m")
done
tree=$1/ansible_collections/raidfleet/driver_rollout

rm -rf "$tree"
mkdir -p "$tree"/{plugins/modules,plugins/action,plugins/plugin_utils,playbooks,roles}
cp -R collection/. "$tree"/
cp plugins/action/binary_module.py "$tree"/plugins/plugin_utils/
cp plugins/action/raw_reboot.py "$tree"/plugins/action/
for m in "${MODULES[@]}"; do
    python3 tools/sidecar_doc.py "modules/$m/$m.yml" raidfleet.driver_rollout "${MODULES[@]}" raw_reboot \
        > "$tree/plugins/modules/$m.py"
    if $binaries; then
        [[ -x library/$m ]] || { echo "build-collection.sh: library/$m is missing: run make build" >&2; exit 1; }
        install -D -m 0755 "library/$m" "$tree/bin/$m"
        ln -s "../../bin/$m" "$tree/plugins/modules/$m"
    fi
done
cp -R roles/aacraid_build_host roles/aacraid_platform roles/aacraid_server "$tree"/roles/
cp playbooks/aacraid.yml playbooks/facts.yml "$tree"/playbooks/

if [[ -n $tarball ]]; then
    mkdir -p "$tarball"
    "${ANSIBLE_GALAXY:-ansible-galaxy}" collection build --force --output-path "$tarball" "$tree"
fi
