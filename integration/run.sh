#!/usr/bin/env bash
# End-to-end tests: real engines (podman through conmon, as root and rootless;
# containerd through its runc v2 shim, driven by ctr) with ferry as their OCI
# runtime. Run by `make test` after the build; needs root.
#
#   integration/run.sh [SUITE...]
#
# SUITE: podman-root podman-rootless containerd cri (the default: all four).
# cri is containerd's CRI plugin with a RuntimeClass handler, driven by a Rust
# CRI client that is built first (about 75 s on 2 cores the first time).
#
# Environment:
#   FERRY=PATH          ferry binary (default: target/release/ferry; it is copied
#                       first, so a rebuild during the run does not matter)
#   INTEG_RUNTIME=PATH  test another runtime in ferry's place, e.g.
#                       INTEG_RUNTIME=/usr/sbin/runc, to check the tests themselves
#   KEEP=1              keep the scratch directory (/tmp/ferry-integ.*)
#
# Installs podman, conmon, containerd and python3 with apt-get when missing.
# Each suite is bounded by a timeout and cleans up (containers, daemons, mounts,
# cgroups) on exit, even on failure; this script then checks nothing of the
# run is left (processes, mounts) and removes the scratch directory.
set -uo pipefail

repo=$(cd "$(dirname "$(readlink -f "$0")")/.." && pwd)
here=$repo/integration
FERRY=${FERRY:-$repo/target/release/ferry}
SUITE_TIMEOUT=${SUITE_TIMEOUT:-300}
TEST_USER=${FERRY_TEST_USER:-ferrytest}
export TEST_USER CMD_TIMEOUT=${CMD_TIMEOUT:-60}

say() { printf '==> %s\n' "$*"; }

if [ "$(id -u)" -ne 0 ]; then
    echo "integration: must run as root (make test)" >&2
    exit 1
fi

suites=("$@")
[ ${#suites[@]} -gt 0 ] || suites=(podman-root podman-rootless containerd cri)
for s in "${suites[@]}"; do
    case $s in
        podman-root | podman-rootless | containerd | cri) ;;
        *) echo "integration: unknown suite $s" >&2; exit 2 ;;
    esac
done

# --- engines ------------------------------------------------------------------
pkgs=(podman conmon containerd python3 jq uidmap protobuf-compiler)
missing=()
for p in "${pkgs[@]}"; do
    [ "$(dpkg-query -W -f='${db:Status-Status}' "$p" 2>/dev/null)" = installed ] || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
    say "installing ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt_opts=(-y -qq -o DPkg::Lock::Timeout=300 -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold)
    installed=""
    for attempt in 1 2; do
        timeout 600 apt-get -qq -o DPkg::Lock::Timeout=300 update >/dev/null &&
            timeout 900 apt-get "${apt_opts[@]}" install "${missing[@]}" >/dev/null && { installed=yes; break; }
        say "apt-get failed (attempt $attempt)"
        sleep 5
    done
    if [ -z "$installed" ]; then
        echo "integration: could not install ${missing[*]}" >&2
        exit 1
    fi
fi

# --- runtime and scratch directory ----------------------------------------------
WORK=$(mktemp -d /tmp/ferry-integ.XXXXXX)
chmod 0755 "$WORK" # the rootless suite's user reads the runtime and rootfs here
export WORK
# shellcheck source=integration/lib.sh
. "$here/lib.sh"

finish() {
    set +e
    # Anything still running from this run (conmon, shims, podman cleanup
    # processes name the scratch directory on their command line).
    local p
    for p in $(pgrep -f "$WORK"); do
        [ "$p" = $$ ] || kill -KILL "$p" 2>/dev/null
    done
    umount_under "$WORK"
    if [ "${KEEP:-}" = 1 ]; then
        say "kept $WORK"
    else
        rm -rf "$WORK"
    fi
}
trap finish EXIT
trap 'exit 143' TERM INT HUP

mkdir -p "$WORK/bin"
if [ -n "${INTEG_RUNTIME:-}" ]; then
    RUNTIME_BIN=$(command -v "$INTEG_RUNTIME") || { echo "integration: $INTEG_RUNTIME not found" >&2; exit 1; }
    RUNTIME_BIN=$(readlink -f "$RUNTIME_BIN")
