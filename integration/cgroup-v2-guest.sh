#!/bin/sh
# ferry's cgroup checks inside the cgroup-v2 VM (see cgroup-v2.sh). busybox
# sh, no jq: configs are written from a template. One PASS/FAIL line per
# check, then "N passed, M failed".
CG=/sys/fs/cgroup
pass=0
fail=0
ok() { echo "PASS $1"; pass=$((pass + 1)); }
bad() { echo "FAIL $1: $2"; fail=$((fail + 1)); }
# eq NAME GOT WANT
eq() { if [ "$2" = "$3" ]; then ok "$1"; else bad "$1" "want '$3', got '$2'"; fi; }
# has NAME TEXT NEEDLE
has() { case "$2" in *"$3"*) ok "$1" ;; *) bad "$1" "'$3' not in: $2" ;; esac; }
# hasnt NAME TEXT NEEDLE
hasnt() { case "$2" in *"$3"*) bad "$1" "'$3' in: $2" ;; *) ok "$1" ;; esac; }
gone() { if [ -e "$2" ]; then bad "$1" "$2 still exists"; else ok "$1"; fi; }
# Every ferry call is bounded: a hang fails its check instead of the run.
ferry() { timeout 60 /bin/ferry "$@"; }
wait_stopped() {
    i=0
    while [ $i -lt 100 ]; do
        ferry state "$1" 2>/dev/null | grep -q '"stopped"' && return 0
        sleep 0.1
        i=$((i + 1))
    done
    return 1
}

DEFAULT_NS='[{"type":"pid"},{"type":"ipc"},{"type":"uts"},{"type":"mount"},{"type":"cgroup"}]'
CAPS='["CAP_KILL","CAP_MKNOD"]'
# mkbundle DIR ARGS_JSON RESOURCES_JSON CGROUPS_PATH [NAMESPACES_JSON]
mkbundle() {
    mkdir -p "$1"
    cat >"$1/config.json" <<EOF
{"ociVersion":"1.2.1",
 "process":{"terminal":false,"user":{"uid":0,"gid":0},"args":$2,
  "env":["PATH=/bin:/sbin:/usr/bin:/usr/sbin"],"cwd":"/",
  "capabilities":{"bounding":$CAPS,"effective":$CAPS,"permitted":$CAPS}},
 "root":{"path":"/ctr/rootfs","readonly":true},
 "hostname":"v2",
 "mounts":[
  {"destination":"/proc","type":"proc","source":"proc"},
  {"destination":"/dev","type":"tmpfs","source":"tmpfs","options":["nosuid","mode=755"]},
  {"destination":"/sys","type":"sysfs","source":"sysfs","options":["nosuid","noexec","nodev","ro"]},
  {"destination":"/sys/fs/cgroup","type":"cgroup","source":"cgroup","options":["nosuid","noexec","nodev","ro"]}],
 "linux":{"cgroupsPath":"$4","resources":$3,"namespaces":${5:-$DEFAULT_NS}}}
EOF
}

# ---- limits read back, commands on a live container ----------------------
mkbundle /b1 '["sleep","60"]' '{"devices":[{"allow":false,"access":"rwm"}],
  "memory":{"limit":67108864,"swap":100663296},
  "cpu":{"shares":512,"quota":50000,"period":100000,"cpus":"0"},
  "pids":{"limit":40},"unified":{"memory.high":"61440000"}}' /ferry-v2/c1
D=$CG/ferry-v2/c1
if ferry --debug create --bundle /b1 c1 >/tmp/c1.out 2>&1; then ok create; else bad create "$(cat /tmp/c1.out)"; fi
# Born in its cgroup (CLONE_INTO_CGROUP), not moved there after the clone.
hasnt init-cloned-into-cgroup "$(cat /tmp/c1.out)" "CLONE_INTO_CGROUP refused"
eq memory.max "$(cat $D/memory.max)" 67108864
eq memory.swap.max "$(cat $D/memory.swap.max)" 33554432
eq memory.high "$(cat $D/memory.high)" 61440000
eq cpu.weight "$(cat $D/cpu.weight)" 59
eq cpu.max "$(cat $D/cpu.max)" "50000 100000"
eq cpuset.cpus "$(cat $D/cpuset.cpus)" 0
eq pids.max "$(cat $D/pids.max)" 40
pid=$(ferry state c1 | sed -n 's/.*"pid": *\([0-9]*\).*/\1/p')
has init-in-cgroup "$(cat $D/cgroup.procs)" "$pid"
ferry start c1
eq ps-json "$(ferry ps --format json c1)" "[$pid]"
ferry pause c1
has pause-state "$(ferry state c1)" '"paused"'
has pause-frozen "$(cat $D/cgroup.events)" "frozen 1"
ferry resume c1
has resume-state "$(ferry state c1)" '"running"'
ferry update --memory 128m --cpu-share 1024 c1
eq update-memory "$(cat $D/memory.max)" 134217728
eq update-cpu-weight "$(cat $D/cpu.weight)" 100
echo '{"pids":{"limit":-1}}' >/tmp/res.json
ferry update --resources /tmp/res.json c1
eq update-resources "$(cat $D/pids.max)" max
has events-stats "$(ferry events --stats c1)" '"pids":{"current":1'
ferry --debug exec -d --pid-file /tmp/e1.pid c1 sleep 50 >/tmp/e1.out 2>&1
has exec-in-cgroup "$(cat $D/cgroup.procs)" "$(cat /tmp/e1.pid)"
hasnt exec-cloned-into-cgroup "$(cat /tmp/e1.out)" "CLONE_INTO_CGROUP refused"
ferry delete --force c1
gone delete-removes-cgroup $D
gone delete-removes-parent $CG/ferry-v2

