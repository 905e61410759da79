#!/usr/bin/env bash
# podman (through conmon) with the runtime under test registered as `ferry`.
#
#   integration/podman.sh root|rootless
#
# Called by integration/run.sh, which exports WORK (a scratch directory),
# RUNTIME_BIN (the runtime binary: a copy of ferry, or runc to check the
# tests themselves), ROOTFS_TAR (a busybox rootfs as a tar) and TEST_USER.
# Nothing outside $WORK/podman-MODE is configured: podman reads the
# containers.conf given by CONTAINERS_CONF and the storage.conf given by
# CONTAINERS_STORAGE_CONF (vfs driver, private --root/--runroot/--tmpdir).
set -uo pipefail

MODE=${1:-root}
here=$(cd "$(dirname "$(readlink -f "$0")")" && pwd)
SUITE="podman-$MODE"
# shellcheck source=integration/lib.sh
. "$here/lib.sh"

: "${WORK:?run through integration/run.sh}" "${RUNTIME_BIN:?}" "${ROOTFS_TAR:?}"
TEST_USER=${TEST_USER:-ferrytest}
IMG=localhost/busybox
NET=(--network none)

D=$WORK/podman-$MODE
mkdir -p "$D"
if [ "$MODE" = rootless ]; then
    U_UID=$(id -u "$TEST_USER") || { fail "user $TEST_USER exists (scripts/deps.sh creates it)"; exit 1; }
    U_GID=$(id -g "$TEST_USER")
    XDG=$D/xdg
    mkdir -p "$D/home/.config" "$XDG"
    chmod 0700 "$XDG"
    TMPD=$XDG/libpod/tmp
fi
TMPD=${TMPD:-$D/tmp}

cat >"$D/containers.conf" <<EOF
[containers]
log_driver = "k8s-file"
netns = "none"
# The VM lacks CAP_SYS_RESOURCE and its hard nofile limit is 20000: podman's
# defaults would ask for more and every container would fail.
default_ulimits = ["nofile=20000:20000", "nproc=32768:32768"]

[engine]
runtime = "ferry"
runtime_supports_json = ["crun", "runc", "kata", "runsc", "youki", "krun", "ferry"]
cgroup_manager = "cgroupfs"
events_logger = "file"
events_logfile_path = "$D/events.log"
tmp_dir = "$TMPD"

[engine.runtimes]
ferry = ["$RUNTIME_BIN"]

[network]
network_config_dir = "$D/networks"
EOF
cat >"$D/storage.conf" <<EOF
[storage]
driver = "vfs"
graphroot = "$D/storage"
runroot = "$D/runroot"
EOF
[ "$MODE" = rootless ] && chown -R "$U_UID:$U_GID" "$D"

# $D/podman: podman with the private configuration, as root or as TEST_USER.
# A script rather than a function, so that timeout(1) and pty.py can run it.
PM=$D/podman
{
    echo '#!/bin/sh'
    if [ "$MODE" = root ]; then
        echo "export CONTAINERS_CONF='$D/containers.conf' CONTAINERS_STORAGE_CONF='$D/storage.conf'"
        echo "exec podman --root '$D/storage' --runroot '$D/runroot' --tmpdir '$TMPD' \"\$@\""
    else
        echo "exec setpriv --reuid=$U_UID --regid=$U_GID --init-groups \\"
        echo "  env -i PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \\"
        echo "  HOME='$D/home' USER='$TEST_USER' LOGNAME='$TEST_USER' XDG_RUNTIME_DIR='$XDG' \\"
        echo "  XDG_CONFIG_HOME='$D/home/.config' XDG_DATA_HOME='$D/home/.local/share' \\"
        echo "  CONTAINERS_CONF='$D/containers.conf' CONTAINERS_STORAGE_CONF='$D/storage.conf' \\"
        echo "  podman --root '$D/storage' --runroot '$D/runroot' --tmpdir '$TMPD' \"\$@\""
    fi
} >"$PM"
chmod 0755 "$PM"
pm() { timeout -k 5 "$CMD_TIMEOUT" "$PM" "$@"; }

cgroup_parent_existed=$(cgroup_dirs_under libpod_parent)
# Root podman creates these whatever its configuration says (netavark's run
# directory, containers/image's blob info cache): removed if this run made them.
global_made=()
if [ "$MODE" = root ]; then
    for g in /run/containers /var/lib/containers; do [ -e "$g" ] || global_made+=("$g"); done
