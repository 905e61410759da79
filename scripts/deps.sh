#!/usr/bin/env bash
# Install what ferry's build, demo, tests and benchmark need. Idempotent; run
# as root on Debian 12. Quiet when everything is already there.
#
#  - Debian packages (installed only when missing)
#  - a Rust toolchain (rustup's, in ~/.cargo/bin)
#  - a non-root test user `ferrytest` (uid 1500 when free) with subordinate
#    uid/gid ranges in /etc/subuid and /etc/subgid
set -euo pipefail

TEST_USER=${FERRY_TEST_USER:-ferrytest}
TEST_UID=1500
# golang-github-containers-common ships podman's default seccomp profile
# (/usr/share/containers/seccomp.json) for the seccomp tests and bench.
# gcc and libc6-dev build the static attack and probe programs of the tests
# (cc -static) and the exec trampoline (build.rs).
PACKAGES=(busybox-static gcc libc6-dev uidmap runc crun hyperfine strace jq util-linux golang-github-containers-common umoci bc skopeo docker-registry apache2-utils openssl ca-certificates passt)
# mmdebstrap and qemu build and boot the systemd guest of integration/systemd.sh.
PACKAGES+=(mmdebstrap qemu-system-x86 e2fsprogs)

log() { echo "deps: $*" >&2; }

if [ "$(id -u)" -ne 0 ]; then
    log "must run as root"
    exit 1
fi

# podman: tests/image_push.rs loads ferry's docker-archives into it and runs
# them (with runc).
PACKAGES+=(podman)

# --- Debian packages ------------------------------------------------------
missing=()
for p in "${PACKAGES[@]}"; do
    status=$(dpkg-query -W -f='${db:Status-Status}' "$p" 2>/dev/null || true)
    [ "$status" = installed ] || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
    log "installing ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt_opts=(-y -qq -o DPkg::Lock::Timeout=300 -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold)
    apt-get -qq -o DPkg::Lock::Timeout=300 update >/dev/null
    apt-get "${apt_opts[@]}" install "${missing[@]}" >/dev/null
fi

# --- Rust toolchain -------------------------------------------------------
if ! command -v cargo >/dev/null 2>&1; then
    for d in "${CARGO_HOME:-$HOME/.cargo}/bin" /root/.cargo/bin; do
        if [ -x "$d/cargo" ]; then export PATH="$d:$PATH"; break; fi
    done
fi
if ! command -v cargo >/dev/null 2>&1; then
    log "no Rust toolchain found (expected rustup's cargo in ~/.cargo/bin)"
    exit 1
fi
if command -v rustup >/dev/null 2>&1; then
    # clippy and rustfmt are needed by `make lint`; add them if the toolchain lacks them.
    for c in clippy rustfmt; do
        rustup component list --installed 2>/dev/null | grep -q "^$c" ||
            rustup component add "$c" >/dev/null 2>&1 || log "could not add rustup component $c"
    done
fi

# --- unprivileged user namespaces ----------------------------------------
if [ -w /proc/sys/kernel/unprivileged_userns_clone ] &&
    [ "$(cat /proc/sys/kernel/unprivileged_userns_clone)" = 0 ]; then
    log "enabling kernel.unprivileged_userns_clone"
    echo 1 > /proc/sys/kernel/unprivileged_userns_clone
fi
if [ -r /proc/sys/user/max_user_namespaces ] &&
    [ "$(cat /proc/sys/user/max_user_namespaces)" = 0 ]; then
    log "raising user.max_user_namespaces"
    echo 15000 > /proc/sys/user/max_user_namespaces
fi

# --- test user ------------------------------------------------------------
if ! getent passwd "$TEST_USER" >/dev/null; then
    log "creating user $TEST_USER"
    uid_opt=()
    getent passwd "$TEST_UID" >/dev/null || uid_opt=(-u "$TEST_UID")
    if ! getent group "$TEST_USER" >/dev/null; then
        if getent group "$TEST_UID" >/dev/null; then
            groupadd "$TEST_USER"
        else
            groupadd -g "$TEST_UID" "$TEST_USER"
        fi
    fi
    useradd -m -s /bin/sh -g "$TEST_USER" "${uid_opt[@]}" "$TEST_USER"
fi

# Subordinate ids: 65536 starting at 200000, or after the highest range in use.
add_subids() { # FILE
    local f=$1 start
    touch "$f"
    grep -q "^$TEST_USER:" "$f" && return 0
    start=$(awk -F: 'BEGIN { s = 200000 }
        NF >= 3 && $2 + $3 > s { s = $2 + $3 } END { print s }' "$f")
    log "adding $TEST_USER:$start:65536 to $f"
    echo "$TEST_USER:$start:65536" >> "$f"
}
add_subids /etc/subuid
add_subids /etc/subgid

# --- second test user -----------------------------------------------------
# `ferrytest2` (uid 1501 when free): another unprivileged host user, for the
# tests that check one user cannot reach another's (or root's) image store.
# Its subordinate ranges start after the highest range in use, so they never
# overlap ferrytest's.
TEST_USER2=${FERRY_TEST_USER2:-ferrytest2}
TEST_UID2=1501
if ! getent passwd "$TEST_USER2" >/dev/null; then
    log "creating user $TEST_USER2"
    uid_opt2=()
    getent passwd "$TEST_UID2" >/dev/null || uid_opt2=(-u "$TEST_UID2")
    if ! getent group "$TEST_USER2" >/dev/null; then
        if getent group "$TEST_UID2" >/dev/null; then
            groupadd "$TEST_USER2"
        else
            groupadd -g "$TEST_UID2" "$TEST_USER2"
        fi
    fi
    useradd -m -s /bin/sh -g "$TEST_USER2" "${uid_opt2[@]}" "$TEST_USER2"
fi
TEST_USER=$TEST_USER2 add_subids /etc/subuid
TEST_USER=$TEST_USER2 add_subids /etc/subgid

# --- /dev/net/tun for rootless networking ------------------------------------
# `ferry image run`'s private network (pasta, from the passt package) opens
# /dev/net/tun inside the container's namespaces; rootless, that needs the
# mode Debian's udev rules give it (0666). Some VMs leave it 0600.
if [ -c /dev/net/tun ] && [ "$(stat -c %a /dev/net/tun)" != 666 ]; then
    log "making /dev/net/tun 0666 (Debian's default) for rootless networking"
    chmod 0666 /dev/net/tun
fi
