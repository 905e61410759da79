#!/usr/bin/env bash
# containerd (runc v2 shim), driven by ctr, with the runtime under test given
# as the shim's runc binary (`ctr run --runc-binary RUNTIME_BIN`).
#
#   integration/containerd.sh
#
# Called by integration/run.sh, which exports WORK, RUNTIME_BIN and ROOTFS
# (a busybox rootfs directory). A private containerd is started with its own
# root, state, sockets and a minimal config (CRI plugin disabled), in
# $WORK/containerd; it is stopped, and its tasks, shims and mounts are
# removed, on exit. The runtime's state goes to $WORK/containerd/runc-root
# (--runc-root) rather than /run/containerd/runc.
set -uo pipefail

here=$(cd "$(dirname "$(readlink -f "$0")")" && pwd)
SUITE=containerd
# shellcheck source=integration/lib.sh
. "$here/lib.sh"

: "${WORK:?run through integration/run.sh}" "${RUNTIME_BIN:?}" "${ROOTFS:?}"
C=$WORK/containerd
SOCK=$C/containerd.sock
NS=ferry-integ
IMG=localhost/busybox:latest
RROOT=$C/runc-root
mkdir -p "$C"

cat >"$C/config.toml" <<EOF
version = 2
root = "$C/root"
state = "$C/state"
# Only what ctr needs: no CRI, no snapshotters that cannot work here.
disabled_plugins = [
  "io.containerd.grpc.v1.cri",
  "io.containerd.snapshotter.v1.aufs",
  "io.containerd.snapshotter.v1.btrfs",
  "io.containerd.snapshotter.v1.devmapper",
  "io.containerd.snapshotter.v1.zfs",
  "io.containerd.tracing.processor.v1.otlp",
  "io.containerd.internal.v1.tracing",
]

[grpc]
  address = "$SOCK"

[ttrpc]
  address = "$SOCK.ttrpc"

[debug]
  level = "info"

[plugins]
  [plugins."io.containerd.internal.v1.opt"]
    path = "$C/opt"
EOF

# ctr ARGS...: ctr against the private containerd, bounded by CMD_TIMEOUT
c() { timeout -k 5 "$CMD_TIMEOUT" ctr -a "$SOCK" -n "$NS" "$@"; }
# `ctr run` with the runtime under test (its state in RROOT/NS, not in
# /run/containerd/runc) and the stdio fifos under $C
RUN=(run --runc-binary "$RUNTIME_BIN" --runc-root "$RROOT" --fifo-dir "$C/fifo")
# cx ARGS...: ctr task exec
cx() { c task exec --fifo-dir "$C/fifo" "$@"; }

# --- daemon and image -------------------------------------------------------
ctd_start "private containerd started ($(containerd --version | awk '{print $3}'))"

check "build an OCI archive from the busybox rootfs" 0 '' bash "$here/mkoci.sh" "$ROOTFS" "$C/busybox-oci.tar" "$IMG"
check "ctr image import" 0 '' c image import "$C/busybox-oci.tar"
check "image listed" 0 "^$IMG\$" c image ls -q || {
    summary
    exit 1
}

task_status() { c task ls 2>/dev/null | awk -v id="$1" '$1 == id { print $3 }'; }
task_pid() { c task ls 2>/dev/null | awk -v id="$1" '$1 == id { print $2 }'; }
is_status() { [ "$(task_status "$1")" = "$2" ]; }
gone_from_runtime() { ! "$RUNTIME_BIN" --root "$RROOT/$NS" state "$1" >/dev/null 2>&1; }

# --- run --rm -----------------------------------------------------------------
if ! check "run --rm: output and exit status 0" 0 '^hello$' c "${RUN[@]}" --rm "$IMG" r1 echo hello; then
    fail "the rest of the suite (not run: the simplest container fails)"
    summary
    exit 1