fi
cleanup() {
    set +e
    timeout -k 5 60 "$PM" rm -af -t 0 >/dev/null 2>&1
    if [ "$MODE" = rootless ]; then
        # The rootless pause process holds podman's user namespace open.
        local p
        p=$(cat "$TMPD/pause.pid" 2>/dev/null)
        [ -n "$p" ] && kill -9 "$p" 2>/dev/null
    fi
    umount_under "$D"
    [ -z "$cgroup_parent_existed" ] && rmdir_cgroups libpod_parent
    local g
    for g in "${global_made[@]}"; do rm -rf "$g"; done
}
trap cleanup EXIT
trap 'exit 143' TERM INT HUP

state_of() { pm inspect -f '{{.State.Status}}' "$1" 2>/dev/null; }
pid_of() { pm inspect -f '{{.State.Pid}}' "$1" 2>/dev/null; }
is_state() { [ "$(state_of "$1")" = "$2" ]; }
logs_have() { pm logs "$1" 2>/dev/null | grep -- "$2" >/dev/null; }

info "runtime ferry = $RUNTIME_BIN ($("$RUNTIME_BIN" --version 2>&1 | head -n 1))"

# --- image ------------------------------------------------------------------
check "podman import of a busybox rootfs" 0 '' pm import "$ROOTFS_TAR" "$IMG" || {
    summary
    exit 1
}

check "podman info reports the runtime's version" 0 "^ferry $(printf '%s' "$RUNTIME_BIN" | sed 's/[.[\*^$]/\\&/g') " \
    pm info --format '{{.Host.OCIRuntime.Name}} {{.Host.OCIRuntime.Path}} {{.Host.OCIRuntime.Version}}'

# --- run --rm ---------------------------------------------------------------
if ! check "run --rm: output and exit status 0" 0 '^hello$' \
    pm run --rm "${NET[@]}" "$IMG" echo hello; then
    fail "the rest of the suite (not run: the simplest container fails)"
    summary
    exit 1
fi
check "run --rm: exit status 3 propagated" 3 '' \
    pm run --rm "${NET[@]}" "$IMG" sh -c 'exit 3'
# shellcheck disable=SC2016 # for the container's shell
check "run --rm: root in the container, own pid namespace" 0 '^0 1$' \
    pm run --rm "${NET[@]}" "$IMG" sh -c 'echo "$(id -u) $$"'
check "--runtime-flag debug" 0 '^dbg$' \
    pm --runtime-flag debug run --rm "${NET[@]}" "$IMG" echo dbg
t pm ps -aq
if [ -z "$OUT" ]; then pass "run --rm leaves no container behind"; else fail_last "run --rm leaves no container behind"; fi

# --- failing entrypoints ----------------------------------------------------
check "missing entrypoint: exit 127 with the error" 127 'no such file or directory|executable file not found' \
    pm run --rm "${NET[@]}" "$IMG" /nonexistent
check "non-executable entrypoint: exit 126 with the error" 126 'permission denied' \
    pm run --rm "${NET[@]}" "$IMG" /etc/passwd

# --- run -it (on a pseudo-terminal made by pty.py) ---------------------------
check "run -it: the container gets a terminal, exit status 5" 5 '/dev/pts/[0-9]' \
    python3 "$here/pty.py" "$PM" run -it --rm "${NET[@]}" "$IMG" sh -c 'tty; exit 5'

# --- run -d, exec, top ------------------------------------------------------
check "run -d" 0 '^[0-9a-f]{64}$' pm run -d --name c1 "${NET[@]}" "$IMG" sleep 1000
if poll 20 is_state c1 running; then pass "run -d: container is running"; else fail "run -d: container is running" "state: $(state_of c1)"; fi
check "exec: output" 0 '^exec-ok$' pm exec c1 echo exec-ok
check "exec: exit status 7 propagated" 7 '' pm exec c1 sh -c 'exit 7'
check "exec: same pid namespace (sees sleep as pid 1)" 0 '^sleep 1000' \
    pm exec c1 sh -c 'tr "\0" " " </proc/1/cmdline'
check "exec --user 65534" 0 '^65534$' pm exec --user 65534 c1 id -u
check "exec -t: gets a terminal" 0 '^/dev/pts/[0-9]+' pm exec -t c1 tty
check "exec without -t: no terminal" 1 'not a tty' pm exec c1 tty
check "exec -it: gets a terminal, exit status 6" 6 '^/dev/pts/[0-9]+' \
    python3 "$here/pty.py" "$PM" exec -it c1 sh -c 'tty; exit 6'
check "exec of a missing binary: exit 127" 127 'no such file or directory|executable file not found' \
    pm exec c1 /nonexistent
