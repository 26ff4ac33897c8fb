#!/usr/bin/env bash
# The lab: the README's first command (`make lab`). Starts a build host and three RAID
# servers as containers of the lab images and a fourth RAID server as a QEMU virtual machine
# (tests/lab/lab-vm.py; no Python in any of them), all reached over SSH with a key made for
# this run. Runs playbooks/aacraid.yml against them with the fixture vendor package; the VM
# alone may reboot (aacraid_server_reboot_ok), so the role reboots it and checks the driver
# it comes back with. Then shows the VM's post-boot driver version and dmesg line, boots one
# container server's kernel with its regenerated initramfs under QEMU, and ends with
# playbooks/facts.yml.
#
# Usage: tests/lab/run-lab.sh [--clean]
#   --clean   remove the lab's containers and files instead (`make lab-clean`)
# Expects `make build`, the lab images, the VM disk and the vendor package (the Makefile's
# `lab` target provides them). Containers and VM stay up afterwards, so the playbooks can be
# run again:
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
readonly VM=$PREFIX-vm
# name:image, the build host first.
readonly HOSTS=(
    "$PREFIX-build:aacraid-lab:dracut"
    "$PREFIX-server1:aacraid-lab:dracut"
    "$PREFIX-server2:aacraid-lab:initramfs-tools"
    "$PREFIX-server3:aacraid-lab:initramfs-tools"
)

say() { printf '\n==> %s\n' "$*"; }

clean() {
    tests/lab/lab-vm.py stop "$STATE/vm"
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

# The container's address once its sshd listens; its host key, read through docker (out of
# band, as an admin reads a new server's key off its console), goes to known_hosts.
trust() {
    local name=$1 address key i
    address=$(docker inspect -f '{{range .NetworkSettings.Networks}}{{.IPAddress}} {{end}}' "$name")
    address=${address%% *}
    [[ $address =~ ^[0-9]+(\.[0-9]+){3}$ ]] || { echo "no IPv4 address for $name: '$address'" >&2; return 1; }
    for ((i = 0; i < 150; i++)); do
        timeout 1 bash -c ": </dev/tcp/$address/22" 2>/dev/null && break
        sleep 0.2
    done
    ((i < 150)) || { echo "sshd of $name did not listen on $address:22" >&2; return 1; }
    key=$(docker exec "$name" cat /etc/ssh/ssh_host_ed25519_key.pub)
    read -r -a key <<<"$key"
    echo "$address ${key[0]} ${key[1]}" >>"$STATE/known_hosts"
    echo "$address"
}

clean
mkdir -p "$STATE"
say "a login key for this lab run: $STATE/id_ed25519"
ssh-keygen -q -t ed25519 -N '' -C aacraid-lab-login -f "$STATE/id_ed25519"
: >"$STATE/known_hosts"
say "starting ${#HOSTS[@]} containers (sshd, key-only root login)"
declare -A address=()
for h in "${HOSTS[@]}"; do
    docker run -d --name "${h%%:*}" -e "AACRAID_LAB_LOGIN_KEY=$(cat "$STATE/id_ed25519.pub")" "${h#*:}" >/dev/null
done
say "booting $VM under QEMU (GRUB, systemd, sshd; its own disk)"
mkdir -p "$STATE/vm"
tests/lab/lab-vm.py start "$STATE/vm" "$VM" >"$STATE/vm/inventory-line" &
vm_starting=$!
for h in "${HOSTS[@]}"; do
    address[${h%%:*}]=$(trust "${h%%:*}")
    echo "  ${h%%:*} (${h#*:}) root@${address[${h%%:*}]}"
done
wait "$vm_starting" || { echo "the VM did not boot; its console: $STATE/vm/console.log" >&2; exit 1; }

# The ssh connection, as a user's inventory has it (ControlPersist comes from ansible.cfg).
{
    echo "[build_hosts]"
    echo "${HOSTS[0]%%:*} ansible_host=${address[${HOSTS[0]%%:*}]}"
    echo "[raid_servers]"
    for h in "${HOSTS[@]:1}"; do echo "${h%%:*} ansible_host=${address[${h%%:*}]}"; done
    echo "$(cat "$STATE/vm/inventory-line") aacraid_server_reboot_ok=true"
    echo "[all:vars]"
    echo "ansible_connection=ssh"
    echo "ansible_user=root"
    echo "ansible_ssh_private_key_file=$PWD/$STATE/id_ed25519"
    echo "ansible_ssh_common_args='-o UserKnownHostsFile=$PWD/$STATE/known_hosts -o StrictHostKeyChecking=yes -o IdentitiesOnly=yes'"
} > "$STATE/inventory.ini"

export ANSIBLE_CONFIG="$PWD/ansible.cfg"
say "ansible-playbook playbooks/aacraid.yml"
"$VENV/ansible-playbook" -i "$STATE/inventory.ini" playbooks/aacraid.yml \
    -e "aacraid_build_host_package=$PWD/$PACKAGE" \
    -e "aacraid_build_host_fetch_dir=$PWD/$STATE/artifacts" \
    -e "aacraid_server_driver_version=$DRIVER_VERSION"

say "$VM after its reboot: uptime, the driver it runs, the kernel's banner"
"$VENV/ansible" -i "$STATE/inventory.ini" "$VM" -m raw \
    -a 'uptime -s; cat /sys/module/aacraid/version; dmesg | grep "Adaptec aacraid driver"'

server="${HOSTS[1]%%:*}"
kernel=$(docker exec "$server" head -n 1 /etc/aacraid-lab/kernels)
say "boot check: $server, kernel $kernel, its regenerated initramfs, under QEMU"
tests/bootcheck/boot-check.py --container "$server" --kernel "$kernel" --expect "$DRIVER_VERSION" --json

say "ansible-playbook playbooks/facts.yml"
"$VENV/ansible-playbook" -i "$STATE/inventory.ini" playbooks/facts.yml

say "done; the containers and the VM stay up (make lab-clean removes them)"
