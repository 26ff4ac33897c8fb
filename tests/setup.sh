#!/usr/bin/env bash
# Installs everything the build and the tests need on a fresh Debian 12
# machine, and does nothing when it is already there: apt packages, the
# musl Rust target, and the Python virtual environments with pinned
# ansible-core releases (the newest pip resolves here, and 2.16, the last
# one that still runs Python modules on CentOS 7 hosts).
set -euo pipefail
cd "$(dirname "$0")/.."

APT_PACKAGES=(debootstrap musl-tools zstd xz-utils cpio file rpm qemu-system-x86)
missing=()
for p in "${APT_PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
    echo "setup: apt-get install ${missing[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

if ! rustup target list --installed | grep -qx x86_64-unknown-linux-musl; then
    echo "setup: rustup target add x86_64-unknown-linux-musl"
    rustup target add x86_64-unknown-linux-musl
fi

# name  requirements (pinned)
make_venv() {
    local name=$1; shift
    local dir=.venv/$name stamp
    stamp=$(printf '%s\n' "$@" | sha256sum | cut -c1-16)
    if [[ -f $dir/.stamp && $(cat "$dir/.stamp") == "$stamp" ]]; then
        return
    fi
    echo "setup: python venv $dir ($*)"
    rm -rf "$dir"
    python3 -m venv "$dir"
    "$dir/bin/pip" install -q --disable-pip-version-check "$@"
    echo "$stamp" > "$dir/.stamp"
}

# The newest ansible-core for Python 3.11 (2.19), the `ansible` package of
# the same line for community.docker, Molecule with the docker driver,
# ansible-lint and pytest.
make_venv core-latest \
    ansible-core==2.19.14 ansible==12.3.0 \
    molecule==26.10.0 "molecule-plugins[docker]==26.10.12" \
    ansible-lint==26.10.1 pytest==9.2.0
# ansible-core 2.16 with the `ansible` 9 collections (community.docker).
make_venv core-2.16 ansible-core==2.16.19 ansible==9.13.0