check "top" 0 'sleep 1000' pm top c1
t pm stats --no-stream --format '{{.Name}} {{.MemUsage}}' c1
if [ "$MODE" = rootless ] && [ "$RC" != 0 ]; then
    na "stats: podman cannot on cgroup v1 rootless: $(printf '%s\n' "$ERR" | grep -v 'level=warn' | head -n 1)"
elif [ "$RC" = 0 ] && printf '%s' "$OUT" | grep -E '^c1 [0-9.]+[kMG]?B / ' >/dev/null; then
    pass "stats --no-stream"
else
    fail_last "stats --no-stream"
fi

# --- run -dt: the container's init on a terminal (console socket) ---------------
check "run -dt" 0 '' pm run -dt --name c6 "${NET[@]}" "$IMG" sh -c 'tty; exec sleep 1000'
if poll 20 logs_have c6 /dev/pts/; then pass "run -dt: init's stdio is a terminal"; else fail "run -dt: init's stdio is a terminal" "logs: $(pm logs c6 2>&1 | tail -n 3)"; fi
check "exec into a -t container" 0 '^ok$' pm exec c6 echo ok
check "rm -f of the -t container" 0 '' pm rm -f -t 0 c6

# --- pause / unpause ----------------------------------------------------------
freezer_state() { # PID
    local cg
    cg=$(awk -F: '$2 == "freezer" { print $3 }' "/proc/$1/cgroup" 2>/dev/null)
    cat "/sys/fs/cgroup/freezer$cg/freezer.state" 2>/dev/null
}
t pm pause c1
if [ "$MODE" = rootless ] && [ "$RC" != 0 ]; then
    na "pause/unpause: podman refuses on cgroup v1 rootless: $(printf '%s' "$ERR" | tail -n 1)"
elif [ "$RC" != 0 ]; then
    fail_last "pause"
else
    pass "pause"
    if is_state c1 paused; then pass "pause: podman reports paused"; else fail "pause: podman reports paused" "state: $(state_of c1)"; fi
    if [ "$MODE" = root ]; then
        fs=$(freezer_state "$(pid_of c1)")
        if [ "$fs" = FROZEN ]; then pass "pause: freezer cgroup is FROZEN"; else fail "pause: freezer cgroup is FROZEN" "freezer.state: '$fs'"; fi
    fi
    check "unpause" 0 '' pm unpause c1
    if is_state c1 running; then pass "unpause: podman reports running"; else fail "unpause: podman reports running" "state: $(state_of c1)"; fi
    if [ "$MODE" = root ]; then
        fs=$(freezer_state "$(pid_of c1)")
        if [ "$fs" = THAWED ]; then pass "unpause: freezer cgroup is THAWED"; else fail "unpause: freezer cgroup is THAWED" "freezer.state: '$fs'"; fi
    fi
    check "exec after unpause" 0 '^again$' pm exec c1 echo again
fi

# --- update -------------------------------------------------------------------
t pm update --memory 64m c1
if [ "$MODE" = rootless ] && [ "$RC" != 0 ]; then
    # podman calls the runtime, which has no cgroup to change (runc fails too).
    na "update: a cgroup v1 rootless container has no cgroup (runc fails too): $(printf '%s\n' "$ERR" | grep -v 'level=warn' | head -n 1)"
elif [ "$RC" != 0 ]; then
    fail_last "update --memory 64m"
else
    pass "update --memory 64m"
    cg=$(awk -F: '$2 == "memory" { print $3 }' "/proc/$(pid_of c1)/cgroup" 2>/dev/null)
    lim=$(cat "/sys/fs/cgroup/memory$cg/memory.limit_in_bytes" 2>/dev/null)
    if [ "$lim" = 67108864 ]; then pass "update: memory.limit_in_bytes is 64 MiB"; else fail "update: memory.limit_in_bytes is 64 MiB" "cgroup $cg: '$lim'"; fi
fi

# --- restart --------------------------------------------------------------------
pid1=$(pid_of c1)
check "restart -t 0" 0 '' pm restart -t 0 c1
pid2=$(pid_of c1)
if is_state c1 running && [ -n "$pid2" ] && [ "$pid2" != 0 ] && [ "$pid2" != "$pid1" ]; then
    pass "restart: running again with a new pid ($pid1 -> $pid2)"
else
    fail "restart: running again with a new pid" "state $(state_of c1), pid $pid1 -> $pid2"
fi
check "exec after restart" 0 '^restarted$' pm exec c1 echo restarted

# --- kill -s --------------------------------------------------------------------
# shellcheck disable=SC2016 # for the container's shell
check "run -d: a shell trapping USR1" 0 '' pm run -d --name c2 "${NET[@]}" "$IMG" \
    sh -c 'trap "echo got-usr1" USR1; echo ready; while :; do sleep 0.1; done'
