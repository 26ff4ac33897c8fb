#!/usr/bin/env bash
# Builds the "lab images" the system tests and Molecule scenarios run in:
# Debian 12 roots made with debootstrap (no registry is reachable, so nothing is
# pulled), each holding two real Debian kernels with their headers, dkms, gcc,
# make, kmod and rpm tools, and one initramfs tool that has already generated a
# real initramfs per kernel. Two variants, because the tools conflict:
#
#   aacraid-lab:dracut            dracut (non-hostonly images)
#   aacraid-lab:initramfs-tools   initramfs-tools
#
# With --python, also aacraid-lab:<variant>-python (the same plus python3), used
# only by the benchmarks that compare against Python modules.
#
# Usage: tests/lab/build-image.sh [--python] [--force] [all|dracut|initramfs-tools]
# See tests/lab/README.md for the cache rule and what each image records.
set -euo pipefail

readonly SUITE=bookworm
readonly SUITES=("$SUITE" "$SUITE-updates" "$SUITE-security")
readonly KERNEL_SERIES=6.1.0
readonly REPO=aacraid-lab
readonly ALL_VARIANTS=(dracut initramfs-tools)
readonly COMMON_PACKAGES=(dkms kmod gcc make rpm rpm2cpio cpio zstd xz-utils gzip openssh-server inotify-tools)
# dracut.conf.d file of the dracut variant that trades image size for speed.
readonly LAB_SPEED_CONF=91-aacraid-lab-speed.conf
readonly CHROOT_PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin

SCRIPT=$(readlink -f "${BASH_SOURCE[0]}")
readonly SCRIPT
readonly CACHE_DIR=${AACRAID_LAB_CACHE:-/var/cache/aacraid-lab}
readonly WORK_DIR=${AACRAID_LAB_WORK:-${TMPDIR:-/var/tmp}/aacraid-lab-build}
readonly LOG=$CACHE_DIR/build.log

usage() {
    cat <<EOF
usage: $0 [--python] [--force] [all|dracut|initramfs-tools]

Builds $REPO:<variant> for the chosen variants (default: all), skipping any
image whose aacraid.lab.hash label already matches the current inputs.
  --python   also build $REPO:<variant>-python (the image plus python3)
  --force    rebuild even when the hash matches (e.g. to pick up newer kernels)
Environment: AACRAID_LAB_CACHE (default /var/cache/aacraid-lab),
             AACRAID_LAB_WORK (default \${TMPDIR:-/var/tmp}/aacraid-lab-build)
EOF
}

# shellcheck source=tests/lab/lab-lib.sh
source "$(dirname "$SCRIPT")/lab-lib.sh"

# ---- common root -----------------------------------------------------------

