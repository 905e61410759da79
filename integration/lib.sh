# shellcheck shell=bash
# Helpers shared by the integration suites (sourced, not run).
#
# Every engine command goes through `t`, which bounds it with timeout(1), so a
# hung engine fails one check instead of the whole suite. Results are printed
# one per line:
#   ok   SUITE: what            the check passed
#   FAIL SUITE: what            followed by the command, its status and output
#   n/a  SUITE: what (why)      the engine itself cannot do this here (not a
#                               ferry failure; said out loud instead of skipped)
# The suite's exit status is 1 when any check failed.

CMD_TIMEOUT=${CMD_TIMEOUT:-60} # seconds allowed to any single engine command
PASS=0
FAIL=0
NA=0
SUITE=${SUITE:-suite}
OUT=""    # stdout of the last `t`
ERR=""    # stderr of the last `t`
RC=0      # exit status of the last `t` (124 = timed out)
LAST_CMD=""

pass() {
    PASS=$((PASS + 1))
    printf 'ok   %s: %s\n' "$SUITE" "$1"
}

# fail WHAT [DETAIL...]
fail() {
    FAIL=$((FAIL + 1))
    printf 'FAIL %s: %s\n' "$SUITE" "$1"
    shift
    local l
    for l in "$@"; do printf '       %s\n' "$l"; done
}

# fail_last WHAT [DETAIL...]: fail with the last command's status and output
fail_last() {
    local what=$1
    shift
    fail "$what" "$@" "command: $LAST_CMD" "status:  $RC$([ "$RC" = 124 ] && echo " (timed out after ${CMD_TIMEOUT}s)")"
    printf '%s\n' "$OUT" | head -n 15 | sed 's/^/       stdout| /'
    printf '%s\n' "$ERR" | head -n 15 | sed 's/^/       stderr| /'
}

na() {
    NA=$((NA + 1))
    printf 'n/a  %s: %s\n' "$SUITE" "$*"
}

info() { printf '#    %s: %s\n' "$SUITE" "$*"; }

# t CMD...: run CMD (stdin /dev/null) bounded by CMD_TIMEOUT; sets OUT ERR RC.
# A shell function is run as is: it must bound its commands itself.
t() {
    local o e
    o=$(mktemp "$WORK/out.XXXXXX")
    e=$(mktemp "$WORK/err.XXXXXX")
    LAST_CMD="$*"
    if [ "$(type -t "$1")" = function ]; then
        "$@" >"$o" 2>"$e" </dev/null # the function bounds its own commands
    else
        timeout -k 5 "$CMD_TIMEOUT" "$@" >"$o" 2>"$e" </dev/null
    fi
    RC=$?
    OUT=$(cat "$o")
    ERR=$(cat "$e")
    rm -f "$o" "$e"
    return 0
}

# check WHAT WANT_RC REGEX CMD...: run CMD; pass when it exits WANT_RC and
# (REGEX empty or) its stdout+stderr match the extended regex REGEX.
check() {
    local what=$1 want=$2 re=$3
    shift 3
    t "$@"
    if [ "$RC" != "$want" ]; then
        fail_last "$what" "expected status $want"
        return 1
    fi
    if [ -n "$re" ] && ! printf '%s\n%s\n' "$OUT" "$ERR" | grep -E -- "$re" >/dev/null; then
        fail_last "$what" "expected output matching /$re/"
        return 1
    fi
    pass "$what"
}

# poll SECONDS CMD...: retry CMD (silently) every 0.2 s until it succeeds or
# SECONDS have passed. CMD must be quick or bounded (a function using `pm`).
poll() {
    local end=$(($(date +%s) + $1))
    shift
    while :; do
        "$@" >/dev/null 2>&1 </dev/null && return 0
        [ "$(date +%s)" -lt "$end" ] || return 1
        sleep 0.2
    done
}

now_ms() { date +%s%3N; }

# umount_under DIR: lazily unmount everything mounted below DIR (deepest first).
umount_under() {
    local dir=$1 m
    [ -n "$dir" ] || return 0
    awk -v d="$dir/" 'index($5, d) == 1 { print $5 }' /proc/self/mountinfo | sort -r |
        while read -r m; do umount -l "$m" 2>/dev/null || true; done
}

# cgroup_dirs_under REL: v1 cgroup directories named REL in any hierarchy
cgroup_dirs_under() {
    local rel=$1 h
    for h in /sys/fs/cgroup/*/; do
        [ -d "$h$rel" ] && echo "${h%/}/$rel"
    done
    return 0
}

# rmdir_cgroups REL: remove REL's (empty) cgroup tree in every v1 hierarchy
rmdir_cgroups() {
    local rel=$1 d
    for d in $(cgroup_dirs_under "$rel"); do
        find "$d" -depth -type d -exec rmdir {} \; 2>/dev/null || true
    done
}

summary() {
    printf '#    %s: %d passed, %d failed, %d not applicable\n' "$SUITE" "$PASS" "$FAIL" "$NA"
    [ "$FAIL" -eq 0 ]
}

# --- a private containerd (containerd.sh, cri.sh) -----------------------------
# ctd_start LABEL: start containerd on $C/config.toml (socket $SOCK), with
# ctd_cleanup on exit; the check LABEL passes once it answers, else the
# suite ends.
ctd_start() {
    ctd_pid=""
    ctd_cgroup_existed=$(cgroup_dirs_under "$NS")
    # The shim puts its sockets in /run/containerd/s whatever the config says.
    ctd_run_existed=$([ -e /run/containerd ] && echo yes)
    trap ctd_cleanup EXIT
    trap 'exit 143' TERM INT HUP
    info "runtime = $RUNTIME_BIN ($("$RUNTIME_BIN" --version 2>&1 | head -n 1))"
    containerd --config "$C/config.toml" >"$C/containerd.log" 2>&1 &
    ctd_pid=$!
    if poll 30 ctr -a "$SOCK" version; then
        pass "$1"
    else
        fail "$1" "$(tail -n 20 "$C/containerd.log")"
        summary
        exit 1
    fi
}

# Remove every task and container of namespace $NS, stop containerd and
# its shims, and remove the mounts, cgroups and /run/containerd dirs the run
# made.
ctd_cleanup() {
    set +e
    if [ -n "$ctd_pid" ] && kill -0 "$ctd_pid" 2>/dev/null; then
        local id
        for id in $(timeout 20 ctr -a "$SOCK" -n "$NS" task ls -q 2>/dev/null); do
            timeout 20 ctr -a "$SOCK" -n "$NS" task delete -f "$id" >/dev/null 2>&1
        done
        for id in $(timeout 20 ctr -a "$SOCK" -n "$NS" container ls -q 2>/dev/null); do
            timeout 20 ctr -a "$SOCK" -n "$NS" container delete "$id" >/dev/null 2>&1
        done
        kill -TERM "$ctd_pid"
        for _ in $(seq 50); do kill -0 "$ctd_pid" 2>/dev/null || break; sleep 0.2; done
        kill -KILL "$ctd_pid" 2>/dev/null
        wait "$ctd_pid" 2>/dev/null
    fi
    # Shims of this containerd (they outlive it when a task could not be deleted).
    local p
    for p in $(pgrep -f "containerd-shim-runc-v2 .*-address $SOCK( |$)"); do
        kill -KILL "$p" 2>/dev/null
    done
    umount_under "$C"
    [ -z "$ctd_cgroup_existed" ] && rmdir_cgroups "$NS"
    if [ -z "$ctd_run_existed" ] && [ -d /run/containerd ]; then
        find /run/containerd -depth -type d -empty -delete 2>/dev/null
    fi
}