else
    [ -x "$FERRY" ] || { echo "integration: $FERRY not built (cargo build --release)" >&2; exit 1; }
    install -m 0755 "$FERRY" "$WORK/bin/ferry"
    RUNTIME_BIN=$WORK/bin/ferry
fi
export RUNTIME_BIN

bash "$repo/scripts/mkrootfs.sh" "$WORK/rootfs" || exit 1

# The CRI suite's kubelet stand-in, built outside the suite's time limit.
if [[ " ${suites[*]} " == *" cri "* ]]; then
    say "building integration/cri-client"
    CRI_CLIENT_TARGET=$repo/target/cri-client
    timeout 1200 cargo build --release --quiet --manifest-path "$here/cri-client/Cargo.toml" \
        --target-dir "$CRI_CLIENT_TARGET" || { echo "integration: could not build integration/cri-client" >&2; exit 1; }
    export CRI_CLIENT=$CRI_CLIENT_TARGET/release/ferry-cri-client
fi
tar -C "$WORK/rootfs" --numeric-owner --owner=0 --group=0 --exclude=./.mkrootfs-done -cf "$WORK/rootfs.tar" . || exit 1
chmod 0644 "$WORK/rootfs.tar"
export ROOTFS=$WORK/rootfs ROOTFS_TAR=$WORK/rootfs.tar

say "integration: $RUNTIME_BIN ($("$RUNTIME_BIN" --version 2>&1 | head -n 1)) under ${suites[*]}"
failed=()
results=()
n_pass=0 n_fail=0 n_na=0
t_all=$(date +%s)
for s in "${suites[@]}"; do
    case $s in
        podman-root) cmd=(bash "$here/podman.sh" root) ;;
        podman-rootless) cmd=(bash "$here/podman.sh" rootless) ;;
        containerd) cmd=(bash "$here/containerd.sh") ;;
        cri) cmd=(bash "$here/cri.sh") ;;
    esac
    say "$s"
    t0=$(date +%s)
    timeout -k 120 "$SUITE_TIMEOUT" "${cmd[@]}" 2>&1 | tee "$WORK/$s.log"
    rc=${PIPESTATUS[0]}
    read -r p f n < <(sed -nE "s/^#    $s: ([0-9]+) passed, ([0-9]+) failed, ([0-9]+) not applicable$/\1 \2 \3/p" "$WORK/$s.log")
    n_pass=$((n_pass + ${p:-0})) n_fail=$((n_fail + ${f:-0})) n_na=$((n_na + ${n:-0}))
    [ "$rc" = 0 ] || [ "${f:-0}" != 0 ] || n_fail=$((n_fail + 1)) # died without counting a failure
    dt=$(($(date +%s) - t0))
    [ "$rc" = 124 ] && echo "FAIL $s: timed out after ${SUITE_TIMEOUT}s"
    if [ "$rc" = 0 ]; then
        results+=("ok   $s (${dt}s)")
    else
        results+=("FAIL $s (${dt}s, status $rc)")
        failed+=("$s")
    fi
done

# Nothing of this run may be left running or mounted.
sleep 0.5
left_procs=$(pgrep -af "$WORK" | grep -v "^$$ ")
left_mounts=$(awk -v d="$WORK/" 'index($5, d) == 1 { print $5 }' /proc/self/mountinfo)
if [ -n "$left_procs$left_mounts" ]; then
    results+=("FAIL leftovers: processes: ${left_procs:-none}; mounts: ${left_mounts:-none}")
    failed+=(leftovers)
    n_fail=$((n_fail + 1))
fi

say "integration summary ($(($(date +%s) - t_all))s, runtime $RUNTIME_BIN)"
printf '    %s\n' "${results[@]}"
[ ${#failed[@]} -eq 0 ] || say "integration FAILED: ${failed[*]}"
# n/a checks (what the engine itself cannot do here) count as skipped.
echo "integration: $n_pass passed, $n_fail failed, $n_na skipped"
[ ${#failed[@]} -eq 0 ]
