# Helpers of tests/lab/build-image.sh, sourced by it (and part of its cache
# hash): logging, chroot mounts and cleanup, image labels, and the apt
# sources the roots are built from. Expects the variables build-image.sh
# sets (LOG, WORK_DIR, CACHE_DIR, CHROOT_PATH, FORCE, SUITES).
# shellcheck shell=bash

say() { printf '==> %s\n' "$*" | tee -a "$LOG"; }
die() {
    printf 'error: %s\n' "$*" >&2
    printf 'error: %s\n' "$*" >>"$LOG" 2>/dev/null || true
    exit 1
}

# Runs one command with its output going to the log only.
run() {
    printf '+ %s\n' "$*" >>"$LOG"
    if ! "$@" >>"$LOG" 2>&1; then
        die "command failed: $*"
    fi
}

# A clean environment inside the chroot: nothing from the caller's shell leaks in.
in_chroot() {
    local root=$1
    shift
    chroot "$root" /usr/bin/env -i PATH="$CHROOT_PATH" HOME=/root LC_ALL=C \
        DEBIAN_FRONTEND=noninteractive DEBCONF_NONINTERACTIVE_SEEN=true "$@"
}

# Mount points at or below $1, deepest first.
mounts_under() {
    awk -v p="$1" '$5 == p || index($5, p "/") == 1 { print $5 }' /proc/self/mountinfo |
        sort -r
}

umount_under() {
    local m
    for m in $(mounts_under "$1"); do
        umount "$m" 2>/dev/null || umount -l "$m" 2>/dev/null || true
    done
}

mount_chroot() {
    local root=$1
    mount -t proc proc "$root/proc"
    mount -t sysfs sysfs "$root/sys"
    mount --bind /dev "$root/dev"
    mount --bind /dev/pts "$root/dev/pts"
}

# The work dir is wiped before use and on exit. /dev is bind-mounted into the
# roots while they are chrooted into, so never delete while anything is mounted.
wipe_work() {
    umount_under "$WORK_DIR"
    if [[ -n $(mounts_under "$WORK_DIR") ]]; then
        printf 'error: still mounted under %s, not deleting it: %s\n' \
            "$WORK_DIR" "$(mounts_under "$WORK_DIR" | xargs)" >&2
        return 1
    fi
    rm -rf --one-file-system "$WORK_DIR"
}

# Writes to fd 8, the caller's stderr saved by main: a signal can arrive while
# run() has the shell's output redirected into the log.
on_exit() {
    local rc=$?
    trap - EXIT
    wipe_work 2>&8 || true
    rm -f "$CACHE_DIR"/*.tar.partial 2>/dev/null || true
    if ((rc != 0)) && [[ -s $LOG ]]; then
        {
            printf '\n---- last 40 lines of %s ----\n' "$LOG"
            tail -n 40 "$LOG"
            printf -- '---- build failed (exit %d); full log: %s ----\n' "$rc" "$LOG"
        } >&8
    fi
    exit "$rc"
}

label_of() { # image label
    docker image inspect -f "{{index .Config.Labels \"$2\"}}" "$1" 2>/dev/null || true
}

is_cached() { # tag hash
    ((FORCE == 0)) && [[ $(label_of "$1" aacraid.lab.hash) == "$2" ]]
}

# Drops the image a tag pointed to before it was rebuilt, unless something
# still uses it (docker refuses then, which is what we want).
drop_old_image() {
    local old=$1 tag=$2
    if [[ -n $old && $old != "$(docker image inspect -f '{{.Id}}' "$tag")" ]]; then
        docker image rm "$old" >/dev/null 2>&1 || true
    fi
}

# ---- apt sources -----------------------------------------------------------

# Prints "suite uri" for every enabled "deb" entry with component main in one
# host source file, one-line (.list) or deb822 (.sources) format.
source_entries() {
    case $1 in
    *.sources)
        awk '
            function flush(   n, m, i, j, U, S) {
                if (types ~ /(^| )deb( |$)/ && comps ~ /(^| )main( |$)/ && enabled != "no") {
                    n = split(uris, U, " "); m = split(suites, S, " ")
                    for (i = 1; i <= m; i++) for (j = 1; j <= n; j++) print S[i], U[j]
                }
                types = uris = suites = comps = ""; enabled = "yes"
            }
            BEGIN { enabled = "yes" }
            /^[ \t]*#/ { next }
            /^[ \t]*$/ { flush(); next }
            /^[ \t]/ { next }   # continuation line (e.g. an inline Signed-By key)
            {
                i = index($0, ":"); key = tolower(substr($0, 1, i - 1)); val = substr($0, i + 1)
                gsub(/^[ \t]+|[ \t]+$/, "", val); gsub(/[ \t]+/, " ", val)
                if (key == "types") types = val
                else if (key == "uris") uris = val
                else if (key == "suites") suites = val
                else if (key == "components") comps = val
                else if (key == "enabled") enabled = tolower(val)
            }
            END { flush() }' "$1"
        ;;
    *)
        awk '
            /^[ \t]*deb[ \t]/ {
                sub(/#.*/, ""); gsub(/\[[^]]*\]/, "")
                n = split($0, F, " ")
                for (i = 4; i <= n; i++) if (F[i] == "main") { print F[3], F[2]; break }
            }' "$1"
        ;;
    esac
}

# Sets MIRROR (for debootstrap), SOURCES (the chroot's deb822 sources file) and
# SOURCES_INPUT (the host files they came from, for the hash).
resolve_sources() {
    local -A uri=()
    local f suite u files=()
    for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list /etc/apt/sources.list.d/*.sources; do
        [[ -f $f ]] || continue
        local used=0
        while read -r suite u; do
            [[ " ${SUITES[*]} " == *" $suite "* && -z ${uri[$suite]:-} ]] || continue
            uri[$suite]=${u%/}
            used=1
        done < <(source_entries "$f")
        ((used)) && files+=("$f")
    done
    : "${uri[$SUITE]:=http://deb.debian.org/debian}"
    : "${uri[$SUITE-updates]:=${uri[$SUITE]}}"
    : "${uri[$SUITE-security]:=http://deb.debian.org/debian-security}"

    MIRROR=${uri[$SUITE]}
    SOURCES=""
    for suite in "${SUITES[@]}"; do
        SOURCES+="Types: deb
URIs: ${uri[$suite]}
Suites: $suite
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

"
    done
    SOURCES_INPUT=""
    if ((${#files[@]})); then
        SOURCES_INPUT=$(cat "${files[@]}")
    fi
}