fi
check "run --rm: exit status 3 propagated" 3 '' c "${RUN[@]}" --rm "$IMG" r2 sh -c 'exit 3'
check "run --rm: pid 1 in its own pid namespace" 0 '^1$' c "${RUN[@]}" --rm "$IMG" r3 sh -c 'echo $$'
check "run --no-pivot" 0 '^no-pivot$' c "${RUN[@]}" --rm --no-pivot "$IMG" r4 echo no-pivot
check "run --rm of a missing binary fails with the error" 1 'no such file or directory|executable file not found|not found' \
    c "${RUN[@]}" --rm "$IMG" r5 /nonexistent
t c container ls -q
if [ -z "$OUT" ]; then pass "run --rm leaves no container behind"; else fail_last "run --rm leaves no container behind"; fi

# The sleeps: a process that exits at once can lose its terminal output on the
# way through the shim under heavy load (seen 2 in 260 with ferry, 0 in 260
# with runc; see docs/engines.md).
check "run -t: the container gets a terminal, exit status 4" 4 '/dev/pts/[0-9]' \
    python3 "$here/pty.py" timeout -k 5 "$CMD_TIMEOUT" ctr -a "$SOCK" -n "$NS" "${RUN[@]}" -t --rm "$IMG" r6 sh -c 'tty; sleep 0.5; exit 4'

# --- run -d, exec, ps -----------------------------------------------------------
check "run -d" 0 '' c "${RUN[@]}" -d "$IMG" d1 sleep 1000
if poll 20 is_status d1 RUNNING; then pass "run -d: task RUNNING"; else fail "run -d: task RUNNING" "$(c task ls 2>&1)"; fi
pid=$(task_pid d1)
check "task exec --exec-id: output" 0 '^exec-ok$' cx --exec-id e1 d1 echo exec-ok
check "task exec: exit status 7 propagated" 7 '' cx --exec-id e2 d1 sh -c 'exit 7'
check "task exec: same pid namespace (sees sleep as pid 1)" 0 '^sleep 1000' \
    cx --exec-id e3 d1 sh -c 'tr "\0" " " </proc/1/cmdline'
check "task exec --user 65534" 0 '^65534$' cx --exec-id e4 --user 65534 d1 id -u
check "task exec -t: gets a terminal" 0 '/dev/pts/[0-9]' \
    python3 "$here/pty.py" timeout -k 5 "$CMD_TIMEOUT" ctr -a "$SOCK" -n "$NS" task exec --fifo-dir "$C/fifo" -t --exec-id e5 d1 sh -c 'tty; sleep 0.5'
check "task exec -d, then task ps lists both processes" 0 '' cx -d --exec-id e6 d1 sleep 999
psl() { c task ps d1 2>/dev/null | awk 'NR > 1 { print $1 }' | sort -n | tr '\n' ' '; }
two_procs() { [ "$(psl | wc -w)" -eq 2 ]; }
if poll 10 two_procs && psl | grep -w -- "$pid" >/dev/null; then
    pass "task ps: init ($pid) and the exec'd process: $(psl)"
else
    fail "task ps: init ($pid) and the exec'd process" "$(c task ps d1 2>&1)"
fi

# --- pause / resume ---------------------------------------------------------------
freezer_state() { # PID
    local cg
    cg=$(awk -F: '$2 == "freezer" { print $3 }' "/proc/$1/cgroup" 2>/dev/null)
    cat "/sys/fs/cgroup/freezer$cg/freezer.state" 2>/dev/null
}
check "task pause" 0 '' c task pause d1
if is_status d1 PAUSED; then pass "task pause: status PAUSED"; else fail "task pause: status PAUSED" "$(c task ls 2>&1)"; fi
fs=$(freezer_state "$pid")
if [ "$fs" = FROZEN ]; then pass "task pause: freezer cgroup FROZEN"; else fail "task pause: freezer cgroup FROZEN" "freezer.state: '$fs'"; fi
check "task resume" 0 '' c task resume d1
if is_status d1 RUNNING; then pass "task resume: status RUNNING"; else fail "task resume: status RUNNING" "$(c task ls 2>&1)"; fi
fs=$(freezer_state "$pid")
if [ "$fs" = THAWED ]; then pass "task resume: freezer cgroup THAWED"; else fail "task resume: freezer cgroup THAWED" "freezer.state: '$fs'"; fi
check "task exec after resume" 0 '^resumed$' cx --exec-id e7 d1 echo resumed

