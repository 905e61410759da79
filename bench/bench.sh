#!/usr/bin/env bash
# Benchmark create + start + delete of /bin/true: ferry vs runc vs crun.
#
#   bench/bench.sh            (as root; N=50 cycles per runtime and mode)
#   N=10 bench/bench.sh
#   FERRY=/path/to/ferry RUNTIMES="ferry crun" MODES=root bench/bench.sh
#
# Modes: root, rootless, and seccomp (as root, with podman's default seccomp
# profile from /usr/share/containers/seccomp.json, package
# golang-github-containers-common, converted for the bundle's capabilities
# the way podman does it).
#
# All runtimes get the same bundle (busybox rootfs, config from `runc spec`
# with terminal=false and args ["/bin/true"]) and their own --root. Cycles are
# interleaved (A B C, C B A, ...) so drift hits every runtime alike. The
# rootless rows run as user ferrytest (scripts/deps.sh creates it) with a
# config from `runc spec --rootless`. crun refuses cgroup v1 "hybrid" hosts,
# so the whole run happens in a private mount namespace in which
# /sys/fs/cgroup/unified is unmounted. A runtime that fails is reported and
# shown as n/a; the others go on.
set -uo pipefail
export LC_ALL=C

N=${N:-50}
WARMUP=${WARMUP:-2}
TEST_USER=${FERRY_TEST_USER:-ferrytest}
# FERRY_BASELINE=/path/to/an/older/ferry adds it as "ferry-base", so that
# one interleaved run also gives the ratio of this ferry to an older one.
RUNTIMES=${RUNTIMES:-"ferry runc crun${FERRY_BASELINE:+ ferry-base}"}
MODES=${MODES:-"root rootless seccomp"}

now_us() { local t=${EPOCHREALTIME/./}; echo "$t"; }

# ---------------------------------------------------------------------------
# Worker: runs the interleaved loop for one mode and appends one line per
# successful cycle to OUT: "NAME CREATE_US START_US DELETE_US", and one line
# "FAIL NAME STEP MESSAGE" per runtime that failed.
#   bench.sh --worker BUNDLE OUT N WARMUP NAME=BIN=ROOT...
worker() {
    local bundle=$1 out=$2 n=$3 warmup=$4
    shift 4
    local -a names=() bins=() roots=() alive=()
    local spec
    for spec in "$@"; do
        names+=("${spec%%=*}")
        spec=${spec#*=}
        bins+=("${spec%%=*}")
        roots+=("${spec#*=}")
        alive+=(1)
    done
    local errf
    errf=$(mktemp "${TMPDIR:-/tmp}/bench-err.XXXXXX")
    local c_create c_start c_delete step

    # cycle IDX ID: one create/start/delete; sets c_* (us) or step on failure.
    cycle() {
        local b=${bins[$1]} r=${roots[$1]} id=$2 t0 t1 t2 t3
        t0=${EPOCHREALTIME/./}
        if ! "$b" --root "$r" create --bundle "$bundle" "$id" </dev/null >/dev/null 2>"$errf"; then
            step=create; return 1
        fi
        t1=${EPOCHREALTIME/./}
        if ! "$b" --root "$r" start "$id" </dev/null >/dev/null 2>"$errf"; then
            step=start; return 1
        fi
        t2=${EPOCHREALTIME/./}
        if ! "$b" --root "$r" delete --force "$id" </dev/null >/dev/null 2>"$errf"; then
            step=delete; return 1
        fi
        t3=${EPOCHREALTIME/./}
        c_create=$((t1 - t0)) c_start=$((t2 - t1)) c_delete=$((t3 - t2))
    }
    fail() { # IDX ID
        local msg
        msg=$(tr '\n' ' ' <"$errf" | cut -c1-300)
        echo "FAIL ${names[$1]} $step ${msg:-(no message)}" >>"$out"
        "${bins[$1]}" --root "${roots[$1]}" delete --force "$2" </dev/null >/dev/null 2>&1 || true
        alive[$1]=0
    }

    local i j k id count=${#names[@]}
    for ((j = 0; j < count; j++)); do
        for ((i = 0; i < warmup; i++)); do
            id=bench-${names[$j]}-w$i-$$
            if ! cycle "$j" "$id"; then fail "$j" "$id"; break; fi
        done
    done
    for ((i = 0; i < n; i++)); do
        for ((k = 0; k < count; k++)); do
            # ABC CBA ABC ...
            if ((i % 2 == 0)); then j=$k; else j=$((count - 1 - k)); fi
            ((alive[j])) || continue
            id=bench-${names[$j]}-$i-$$
            if cycle "$j" "$id"; then
                echo "${names[$j]} $c_create $c_start $c_delete" >>"$out"
            else
                fail "$j" "$id"
            fi
        done
    done
    rm -f "$errf"
}

if [ "${1:-}" = --worker ]; then
    shift
    worker "$@"
    exit 0
fi

# ---------------------------------------------------------------------------
# Driver (root).
if [ "$(id -u)" -ne 0 ]; then
    echo "bench: run as root (rootless rows switch to user $TEST_USER themselves)" >&2
    exit 1
fi
self=$(readlink -f "$0")
repo=$(cd "$(dirname "$self")/.." && pwd)
FERRY=${FERRY:-$repo/target/release/ferry}

if [ -z "${FERRY_BENCH_NS:-}" ]; then
    exec unshare -m --propagation private env FERRY_BENCH_NS=1 bash "$self" "$@"
fi
# Inside the private mount namespace: hide the empty cgroup2 hierarchy so that
# crun sees a plain cgroup v1 host. The host is not affected.
if mountpoint -q /sys/fs/cgroup/unified 2>/dev/null; then
    umount -l /sys/fs/cgroup/unified
fi

T=$(mktemp -d /tmp/ferry-bench.XXXXXX)
chmod 0755 "$T"
cleanup() { rm -rf "$T"; }
trap cleanup EXIT

cp "$self" "$T/bench.sh"
chmod 0755 "$T/bench.sh"
# The rootless user may not be able to reach the work tree: use a copy.
if [ -x "$FERRY" ]; then
    cp "$FERRY" "$T/ferry"
    chmod 0755 "$T/ferry"
fi
if [ -n "${FERRY_BASELINE:-}" ]; then
    cp "$FERRY_BASELINE" "$T/ferry-base"
    chmod 0755 "$T/ferry-base"
fi

bin_of() {
    case $1 in
        ferry) echo "$T/ferry" ;;
        ferry-base) echo "$T/ferry-base" ;;
        *) command -v "$1" || echo "/nonexistent/$1" ;;
    esac
}
version_of() {
    local b
    b=$(bin_of "$1")
    if [ -x "$b" ]; then
        "$b" --version 2>/dev/null | head -n1 || true
    else
        echo "not found"
    fi
}

