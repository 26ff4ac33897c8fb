#!/usr/bin/env bash
# The lab: the README's first command (`make lab`). Starts a build host and three RAID
# servers as containers of the lab images (no Python in any of them), runs
# playbooks/aacraid.yml against them with the fixture vendor package, boots one server's
# kernel with its regenerated initramfs under QEMU, and ends with playbooks/facts.yml.
#
# Usage: tests/lab/run-lab.sh [--clean]
#   --clean   remove the lab's containers and files instead (`make lab-clean`)
# Expects `make build`, the lab images and the vendor package (the Makefile's `lab` target
# provides all three). Containers stay up afterwards, so the playbooks can be run again:
#   .venv/core-latest/bin/ansible-playbook -i .lab/inventory.ini playbooks/facts.yml
set -euo pipefail
cd "$(dirname "$0")/../.."

readonly PREFIX=aacraid-lab
readonly STATE=.lab
# VENDOR_VERSION and MODULE_VERSION of the fixture vendor driver.
source tests/fixtures/version.env
readonly PACKAGE=tests/fixtures/out/aacraid-dkms-$VENDOR_VERSION.tgz
readonly DRIVER_VERSION=$MODULE_VERSION
readonly VENV=.venv/core-latest/bin
# name:image, the build host first.
readonly HOSTS=(
    "$PREFIX-build:aacraid-lab:dracut"
    "$PREFIX-server1:aacraid-lab:dracut"
    "$PREFIX-server2:aacraid-lab:initramfs-tools"
    "$PREFIX-server3:aacraid-lab:initramfs-tools"
)

say() { printf '\n==> %s\n' "$*"; }

clean() {
    for h in "${HOSTS[@]}"; do
        docker rm -f "${h%%:*}" >/dev/null 2>&1 || true
    done
    rm -rf "$STATE"
}

if [[ "${1:-}" == "--clean" ]]; then
    clean
    echo "lab removed"
    exit 0
fi

clean
mkdir -p "$STATE"
say "starting ${#HOSTS[@]} containers"
for h in "${HOSTS[@]}"; do
    docker run -d --name "${h%%:*}" "${h#*:}" >/dev/null
    echo "  ${h%%:*} (${h#*:})"
done

{
    echo "[build_hosts]"
    echo "${HOSTS[0]%%:*}"
    echo "[raid_servers]"
    for h in "${HOSTS[@]:1}"; do echo "${h%%:*}"; done
    echo "[all:vars]"
    echo "ansible_connection=community.docker.docker"
} > "$STATE/inventory.ini"

export ANSIBLE_CONFIG="$PWD/ansible.cfg"
say "ansible-playbook playbooks/aacraid.yml"
"$VENV/ansible-playbook" -i "$STATE/inventory.ini" playbooks/aacraid.yml \
    -e "aacraid_build_host_package=$PWD/$PACKAGE" \
    -e "aacraid_build_host_fetch_dir=$PWD/$STATE/artifacts" \
    -e "aacraid_server_driver_version=$DRIVER_VERSION"

server="${HOSTS[1]%%:*}"
kernel=$(docker exec "$server" head -n 1 /etc/aacraid-lab/kernels)
say "boot check: $server, kernel $kernel, its regenerated initramfs, under QEMU"
tests/bootcheck/boot-check.py --container "$server" --kernel "$kernel" --expect "$DRIVER_VERSION" --json

say "ansible-playbook playbooks/facts.yml"
"$VENV/ansible-playbook" -i "$STATE/inventory.ini" playbooks/facts.yml

say "done; the containers stay up (make lab-clean removes them)"