# --- delete -f while running ------------------------------------------------------
check "task delete -f of a running task" 0 '' c task delete -f d1
if ! c task ls -q | grep -x d1 >/dev/null; then pass "task delete -f: task gone"; else fail "task delete -f: task gone" "$(c task ls 2>&1)"; fi
if gone_from_runtime d1; then pass "task delete -f: runtime state removed"; else fail "task delete -f: runtime state removed" "$("$RUNTIME_BIN" --root "$RROOT/$NS" state d1 2>&1)"; fi
if [ -n "$pid" ] && ! kill -0 "$pid" 2>/dev/null; then pass "task delete -f: init process gone"; else fail "task delete -f: init process gone" "pid $pid still exists"; fi
check "container delete" 0 '' c container delete d1

# --- kill -s ----------------------------------------------------------------------
# shellcheck disable=SC2016 # for the container's shell
check "run -d: a shell trapping USR1" 0 '' c "${RUN[@]}" -d "$IMG" k1 \
    sh -c 'trap "echo got >/tmp/usr1" USR1; touch /tmp/ready; while :; do sleep 0.1; done'
has_file() { cx --exec-id "x$RANDOM" k1 test -e "$1"; }
poll 20 has_file /tmp/ready || fail "USR1 container ready"
check "task kill -s USR1" 0 '' c task kill -s USR1 k1
if poll 20 has_file /tmp/usr1; then pass "task kill -s USR1: delivered"; else fail "task kill -s USR1: delivered"; fi
check "task kill -s SIGKILL" 0 '' c task kill -s SIGKILL k1
if poll 20 is_status k1 STOPPED; then pass "task kill -s SIGKILL: STOPPED"; else fail "task kill -s SIGKILL: STOPPED" "$(c task ls 2>&1)"; fi
# ctr reports a non-zero exit status as a warning: "... exit with non-zero exit code N"
check "task delete of a stopped task: exit status 137" 0 'exit code 137([^0-9]|$)' c task delete k1
check "container delete" 0 '' c container delete k1

# --- kill -a ------------------------------------------------------------------------
# The shell (pid 1, no TERM handler) ignores SIGTERM; its children do not. Only
# --all reaches them, after which the shell's `wait` returns and it exits.
check "run -d: pid 1 with two children" 0 '' c "${RUN[@]}" -d "$IMG" a1 \
    sh -c 'sleep 1000 & sleep 1000 & wait; exit 9'
three_procs() { [ "$(c task ps a1 2>/dev/null | awk 'NR > 1' | wc -l)" -eq 3 ]; }
if poll 20 three_procs; then pass "task ps: three processes"; else fail "task ps: three processes" "$(c task ps a1 2>&1)"; fi
check "task kill -a (SIGTERM to every process)" 0 '' c task kill -a a1
if poll 20 is_status a1 STOPPED; then pass "task kill -a: children killed, task STOPPED"; else fail "task kill -a: children killed, task STOPPED" "$(c task ls 2>&1)"; fi
check "task delete: exit status 9" 0 'exit code 9([^0-9]|$)' c task delete a1
check "container delete" 0 '' c container delete a1

# --- leftovers --------------------------------------------------------------------
t c task ls -q
if [ -z "$OUT" ]; then pass "no task left"; else fail_last "no task left"; fi
left=$(ls "$RROOT/$NS" 2>/dev/null)
if [ -z "$left" ]; then pass "no runtime state left"; else fail "no runtime state left" "$left"; fi

summary