poll 20 logs_have c2 ready || fail "USR1 container prints ready" "logs: $(pm logs c2 2>&1 | tail -n 3)"
check "kill -s USR1" 0 '' pm kill -s USR1 c2
if poll 20 logs_have c2 got-usr1; then pass "kill -s USR1: delivered to the container"; else fail "kill -s USR1: delivered to the container" "logs: $(pm logs c2 2>&1 | tail -n 3)"; fi
check "kill -s KILL" 0 '' pm kill -s KILL c2
check "wait after kill -s KILL: 137" 0 '^137$' pm wait c2
check "rm of the exited container" 0 '' pm rm c2

# --- stop -----------------------------------------------------------------------
# sleep as pid 1 has no TERM handler, so TERM is ignored: podman must KILL after 1 s.
check "run -d: pid 1 ignoring TERM" 0 '' pm run -d --name c3 "${NET[@]}" "$IMG" sleep 1000
poll 20 is_state c3 running
t0=$(now_ms)
check "stop -t 1 (TERM ignored)" 0 '' pm stop -t 1 c3
dt=$(($(now_ms) - t0))
if [ "$dt" -ge 900 ] && [ "$dt" -lt 15000 ]; then pass "stop -t 1: SIGKILL after the 1 s grace (${dt} ms)"; else fail "stop -t 1: SIGKILL after the 1 s grace" "took ${dt} ms"; fi
check "stop -t 1: exit code 137" 0 '^137$' pm inspect -f '{{.State.ExitCode}}' c3
check "rm after stop" 0 '' pm rm c3
# shellcheck disable=SC2016
check "run -d: a shell exiting 0 on TERM" 0 '' pm run -d --name c4 "${NET[@]}" "$IMG" \
    sh -c 'trap "exit 0" TERM; while :; do sleep 0.1; done'
poll 20 is_state c4 running
t0=$(now_ms)
check "stop -t 30 (TERM handled)" 0 '' pm stop -t 30 c4
dt=$(($(now_ms) - t0))
if [ "$dt" -lt 10000 ]; then pass "stop: SIGTERM ends it without waiting for the grace period (${dt} ms)"; else fail "stop: SIGTERM ends it without waiting" "took ${dt} ms"; fi
check "stop: exit code 0" 0 '^0$' pm inspect -f '{{.State.ExitCode}}' c4
check "start of a stopped container" 0 '' pm start c4
if poll 20 is_state c4 running; then pass "start: running again"; else fail "start: running again" "state: $(state_of c4)"; fi

# --- rm -f ----------------------------------------------------------------------
check "rm -f of a running container" 0 '' pm rm -f -t 0 c1
# By exact name: `inspect c1` also matches another container whose id
# starts with "c1" (it happened: 1 run in about 10).
t pm ps -a --filter 'name=^c1$' --format '{{.Names}}'
if [ "$RC" = 0 ] && [ -z "$OUT" ]; then pass "rm -f: container gone"; else fail_last "rm -f: container gone"; fi
if [ "$MODE" = root ]; then
    check "run -d for rm -f of a paused container" 0 '' pm run -d --name c5 "${NET[@]}" "$IMG" sleep 1000
    check "pause before rm -f" 0 '' pm pause c5
    check "rm -f of a paused container" 0 '' pm rm -f -t 0 c5
else
    na "rm -f of a paused container: podman cannot pause on cgroup v1 rootless"
fi
check "rm -f of the last container" 0 '' pm rm -f -t 0 c4
t pm ps -aq
if [ -z "$OUT" ]; then pass "no container left"; else fail_last "no container left"; fi

# Every container podman made (its events log has them all) is gone from the
# runtime's state and has no conmon left.
ids=$(jq -r 'select(.Type == "container") | .ID' "$D/events.log" 2>/dev/null | sort -u)
if [ "$MODE" = root ]; then sdirs=(/run/ferry /run/runc); else sdirs=("$XDG/ferry" "$XDG/runc"); fi
left=""
for id in $ids; do
    for s in "${sdirs[@]}"; do [ -e "$s/$id" ] && left="$left $s/$id"; done
    pgrep -f "conmon .*$id" >/dev/null && left="$left conmon($id)"
done
if [ -n "$ids" ] && [ -z "$left" ]; then
    pass "no runtime state or conmon left for the $(echo "$ids" | wc -l) containers made"
else
    fail "no runtime state or conmon left" "${left:-no container ids in $D/events.log}"
fi

summary