# ---- the container's own view (cgroup namespace) ---------------------------
mkbundle /b2 '["sh","-c","cat /sys/fs/cgroup/memory.max /sys/fs/cgroup/pids.max"]' \
    '{"memory":{"limit":33554432},"pids":{"limit":30}}' ""
eq inside-view "$(ferry run --bundle /b2 c2 | tr '\n' ' ')" "33554432 30 "
gone default-path-removed $CG/ferry/c2

# ---- enforcement -------------------------------------------------------------
mkbundle /b3 '["sh","-c","i=0; while [ $i -lt 30 ]; do sleep 30 & i=$((i+1)); done; echo done"]' \
    '{"pids":{"limit":8}}' /ferry-v2/c3
ferry create --bundle /b3 c3 >/tmp/c3.out 2>&1
ferry start c3
wait_stopped c3
has pids-fork-refused "$(cat $CG/ferry-v2/c3/pids.events)" "max "
ferry delete c3
gone pids-cleanup $CG/ferry-v2/c3

mkbundle /b4 '["sh","-c","sleep 1; head -c 100m /dev/zero | tail >/dev/null; echo status=$?"]' \
    '{"memory":{"limit":16777216,"swap":16777216}}' /ferry-v2/c4
ferry create --bundle /b4 c4 >/tmp/c4.out 2>&1
ferry events --interval 1s c4 >/tmp/c4.events 2>&1 &
evpid=$!
sleep 0.3
ferry start c4
wait_stopped c4
wait $evpid
has oom-killed "$(cat /tmp/c4.out)" "status=137"
has oom-event "$(cat /tmp/c4.events)" '"type":"oom"'
ferry delete c4

mkbundle /b5 '["sh","-c","setsid sh -c \"sleep 100 & exit 0\"; exec sleep 101"]' '{}' /ferry-v2/c5 \
    '[{"type":"ipc"},{"type":"uts"},{"type":"mount"}]'
ferry create --bundle /b5 c5 >/dev/null 2>&1
ferry start c5
sleep 0.5
eq kill-all-before "$(wc -l <$CG/ferry-v2/c5/cgroup.procs)" 2
ferry kill --all c5 KILL
sleep 0.5
eq kill-all-after "$(wc -l <$CG/ferry-v2/c5/cgroup.procs)" 0
ferry delete c5
gone kill-all-cleanup $CG/ferry-v2/c5

mkbundle /b6 '["sh","-c","echo x >/dev/null && echo null-ok; mknod /dev/blk b 7 0; head -c1 /dev/blk >/dev/null 2>&1 && echo blk-open || echo blk-denied"]' \
    '{"devices":[{"allow":false,"access":"rwm"}]}' /ferry-v2/c6
out=$(ferry run --bundle /b6 c6 2>&1)
has devices-null-allowed "$out" null-ok
has devices-block-denied "$out" blk-denied

# ---- errors leave nothing behind ----------------------------------------------
mkbundle /b7 '["true"]' '{"unified":{"foo.max":"1"}}' /ferry-v2/c7
has unknown-controller "$(ferry create --bundle /b7 c7 2>&1)" 'unknown controller "foo"'
mkbundle /b8 '["true"]' '{"cpu":{"realtimeRuntime":1000}}' /ferry-v2/c8
has realtime-refused "$(ferry create --bundle /b8 c8 2>&1)" "not supported on cgroup v2"
mkbundle /b9 '["true"]' '{"memory":{"limit":-5}}' /ferry-v2/c9
has negative-limit "$(ferry create --bundle /b9 c9 2>&1)" "memory.limit"
gone errors-cleanup $CG/ferry-v2
left=$(ls $CG | grep ferry)
eq nothing-left "$left" ""

echo "$pass passed, $fail failed"
