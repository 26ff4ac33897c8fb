#!/usr/bin/env bash
# Builds the lab's virtual-machine disk: a bootable Debian 12 disk image made from the
# aacraid-lab:initramfs-tools image (its newest kernel only, as a server usually has one
# kernel and every other kernel doubles the work of a rollout under software emulation;
# headers, dkms, tools and the lab's key-only sshd; no Python), plus systemd as init and
# systemd-networkd, booted by GRUB installed in the disk's own MBR and reading the
# guest's own /boot. QEMU has no Adaptec
# controller, so the guest loads aacraid at boot on purpose: it is listed in
# /etc/initramfs-tools/modules (loaded from the initramfs, so the image's copy is the one
# that runs) and in /etc/modules-load.d. The first images are made with MODULES=most (a
# container has no root device to inspect); later ones, made in the guest, with MODULES=dep,
# as a sysadmin sets it on a server: under software emulation MODULES=most takes minutes.
#
# Output: $AACRAID_LAB_CACHE/vm-<hash>.raw (sparse, 8 GiB apparent) and vm-<hash>.json
# (kernel, label). The hash covers this script and the base image's own hash label, so
# a rebuilt base or an edited script makes a new disk; otherwise a run ends at once.
# Login keys and host keys are not in the disk: tests/vmlib.py writes fresh ones into
# each run's copy.
#
# Usage: tests/lab/build-vm.sh [--force]       (root: mount)
set -euo pipefail

readonly BASE=aacraid-lab:initramfs-tools
readonly LABEL=aacraid-vm
readonly SIZE=8G
# Where the partition starts, in bytes (sector 2048).
readonly OFFSET=1048576
readonly CACHE_DIR=${AACRAID_LAB_CACHE:-/var/cache/aacraid-lab}
SCRIPT=$(readlink -f "${BASH_SOURCE[0]}")
readonly SCRIPT

say() { printf '==> %s\n' "$*"; }
die() { printf 'build-vm: %s\n' "$*" >&2; exit 1; }

force=0
case ${1:-} in
--force) force=1 ;;
"") ;;
*) echo "usage: $0 [--force]" >&2; exit 2 ;;
esac
((EUID == 0)) || die "must run as root (mount)"
for tool in sfdisk mkfs.ext4 grub-mkimage docker; do
    command -v "$tool" >/dev/null || die "$tool is missing (tests/setup.sh installs it)"
done
base_hash=$(docker image inspect -f '{{index .Config.Labels "aacraid.lab.hash"}}' "$BASE" 2>/dev/null) ||
    die "$BASE is missing: run tests/lab/build-image.sh first"
hash=$(printf '%s\n%s\n' "$base_hash" "$(sha256sum <"$SCRIPT")" | sha256sum | cut -c1-16)
disk=$CACHE_DIR/vm-$hash.raw
meta=$CACHE_DIR/vm-$hash.json
mkdir -p "$CACHE_DIR"
exec 9>"$CACHE_DIR/vm.lock"
flock 9
if ((!force)) && [[ -f $disk && -f $meta ]]; then
    say "cached: $disk"
    echo "$meta"
    exit 0
fi
start=$SECONDS

work=$(mktemp -d "${TMPDIR:-/var/tmp}/aacraid-vm.XXXXXX")
tag=aacraid-lab-vm-build:$hash
cid=""
cleanup() {
    set +e
    mountpoint -q "$work/mnt" && umount "$work/mnt"
    [[ -n $cid ]] && docker rm -f "$cid" >/dev/null 2>&1
    docker image rm -f "$tag" >/dev/null 2>&1
    rm -rf "$work"
}
trap cleanup EXIT

kernel=$(docker run --rm "$BASE" head -n 1 /etc/aacraid-lab/kernels)
say "guest root from $BASE with systemd, sshd and networkd (kernel $kernel)"
# No build context: the Dockerfile comes on stdin and its base is local.
docker build --pull=false -q -t "$tag" - >"$work/build.log" 2>&1 <<EOF || { tail -n 30 "$work/build.log" >&2; die "docker build failed"; }
FROM $BASE
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      systemd-sysv udev dbus iproute2 \
 && abi=\$(sed -n 2p /etc/aacraid-lab/kernels) && abi=\${abi%-amd64} \
 && DEBIAN_FRONTEND=noninteractive apt-get purge -y \
      \$(dpkg-query -W -f '\${Package}\n' | grep -E "^linux-(image|headers)-\$abi-") \
 && ! ls /boot/initrd.img-\$abi-* 2>/dev/null \
 && head -n 1 /etc/aacraid-lab/kernels > /etc/aacraid-lab/kernels.vm && mv /etc/aacraid-lab/kernels.vm /etc/aacraid-lab/kernels \
 && rm -rf /var/lib/apt/lists/* /var/cache/apt/*.bin
RUN printf '%s\n' '[Match]' 'Name=en* eth*' '[Network]' 'DHCP=ipv4' > /etc/systemd/network/10-lab.network \
 && systemctl enable systemd-networkd.service ssh.service \
 && systemctl set-default multi-user.target \
 && echo aacraid > /etc/modules-load.d/aacraid.conf \
 && echo aacraid >> /etc/initramfs-tools/modules \
 && echo 'LABEL=$LABEL / ext4 errors=remount-ro 0 1' > /etc/fstab \
 && for k in \$(cat /etc/aacraid-lab/kernels); do update-initramfs -u -k "\$k"; done \
 && lsinitramfs /boot/initrd.img-$kernel | grep -q '/aacraid\.ko' \
 && sed -i 's/^MODULES=.*/MODULES=dep/' /etc/initramfs-tools/initramfs.conf \
 && echo vm > /etc/aacraid-lab/variant