# Newest two ABIs of the series for which both the headers and an image exist
# in the chroot's apt index, newest first, e.g. "6.1.0-56 6.1.0-55".
choose_abis() {
    local root=$1 headers images abi abis=() chosen=()
    headers=$(in_chroot "$root" apt-cache pkgnames "linux-headers-$KERNEL_SERIES-")
    images=$(in_chroot "$root" apt-cache pkgnames "linux-image-$KERNEL_SERIES-")
    mapfile -t abis < <(sed -nE "s/^linux-headers-(${KERNEL_SERIES//./\\.}-[0-9]+)-amd64$/\1/p" <<<"$headers" | sort -Vr)
    for abi in "${abis[@]}"; do
        if grep -qxE "linux-image-$abi-amd64(-unsigned)?" <<<"$images"; then
            chosen+=("$abi")
        fi
        ((${#chosen[@]} < 2)) || break
    done
    ((${#chosen[@]} == 2)) ||
        die "need two $KERNEL_SERIES kernel ABIs with image and headers in the apt index, found: ${chosen[*]:-none}"
    echo "${chosen[@]}"
}

# The unsigned image when the archive has it, otherwise the signed one.
image_package() {
    local root=$1 kver=$2
    if [[ -n $(in_chroot "$root" apt-cache pkgnames "linux-image-$kver-unsigned") ]]; then
        echo "linux-image-$kver-unsigned"
    else
        echo "linux-image-$kver"
    fi
}

assert_no_python() {
    local root=$1 what=$2 bins pkgs
    bins=$(find "$root/usr/bin" "$root/usr/sbin" "$root/usr/local/bin" "$root/usr/local/sbin" \
        -maxdepth 1 -name 'python3*' 2>/dev/null | sed "s|^$root||")
    pkgs=$(dpkg-query --admindir="$root/var/lib/dpkg" -W -f '${db:Status-Status} ${Package}\n' |
        awk '$1 != "not-installed" && $2 ~ /^(lib)?python3/ { print $2 }')
    if [[ -n $bins || -n $pkgs ]]; then
        die "python3 found in the $what root (it must not be there): $(echo "$bins" "$pkgs" | xargs)"
    fi
}

build_common() {
    local root=$WORK_DIR/common abis kernels=()
    say "debootstrap --variant=minbase $SUITE from $MIRROR"
    mkdir -p "$root"
    run debootstrap --variant=minbase --arch=amd64 --components=main "$SUITE" "$root" "$MIRROR"

    rm -f "$root/etc/apt/sources.list"
    printf '%s' "$SOURCES" >"$root/etc/apt/sources.list.d/debian.sources"
    cat >"$root/etc/apt/apt.conf.d/90aacraid-lab" <<'EOF'
APT::Install-Recommends "false";
APT::Install-Suggests "false";
EOF
    # Docs, man pages and translations are dead weight in a test image.
    cat >"$root/etc/dpkg/dpkg.cfg.d/90aacraid-lab" <<'EOF'
path-exclude=/usr/share/doc/*
path-include=/usr/share/doc/*/copyright
path-exclude=/usr/share/man/*
path-exclude=/usr/share/info/*
path-exclude=/usr/share/locale/*
EOF
    # No daemon may start inside the chroot; removed before the image is made.
    printf '#!/bin/sh\nexit 101\n' >"$root/usr/sbin/policy-rc.d"
    chmod 755 "$root/usr/sbin/policy-rc.d"

    mount_chroot "$root"
    run in_chroot "$root" apt-get update
    # debootstrap only knows the release; take bookworm-updates/-security too.
    run in_chroot "$root" apt-get -y --no-install-recommends dist-upgrade
    abis=$(choose_abis "$root")
    read -r -a abis <<<"$abis"
    kernels=("${abis[0]}-amd64" "${abis[1]}-amd64")
    say "kernels: ${kernels[*]}"
    say "installing ${COMMON_PACKAGES[*]} and the headers of both kernels"
    run in_chroot "$root" apt-get install -y --no-install-recommends \
        "${COMMON_PACKAGES[@]}" "linux-headers-${kernels[0]}" "linux-headers-${kernels[1]}"
    run in_chroot "$root" apt-get clean
    umount_under "$root"

    mkdir -p "$root/etc/aacraid-lab"
    printf '%s\n' "${kernels[@]}" >"$root/etc/aacraid-lab/kernels"
    install_sshd_setup "$root"
    assert_no_python "$root" common
}

# Key-only root login over SSH. Every container makes its own host key when it starts
# (aacraid-lab-init), so the image carries none.
install_sshd_setup() {
    local root=$1
    rm -f "$root"/etc/ssh/ssh_host_*
    cat >"$root/etc/ssh/sshd_config.d/90-aacraid-lab.conf" <<'EOF'
HostKey /etc/ssh/ssh_host_ed25519_key
PermitRootLogin prohibit-password
PasswordAuthentication no
KbdInteractiveAuthentication no
EOF
    install -m 0755 "$(dirname "$SCRIPT")/aacraid-lab-init" "$root/usr/local/sbin/aacraid-lab-init"
}

# Leaves the common root in $WORK_DIR/common, from the cache when possible.
ensure_common() {
    local root=$WORK_DIR/common tarball=$CACHE_DIR/common-${COMMON_HASH:0:16}.tar
    [[ -d $root ]] && return 0
    if [[ -f $tarball ]]; then
        say "common root from cache: $tarball"
        mkdir -p "$root"
        run tar -C "$root" --numeric-owner -xf "$tarball"
        return 0
    fi
    build_common
    say "caching the common root as $tarball"
    find "$CACHE_DIR" -maxdepth 1 -name 'common-*.tar' -delete
    run tar -C "$root" --numeric-owner -cf "$tarball.partial" .
    mv "$tarball.partial" "$tarball"
}

# ---- variants --------------------------------------------------------------

build_variant() {
    local variant=$1 hash=$2 tag=$REPO:$1 root=$WORK_DIR/$1
    local kernels=() images=() kver initrd lister listing old start=$SECONDS
    ensure_common
    say "[$variant] building $tag"
    rm -rf --one-file-system "$root"
    run cp -a "$WORK_DIR/common" "$root"
    mapfile -t kernels <"$root/etc/aacraid-lab/kernels"

    mount_chroot "$root"
    run in_chroot "$root" apt-get update
    case $variant in
    dracut)
        # The image is built in a chroot: a host-only image would describe the
        # build machine, not the machines the lab image stands for. minbase has
        # no init system, hence no poweroff/reboot/halt for dracut's shutdown
        # module (which only unmounts the root at power-off): leave it out
        # rather than have every dracut run print "FAILED: dracut-install".
        mkdir -p "$root/etc/dracut.conf.d"
        printf '%s\n' 'hostonly="no"' 'omit_dracutmodules+=" shutdown "' \
            >"$root/etc/dracut.conf.d/90-aacraid-lab.conf"
        # Speed over size: dracut's own gzip setting (-9) spends about 54 of a
        # run's 64 s here compressing; level 1 makes every test's rebuild about
        # five times faster for a 12% larger image, still gzip. The benchmarks
        # remove this file, to time dracut as Debian configures it.
        printf '%s\n' 'compress="gzip -n -1"' >"$root/etc/dracut.conf.d/$LAB_SPEED_CONF"
        ;;
    esac
    # The tool first, so that the kernels' postinst hooks find it.
    run in_chroot "$root" apt-get install -y --no-install-recommends "$variant"
    for kver in "${kernels[@]}"; do
        images+=("$(image_package "$root" "$kver")")
    done
    say "[$variant] installing ${images[*]} (generates the initramfs images; slow)"
    run in_chroot "$root" apt-get install -y --no-install-recommends "${images[@]}"

    for kver in "${kernels[@]}"; do
        initrd=/boot/initrd.img-$kver
        [[ -s $root$initrd ]] || die "[$variant] $variant did not write $initrd"
        lister=lsinitramfs
        [[ $variant == dracut ]] && lister=lsinitrd
        listing=$(in_chroot "$root" "$lister" "$initrd") || die "[$variant] $lister $initrd failed"
        grep -q '/aacraid\.ko' <<<"$listing" ||
            die "[$variant] $initrd does not contain aacraid.ko ($lister)"
    done

    run in_chroot "$root" apt-get clean
    umount_under "$root"
    [[ -z $(mounts_under "$root") ]] || die "[$variant] could not unmount the chroot"
    rm -rf "$root"/var/lib/apt/lists/* "$root"/var/cache/apt/*.bin "$root"/tmp/* \
        "$root/usr/sbin/policy-rc.d" "$root/etc/resolv.conf"
    echo "$variant" >"$root/etc/aacraid-lab/variant"
    assert_no_python "$root" "$variant"

    say "[$variant] importing into docker as $tag"
    old=$(docker image inspect -f '{{.Id}}' "$tag" 2>/dev/null || true)
    import_root "$root" "$tag" \
        "aacraid.lab.hash=$hash" \
        "aacraid.lab.variant=$variant" \
        "aacraid.lab.kernels=$(IFS=,; echo "${kernels[*]}")" \
        "aacraid.lab.suite=$SUITE" >>"$LOG" 2>&1 || die "[$variant] docker import failed"
    drop_old_image "$old" "$tag"
    rm -rf --one-file-system "$root"
    say "[$variant] done in $((SECONDS - start)) s"
}

import_root() {
    local root=$1 tag=$2 label changes=()
    shift 2
    for label in "$@"; do changes+=(--change "LABEL $label"); done
    tar -C "$root" --numeric-owner -c . |
        docker import \
            --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
            --change 'CMD ["/usr/local/sbin/aacraid-lab-init"]' \
            "${changes[@]}" \
            --message "built by tests/lab/build-image.sh" - "$tag"
}

readonly PYTHON_DOCKERFILE='RUN apt-get update && apt-get install -y --no-install-recommends python3 && rm -rf /var/lib/apt/lists/*'

build_python() {
    local variant=$1 base=$REPO:$1 tag=$REPO:$1-python hash old
    hash=$(printf '%s\n%s\n' "$(label_of "$base" aacraid.lab.hash)" "$PYTHON_DOCKERFILE" | sha256sum | cut -d' ' -f1)
    if is_cached "$tag" "$hash"; then
        say "[$variant] $tag is cached (hash ${hash:0:12})"
        return 0
    fi
    say "[$variant] building $tag"
    old=$(docker image inspect -f '{{.Id}}' "$tag" 2>/dev/null || true)
    # No build context (Dockerfile on stdin); the base is local, nothing is pulled.
    printf 'FROM %s\n%s\n' "$base" "$PYTHON_DOCKERFILE" |
        docker build --pull=false --label "aacraid.lab.hash=$hash" \
            --label aacraid.lab.python=yes -t "$tag" - >>"$LOG" 2>&1 ||
        die "[$variant] docker build of $tag failed"
    drop_old_image "$old" "$tag"
}

# ---- main ------------------------------------------------------------------

main() {
    local python=0 target="" variant variants=() start=$SECONDS
    FORCE=0
    while (($#)); do
        case $1 in
        --python) python=1 ;;
        --force) FORCE=1 ;;
        -h | --help) usage; exit 0 ;;
        all | dracut | initramfs-tools)
            [[ -z $target ]] || { usage >&2; exit 2; }
            target=$1
            ;;
        *) usage >&2; exit 2 ;;
        esac
        shift
    done
    case ${target:-all} in
    all) variants=("${ALL_VARIANTS[@]}") ;;
    *) variants=("$target") ;;
    esac

    ((EUID == 0)) || die "must run as root (debootstrap, chroot, mount)"
    command -v docker >/dev/null || die "docker is not installed"
    mkdir -p "$CACHE_DIR"
    exec 9>"$CACHE_DIR/lock"
    flock -n 9 || die "another build holds $CACHE_DIR/lock"
    : >"$LOG"
    docker info >/dev/null 2>&1 || die "the docker engine is not reachable"

    resolve_sources
    COMMON_HASH=$(printf '%s\n' "$(cat "$SCRIPT" "$(dirname "$SCRIPT")"/{lab-lib.sh,aacraid-lab-init} | sha256sum)" "$(dpkg --print-architecture)" \
        "$SOURCES" "$SOURCES_INPUT" | sha256sum | cut -d' ' -f1)

    exec 8>&2
    trap on_exit EXIT
    trap 'exit 130' INT TERM HUP
    local -A hash=()
    local todo=()
    for variant in "${variants[@]}"; do
        hash[$variant]=$(printf '%s\n%s\n' "$COMMON_HASH" "$variant" | sha256sum | cut -d' ' -f1)
        if is_cached "$REPO:$variant" "${hash[$variant]}"; then
            say "[$variant] $REPO:$variant is cached (hash ${hash[$variant]:0:12})"
        else
            todo+=("$variant")
        fi
    done

    if ((${#todo[@]})); then
        if ! command -v debootstrap >/dev/null; then
            say "installing debootstrap"
            run apt-get update
            run apt-get install -y --no-install-recommends debootstrap
        fi
        wipe_work || exit 1
        mkdir -p "$WORK_DIR"
        ensure_common
        # The variants side by side: much of each build waits on the mirror.
        local -A pid=()
        local failed=()
        for variant in "${todo[@]}"; do
            build_variant "$variant" "${hash[$variant]}" &
            pid[$variant]=$!
        done
        for variant in "${todo[@]}"; do
            wait "${pid[$variant]}" || failed+=("$variant")
        done
        ((${#failed[@]} == 0)) || die "the build of ${failed[*]} failed (see $LOG)"
    fi
    if ((python)); then
        for variant in "${variants[@]}"; do build_python "$variant"; done
    fi

    echo
    printf '%-32s %-10s %s\n' IMAGE SIZE KERNELS
    for variant in "${variants[@]}"; do
        local tags=("$REPO:$variant") tag
        ((python)) && tags+=("$REPO:$variant-python")
        for tag in "${tags[@]}"; do
            printf '%-32s %-10s %s\n' "$tag" \
                "$(docker image ls --format '{{.Size}}' "$tag")" \
                "$(label_of "$tag" aacraid.lab.kernels)"
        done
    done
    say "finished in $((SECONDS - start)) s"
}

main "$@"