bash "$repo/scripts/mkrootfs.sh" "$T/rootfs"
spec_tool=$(command -v runc || true)
if [ -z "$spec_tool" ]; then
    echo "bench: runc is needed to generate the configs (apt-get install runc)" >&2
    exit 1
fi

mkdir -p "$T/bundle-root"
runc spec --bundle "$T/bundle-root"
jq --arg root "$T/rootfs" \
    '.process.terminal = false | .process.args = ["/bin/true"] | .root.path = $root' \
    "$T/bundle-root/config.json" >"$T/bundle-root/c.json"
mv "$T/bundle-root/c.json" "$T/bundle-root/config.json"

# Podman's default profile as an OCI profile: keep the rules whose
# includes/excludes (capabilities, arches) fit this bundle on amd64.
have_seccomp=0
podman_profile=/usr/share/containers/seccomp.json
if [ -r "$podman_profile" ]; then
    have_seccomp=1
    mkdir -p "$T/bundle-seccomp"
    jq --slurpfile prof "$podman_profile" '
        (.process.capabilities.bounding // []) as $caps
        | $prof[0] as $p
        | .linux.seccomp = {
            defaultAction: $p.defaultAction,
            defaultErrnoRet: $p.defaultErrnoRet,
            architectures: ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"],
            syscalls: [$p.syscalls[]
              | select(all(.includes.caps[]?; . as $c | $caps | index($c)))
              | select(any(.excludes.caps[]?; . as $c | $caps | index($c)) | not)
              | select((.includes.arches // []) as $a | $a == [] or ($a | index("amd64")))
              | select((.excludes.arches // []) | index("amd64") | not)
              | del(.includes, .excludes, .comment)]
          }' "$T/bundle-root/config.json" >"$T/bundle-seccomp/config.json"
    chmod -R a+rX "$T/bundle-seccomp"
fi

have_user=0
if uid=$(id -u "$TEST_USER" 2>/dev/null) && gid=$(id -g "$TEST_USER" 2>/dev/null); then
    have_user=1
    mkdir -p "$T/bundle-rootless" "$T/rl/xdg"
    runc spec --rootless --bundle "$T/bundle-rootless"
    jq --arg root "$T/rootfs" --argjson uid "$uid" --argjson gid "$gid" \
        '.process.terminal = false | .process.args = ["/bin/true"] | .root.path = $root
         | .linux.uidMappings = [{containerID: 0, hostID: $uid, size: 1}]
         | .linux.gidMappings = [{containerID: 0, hostID: $gid, size: 1}]' \
        "$T/bundle-rootless/config.json" >"$T/bundle-rootless/c.json"
    mv "$T/bundle-rootless/c.json" "$T/bundle-rootless/config.json"
    chmod -R a+rX "$T/bundle-rootless" "$T/bundle-root"
    chown -R "$uid:$gid" "$T/rl"
    chmod 0700 "$T/rl/xdg"
fi

echo "create + start + delete of /bin/true, N=$N per runtime and mode (+$WARMUP warm-up), interleaved"
for rt in $RUNTIMES; do
    printf '  %-6s %s\n' "$rt" "$(version_of "$rt")"
done
echo

results=()   # "mode rt mean median min create start delete n" or "mode rt n/a msg"
for mode in $MODES; do
    out=$T/data-$mode.txt
    specs=()
    for rt in $RUNTIMES; do
        if [ "$mode" = root ] || [ "$mode" = seccomp ]; then
            specs+=("$rt=$(bin_of "$rt")=$T/state-$mode/$rt")
        else
            specs+=("$rt=$(bin_of "$rt")=$T/rl/state/$rt")
        fi
    done
    echo "running $mode ..." >&2
    if [ "$mode" = root ]; then
        : >"$out"
        mkdir -p "$T/state-root"
        "$T/bench.sh" --worker "$T/bundle-root" "$out" "$N" "$WARMUP" "${specs[@]}"
    elif [ "$mode" = seccomp ]; then
        if [ "$have_seccomp" = 0 ]; then
            echo "bench: $podman_profile missing (run scripts/deps.sh): no seccomp rows" >&2
            continue
        fi
        : >"$out"
        mkdir -p "$T/state-seccomp"
        "$T/bench.sh" --worker "$T/bundle-seccomp" "$out" "$N" "$WARMUP" "${specs[@]}"
    elif [ "$have_user" = 1 ]; then
        out=$T/rl/data-$mode.txt
        : >"$out"
        chown "$uid:$gid" "$out"
        (cd "$T/rl" && setpriv --reuid="$uid" --regid="$gid" --init-groups \
            env -i PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
            HOME="$T/rl" XDG_RUNTIME_DIR="$T/rl/xdg" TMPDIR="$T/rl" LC_ALL=C \
            "$T/bench.sh" --worker "$T/bundle-rootless" "$out" "$N" "$WARMUP" "${specs[@]}")
    else
        echo "bench: user $TEST_USER missing (run scripts/deps.sh): no rootless rows" >&2
        continue
    fi
    for rt in $RUNTIMES; do
        failmsg=$(awk -v rt="$rt" '$1 == "FAIL" && $2 == rt { $1 = ""; $2 = ""; sub(/^ +/, ""); print; exit }' "$out")
        if [ -n "$failmsg" ]; then
            echo "bench: $mode $rt failed at $failmsg" >&2
        fi
        line=$(awk -v rt="$rt" '$1 == rt { print $2 + $3 + $4, $2, $3, $4 }' "$out" | sort -n |
            awk '{ t[NR] = $1; s += $1; c += $2; st += $3; d += $4 }
                 END { if (NR == 0) exit
                       med = (NR % 2) ? t[(NR + 1) / 2] : (t[NR / 2] + t[NR / 2 + 1]) / 2
                       printf "%.2f %.2f %.2f %.2f %.2f %.2f %d\n",
                              s / NR / 1000, med / 1000, t[1] / 1000,
                              c / NR / 1000, st / NR / 1000, d / NR / 1000, NR }')
        if [ -n "$line" ] && [ -z "$failmsg" ]; then
            results+=("$mode $rt $line")
        else
            results+=("$mode $rt n/a")
        fi
    done
done

echo
printf '%-9s %-10s %9s %9s %9s %8s %8s %8s %5s\n' mode runtime "mean ms" "median" "min" create start delete n
for r in "${results[@]}"; do
    # shellcheck disable=SC2086
    set -- $r
    if [ "$3" = n/a ]; then
        printf '%-9s %-10s %9s\n' "$1" "$2" n/a
    else
        printf '%-9s %-10s %9s %9s %9s %8s %8s %8s %5s\n' "$@"
    fi
done

mean_of() { # MODE RT
    local r
    for r in "${results[@]}"; do
        # shellcheck disable=SC2086
        set -- $r
        if [ "$1" = "$MODE_" ] && [ "$2" = "$RT_" ] && [ "$3" != n/a ]; then
            echo "$3"; return
        fi
    done
}
ratio() { # A B
    if [ -n "$1" ] && [ -n "$2" ]; then awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a / b }'; else echo n/a; fi
}
echo
for mode in $MODES; do
    MODE_=$mode RT_=ferry; f=$(mean_of)
    MODE_=$mode RT_=crun; c=$(mean_of)
    MODE_=$mode RT_=runc; r=$(mean_of)
    printf '%-9s ferry/crun = %-6s ferry/runc = %-6s (runc/crun = %s)\n' "$mode" \
        "$(ratio "$f" "$c")" "$(ratio "$f" "$r")" "$(ratio "$r" "$c")"
    if [ -n "${FERRY_BASELINE:-}" ]; then
        MODE_=$mode RT_=ferry-base; fb=$(mean_of)
        printf '%-9s ferry/ferry-base = %s   ferry-base/crun = %s\n' "$mode" \
            "$(ratio "$f" "$fb")" "$(ratio "$fb" "$c")"
    fi
done
# What podman's profile adds to one create+start+delete, per runtime.
line=""
for rt in $RUNTIMES; do
    MODE_=seccomp RT_=$rt; a=$(mean_of)
    MODE_=root RT_=$rt; b=$(mean_of)
    if [ -n "$a" ] && [ -n "$b" ]; then
        line="$line $rt $(awk -v a="$a" -v b="$b" 'BEGIN { printf "%+.2f", a - b }')"
    fi
done
if [ -n "$line" ]; then
    echo "seccomp - root (mean ms):$line"
fi