EOF
if docker run --rm "$tag" sh -c 'ls /usr/bin/python3* /usr/lib/python3* 2>/dev/null' | grep -q .; then
    die "python3 found in the guest root (it must not be there)"
fi
cid=$(docker create "$tag")

say "disk: $SIZE sparse, one MBR partition at 1 MiB, ext4 labelled $LABEL"
# No partition device is needed (this machine's kernel may not scan partition tables):
# mkfs and mount reach the partition by its byte offset.
truncate -s "$SIZE" "$work/disk.raw"
echo "start=$((OFFSET / 512)), type=83, bootable" | sfdisk -q "$work/disk.raw"
size_kib=$(( ($(stat -c %s "$work/disk.raw") - OFFSET) / 1024 ))
# GRUB 2.06 cannot read ext4's orphan_file and metadata_csum_seed features.
mkfs.ext4 -q -F -L "$LABEL" -O ^orphan_file,^metadata_csum_seed -E offset=$OFFSET "$work/disk.raw" "${size_kib}k"
mkdir "$work/mnt"
mount -o loop,offset=$OFFSET "$work/disk.raw" "$work/mnt"
docker export "$cid" | tar -C "$work/mnt" --numeric-owner -xf -
# docker export leaves the files it bind-mounts empty.
echo "$LABEL" >"$work/mnt/etc/hostname"
printf '127.0.0.1\tlocalhost\n127.0.1.1\t%s\n' "$LABEL" >"$work/mnt/etc/hosts"
: >"$work/mnt/etc/resolv.conf"
rm -f "$work/mnt/.dockerenv"

# GRUB for BIOS, set up by hand rather than by grub-install (which wants a partition
# device): boot.img's code in the MBR (the partition table after it is kept), core.img
# in the gap before the partition. core.img finds the partition by its label and reads
# the modules and grub.cfg from the guest's /boot/grub.
say "GRUB (i386-pc) in the MBR, reading /boot/grub/grub.cfg from the guest's own disk"
mkdir -p "$work/mnt/boot/grub/i386-pc"
cp /usr/lib/grub/i386-pc/*.mod /usr/lib/grub/i386-pc/*.lst "$work/mnt/boot/grub/i386-pc/"
printf '%s\n' "search --no-floppy --label --set=root $LABEL" 'set prefix=($root)/boot/grub' >"$work/early.cfg"
grub-mkimage -O i386-pc -o "$work/core.img" -c "$work/early.cfg" -p /boot/grub \
    biosdisk part_msdos ext2 search search_label normal configfile
core_size=$(stat -c %s "$work/core.img")
((core_size < OFFSET - 512)) || die "core.img ($core_size bytes) does not fit before the partition"
dd if=/usr/lib/grub/i386-pc/boot.img of="$work/disk.raw" bs=440 count=1 conv=notrunc status=none
dd if="$work/core.img" of="$work/disk.raw" bs=512 seek=1 conv=notrunc status=none
cat >"$work/mnt/boot/grub/grub.cfg" <<EOF
# Written by tests/lab/build-vm.sh: boots /boot/vmlinuz-$kernel with /boot/initrd.img-$kernel,
# the files on this disk that kmod_update and initramfs_regen change.
serial --unit=0 --speed=115200
terminal_input serial
terminal_output serial
set timeout=0
set default=0
insmod part_msdos
insmod ext2
insmod linux
search --no-floppy --label --set=root $LABEL
menuentry 'Debian 12, $kernel' {
    linux /boot/vmlinuz-$kernel root=LABEL=$LABEL ro console=ttyS0,115200 net.ifnames=0 panic=10
    initrd /boot/initrd.img-$kernel
}
EOF
umount "$work/mnt"

rm -f "$CACHE_DIR"/vm-*.raw "$CACHE_DIR"/vm-*.json
mv "$work/disk.raw" "$disk"
printf '{"kernel": "%s", "label": "%s", "base": "%s"}\n' "$kernel" "$LABEL" "$BASE" >"$meta"
say "built $disk in $((SECONDS - start)) s"
echo "$meta"
