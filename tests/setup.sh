#!/usr/bin/env bash
# Installs everything the build and the tests need on a fresh Debian 12
# machine, and does nothing when it is already there: apt packages, the
# musl Rust target, and the Python virtual environments with pinned
# ansible-core releases listed in tests/venvs.txt.
set -euo pipefail
cd "$(dirname "$0")/.."

# Two setups at once (make -j, two checkouts sharing .venv through a link) would
# remove each other's half-made environments: the second waits for the first.
mkdir -p .venv
exec 9> .venv/.setup.lock
flock 9

APT_PACKAGES=(debootstrap musl-tools zstd xz-utils lz4 bzip2 cpio file rpm qemu-system-x86 strace libarchive-tools openssl
    fdisk grub-pc-bin grub2-common openssh-client)
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

# tests/venvs.txt and tests/tool-venvs.txt: name, then requirements (`read -a` splits without globbing), on fd 3
# so that pip cannot read the list as its stdin.
while read -r -u 3 name rest; do
    [[ -z $name || $name == \#* ]] && continue
    read -ra requirements <<< "$rest"
    make_venv "$name" "${requirements[@]}"
done 3< <(cat tests/venvs.txt tests/tool-venvs.txt)

# ansible-test (the collection's sanity test) makes a virtual environment per test and puts
# pip in each with a bootstrap script it downloads from ci-files.testing.ansible.com, which
# this machine cannot reach. That script is pip's own wheel run as a zip; the same, made from
# PyPI's wheel of the pip release ansible-test asks for, goes where ansible-test looks for its
# cached copy.
ANSIBLE_TEST_PIP=24.2
pip_cache=$HOME/.ansible/test/cache
pip_bootstrap=$pip_cache/get_pip_${ANSIBLE_TEST_PIP//./_}.py
if [[ ! -f $pip_bootstrap ]]; then
    echo "setup: ansible-test's pip $ANSIBLE_TEST_PIP bootstrap from PyPI's wheel"
    mkdir -p "$pip_cache"
    .venv/core-latest/bin/pip download -q --disable-pip-version-check --no-deps --only-binary :all: \
        -d "$pip_cache" "pip==$ANSIBLE_TEST_PIP"
    cat > "$pip_bootstrap.tmp" <<EOF
# Written by tests/setup.sh in place of ansible-test's downloaded get-pip script: runs pip
# $ANSIBLE_TEST_PIP from its wheel to install the packages named on the command line.
import os
import runpy
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "pip-$ANSIBLE_TEST_PIP-py3-none-any.whl"))
sys.argv[1:] = ["install", "--upgrade", "--force-reinstall"] + [a for a in sys.argv[1:] if a not in ("--no-setuptools", "--no-wheel")]
runpy.run_module("pip", run_name="__main__", alter_sys=True)
EOF
    mv "$pip_bootstrap.tmp" "$pip_bootstrap"
fi
