#!/usr/bin/env bash
# `ferry image run --rm IMAGE true` with the private network (pasta) and
# with --network none, as root and rootless (user ferrytest), against
# `podman run --rm` on the same image (podman's default network, as root a
# netavark bridge, and --network none), in one interleaved run.
#
#   bench/run.sh                 (as root; N=20 runs per row)
#   N=50 FERRY=target/fasttest/ferry bench/run.sh
#
# The image is the busybox test rootfs (scripts/mkrootfs.sh) made into an
# OCI layout with umoci; ferry imports the layout, podman gets it through
# `skopeo copy oci:... containers-storage:...`. podman runs with runc (crun
# refuses this cgroup v1 "hybrid" host) and a nofile/nproc ulimit this VM
# allows (podman's defaults are above the hard limits here). Without
# podman, its rows are skipped with a note. At the end, no pasta process may
# be left.
set -uo pipefail
export LC_ALL=C

N=${N:-20}
WARMUP=${WARMUP:-2}
TEST_USER=${FERRY_TEST_USER:-ferrytest}
here=$(cd "$(dirname "$0")/.." && pwd)
FERRY=${FERRY:-$here/target/release/ferry}
IMAGE=localhost/ferry-runbench:latest

log() { echo "run-bench: $*" >&2; }

[ "$(id -u)" -eq 0 ] || { log "must run as root"; exit 1; }
[ -x "$FERRY" ] || { log "no ferry binary at $FERRY"; exit 1; }

work=$(mktemp -d /tmp/ferry-runbench.XXXXXX)
chmod 755 "$work"
have_podman=0
cleanup() {
    [ $have_podman = 1 ] && podman rmi -f "$IMAGE" >/dev/null 2>&1
    rm -rf "$work"
}
trap cleanup EXIT

# --- the image -------------------------------------------------------------
bash "$here/scripts/mkrootfs.sh" "$work/rootfs" >/dev/null 2>&1 || { log "mkrootfs failed"; exit 1; }
(
    cd "$work" &&
        umoci init --layout layout &&
        umoci new --image layout:bb &&
        umoci unpack --image layout:bb unpacked >/dev/null &&
        cp -a rootfs/. unpacked/rootfs/ &&
        umoci repack --image layout:bb unpacked &&
        umoci config --image layout:bb --config.cmd /bin/true
) >/dev/null 2>&1 || { log "umoci could not make the OCI layout"; exit 1; }
chmod -R a+rX "$work/layout"

mkdir -p "$work/root" "$work/rl"
"$FERRY" --root "$work/root/state" image --store "$work/root/store" \
    import --name bb "oci:$work/layout:bb" >/dev/null || { log "ferry import failed"; exit 1; }
rootless=0
if id "$TEST_USER" >/dev/null 2>&1; then
    chown "$TEST_USER:" "$work/rl"
    as_user() { setpriv --reuid="$TEST_USER" --regid="$TEST_USER" --init-groups env HOME=/tmp XDG_RUNTIME_DIR= "$@"; }
    if as_user "$FERRY" --root "$work/rl/state" image --store "$work/rl/store" \
        import --name bb "oci:$work/layout:bb" >/dev/null; then
        rootless=1
    else
        log "rootless import failed: no rootless rows"
    fi
else
    log "no user $TEST_USER: no rootless rows"
fi
PODMAN=(podman run --rm --runtime runc --ulimit nofile=1024:1024 --ulimit nproc=1024:1024)
if command -v podman >/dev/null && command -v skopeo >/dev/null &&
    skopeo copy "oci:$work/layout:bb" "containers-storage:$IMAGE" >/dev/null 2>&1 &&
    "${PODMAN[@]}" "$IMAGE" true >/dev/null 2>&1; then
    have_podman=1
else
    log "podman cannot run the image here: no podman rows"
fi

# --- the rows ----------------------------------------------------------------
names=() cmds=()
add() { names+=("$1"); cmds+=("$2"); }
F_ROOT="$FERRY --root $work/root/state image --store $work/root/store run --rm"
add "ferry private" "$F_ROOT bb true"
add "ferry none" "$F_ROOT --network none bb true"
if [ $rootless = 1 ]; then
    F_RL="setpriv --reuid=$TEST_USER --regid=$TEST_USER --init-groups env HOME=/tmp XDG_RUNTIME_DIR= $FERRY --root $work/rl/state image --store $work/rl/store run --rm"
    add "ferry rootless private" "$F_RL bb true"
    add "ferry rootless none" "$F_RL --network none bb true"
fi
if [ $have_podman = 1 ]; then
    add "podman (bridge)" "${PODMAN[*]} $IMAGE true"
    add "podman none" "${PODMAN[*]} --network none $IMAGE true"
fi

declare -A samples
for ((i = 0; i < WARMUP + N; i++)); do
    # Interleaved, in alternating order, so drift hits every row alike.
    order=$(seq 0 $((${#names[@]} - 1)))
    ((i % 2)) && order=$(echo "$order" | tac)
    for j in $order; do
        t0=${EPOCHREALTIME/./}
        if ! ${cmds[$j]} </dev/null >/dev/null 2>"$work/err"; then
            log "${names[$j]} failed: $(head -c 300 "$work/err")"
            exit 1
        fi
        t1=${EPOCHREALTIME/./}
        ((i >= WARMUP)) && samples[$j]+="$(((t1 - t0)))"$'\n'
    done
done

# --- the report --------------------------------------------------------------
median() { sort -n | awk '{ a[NR] = $1 } END { printf "%d", (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2 }'; }
declare -A med
printf '%-24s %10s %10s   (ms, N=%d)\n' "" median mean "$N"
for j in "${!names[@]}"; do
    m=$(printf '%s' "${samples[$j]}" | median)
    mean=$(printf '%s' "${samples[$j]}" | awk '{ s += $1 } END { printf "%d", s / NR }')
    med[${names[$j]}]=$m
    printf '%-24s %10.1f %10.1f\n' "${names[$j]}" "$(echo "$m / 1000" | bc -l)" "$(echo "$mean / 1000" | bc -l)"
done
ratio() { [ -n "${med[$1]:-}" ] && [ -n "${med[$2]:-}" ] && printf '%-40s %6.2fx\n' "$1 / $2" "$(echo "${med[$1]} / ${med[$2]}" | bc -l)"; }
echo
ratio "ferry private" "ferry none"
ratio "ferry rootless private" "ferry rootless none"
ratio "podman (bridge)" "ferry private"
ratio "podman none" "ferry none"

left=$(ps -eo comm=,args= | awk -v w="$work" '$1 ~ /^pas/ && index($0, w)' | wc -l)
echo
if [ "$left" -ne 0 ]; then
    echo "FAIL: $left pasta process(es) left behind"
    exit 1
fi
echo "no pasta process left behind"
