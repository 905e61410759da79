#!/bin/bash
# ferry's checks on the systemd guest (see integration/systemd.sh), run as
# root by ferry-checks.service once the guest is up: the systemd cgroup
# driver as root, rootless through the user manager of `ferrytest` (uid
# 1500, lingering), containerd's CRI plugin with SystemdCgroup = true and
# ferry as a RuntimeClass handler, rootless podman with the systemd cgroup
# manager, and checkpoint/restore of a running counter with CRIU. One PASS/FAIL line per
# check, INFO lines with timings, then "N passed, M failed".
set -u
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
S=/mnt/ferry
W=/var/lib/ferry-checks
CG=/sys/fs/cgroup
pass=0
fail=0
ok() { echo "PASS $1"; pass=$((pass + 1)); }
bad() { echo "FAIL $1: $2" | head -c 2000; echo; fail=$((fail + 1)); }
eq() { if [ "$2" = "$3" ]; then ok "$1"; else bad "$1" "want '$3', got '$2'"; fi; }
has() { case "$2" in *"$3"*) ok "$1" ;; *) bad "$1" "'$3' not in: $2" ;; esac; }
hasnt() { case "$2" in *"$3"*) bad "$1" "'$3' in: $2" ;; *) ok "$1" ;; esac; }
info() { echo "INFO $*"; }
now_ms() { echo $(($(date +%s%N) / 1000000)); }
ferry() { timeout 60 /usr/local/bin/ferry "$@"; }
sdshow() { systemctl show -p "$2" --value "$1" 2>&1; }

mkdir -p $W
install -m 0755 $S/ferry /usr/local/bin/ferry
cp -a $S/rootfs $W/rootfs
info "ferry $(ferry --version | head -n1)"

# mkbundle DIR ARGS_JSON RESOURCES_JSON CGROUPS_PATH [ANNOTATIONS_JSON] [spec flags]
mkbundle() {
    local dir=$1 args=$2 res=$3 cgp=$4 ann=${5:-'{}'}
    shift 5 2>/dev/null || shift $#
    mkdir -p "$dir"
    (cd "$dir" && ferry spec "$@" && rm -f rootfs && ln -s $W/rootfs rootfs)
    jq --argjson a "$args" --argjson r "$res" --arg p "$cgp" --argjson an "$ann" \
        '.process.args = $a | .process.terminal = false | .linux.resources += $r
         | .linux.cgroupsPath = $p | .annotations = $an | .root.path = "rootfs"' \
        "$dir/config.json" >"$dir/c.json" && mv "$dir/c.json" "$dir/config.json"
}
HOG='["sh","-c","a=$(yes ferry-oom | head -c 200000000); echo survived"]'

# ---- 1. the systemd driver as root ------------------------------------------
echo "INFO -- systemd cgroup driver (root)"
mkbundle $W/b1 '["sleep","600"]' '{"memory":{"limit":67108864,"reservation":33554432},
  "cpu":{"shares":512,"quota":50000,"period":100000,"cpus":"0"},"pids":{"limit":40}}' \
    'system.slice:ferry:sd1' '{"org.systemd.property.TimeoutStopUSec":"uint64 7000000"}'
U=ferry-sd1.scope
D=$CG/system.slice/$U
t0=$(now_ms)
# (Output to files: the init keeps what create's stdout was open.)
if ferry --systemd-cgroup --debug create --bundle $W/b1 sd1 >$W/sd1.out 2>&1; then ok "create with --systemd-cgroup"; else bad "create with --systemd-cgroup" "$(cat $W/sd1.out)"; fi
info "create (scope over D-Bus) took $(($(now_ms) - t0)) ms"
pid=$(ferry state sd1 | jq -r .pid)
eq "scope active" "$(systemctl is-active $U)" active
eq "init in the scope" "$(cat /proc/$pid/cgroup)" "0::/system.slice/$U"
st=$(systemctl status --no-pager $U 2>&1)
has "systemctl status shows the scope's description" "$st" "ferry container sd1"
has "systemctl status shows the init" "$st" "$pid"
eq "Delegate=yes" "$(sdshow $U Delegate)" yes
eq "Slice" "$(sdshow $U Slice)" system.slice
eq "MemoryMax property" "$(sdshow $U MemoryMax)" 67108864
eq "MemoryLow property" "$(sdshow $U MemoryLow)" 33554432
eq "TasksMax property" "$(sdshow $U TasksMax)" 40
eq "CPUQuotaPerSecUSec property" "$(sdshow $U CPUQuotaPerSecUSec)" 500ms
eq "AllowedCPUs property" "$(sdshow $U AllowedCPUs)" 0
eq "CPUWeight property = cpu.weight" "$(sdshow $U CPUWeight)" "$(cat $D/cpu.weight)"
eq "annotation TimeoutStopUSec" "$(sdshow $U TimeoutStopUSec)" 7s
eq "DevicePolicy strict" "$(sdshow $U DevicePolicy)" strict
has "DeviceAllow /dev/null" "$(sdshow $U DeviceAllow)" "/dev/char/1:3 rwm"
eq "memory.max" "$(cat $D/memory.max)" 67108864
eq "memory.low" "$(cat $D/memory.low)" 33554432
eq "pids.max" "$(cat $D/pids.max)" 40
eq "cpu.max" "$(cat $D/cpu.max)" "50000 100000"
eq "cpuset.cpus" "$(cat $D/cpuset.cpus)" 0
out=$(ferry update --memory 128M --pids-limit 50 --cpu-quota 20000 sd1 2>&1) && ok "update" || bad update "$out"
eq "update: MemoryMax property" "$(sdshow $U MemoryMax)" 134217728
eq "update: TasksMax property" "$(sdshow $U TasksMax)" 50
eq "update: memory.max" "$(cat $D/memory.max)" 134217728
eq "update: pids.max" "$(cat $D/pids.max)" 50
eq "update: cpu.max" "$(cat $D/cpu.max)" "20000 100000"
ferry start sd1 >/dev/null 2>&1
out=$(ferry exec sd1 sh -c 'cat /proc/self/cgroup; head -c 1 /dev/null && echo null-ok' 2>&1)
has "exec runs in the scope" "$out" "null-ok"
ferry kill sd1 KILL >/dev/null 2>&1
sleep 0.5
t0=$(now_ms)
out=$(ferry delete sd1 2>&1) && ok "delete" || bad delete "$out"
info "delete took $(($(now_ms) - t0)) ms"
eq "delete: unit gone" "$(systemctl list-units --all --no-legend $U | wc -l)" 0
[ ! -e $D ] && ok "delete: cgroup gone" || bad "delete: cgroup gone" "$D exists"

# Defaults: no cgroupsPath is system.slice:ferry:ID; run removes the scope.
mkbundle $W/b2 '["sh","-c","cat /proc/self/cgroup"]' '{}' ''
out=$(ferry --systemd-cgroup run --bundle $W/b2 sd2 2>&1)
eq "default unit system.slice/ferry-ID.scope (cgroup ns: /)" "$out" "0::/"
eq "run: unit gone" "$(systemctl list-units --all --no-legend ferry-sd2.scope | wc -l)" 0
# A memory hog is OOM-killed in its scope (the kernel names the memcg).
mkbundle $W/b3 "$HOG" '{"memory":{"limit":33554432,"swap":33554432}}' 'machine.slice:ferry:oom'
ferry --systemd-cgroup run --bundle $W/b3 oom >/dev/null 2>&1
eq "oom: killed (exit 137)" "$?" 137
has "oom: the kernel killed it in the scope's memcg" "$(dmesg | grep oom-kill | tail -n1)" "oom_memcg=/machine.slice/ferry-oom.scope"
eq "oom: unit gone (failed unit reset)" "$(systemctl list-units --all --no-legend ferry-oom.scope | wc -l)" 0
ferry --systemd-cgroup run --bundle $W/b3 oom >/dev/null 2>&1
eq "oom: the same name works again" "$?" 137
# A unit name that is taken is refused, and the failed create leaves the
# other container's scope alone.
mkbundle $W/b8 '["sleep","600"]' '{}' 'system.slice:ferry:taken'
ferry --systemd-cgroup run -d --bundle $W/b8 taken1 >$W/taken1.out 2>&1
has "a taken unit name is refused" "$(ferry --systemd-cgroup run --bundle $W/b8 taken2 2>&1)" "cannot start unit ferry-taken.scope"
eq "the other container's scope is left running" "$(systemctl is-active ferry-taken.scope)" active
ferry delete -f taken1 >/dev/null 2>&1
# Errors leave nothing behind.
mkbundle $W/b4 '["true"]' '{}' 'a/b:c:d'
has "invalid slice refused" "$(ferry --systemd-cgroup run --bundle $W/b4 bad1 2>&1)" "invalid cgroupsPath"
mkbundle $W/b5 '["true"]' '{}' 'system.slice:ferry:bad2' '{"org.systemd.property.Bogus-Name":"1"}'
has "bad annotation refused" "$(ferry --systemd-cgroup run --bundle $W/b5 bad2 2>&1)" "systemd property annotation"
mkbundle $W/b6 '["true"]' '{}' 'system.slice:ferry:bad3' '{"org.systemd.property.NoSuchProperty":"uint64 1"}'
has "unknown property refused by systemd" "$(ferry --systemd-cgroup run --bundle $W/b6 bad3 2>&1)" "cannot start unit ferry-bad3.scope"
eq "nothing left" "$(ls /run/ferry 2>/dev/null; systemctl list-units --all --no-legend 'ferry-*.scope' | tr -s ' \n' ' ')" ""

# ---- 2. rootless through the user manager -----------------------------------
echo "INFO -- rootless, systemd --user (uid 1500, lingering)"
RT=/run/user/1500
u() { runuser -u ferrytest -- env XDG_RUNTIME_DIR=$RT DBUS_SESSION_BUS_ADDRESS=unix:path=$RT/bus HOME=/home/ferrytest "$@"; }
# In a service of the user manager, as a user's engine runs (the manager can
# only move processes that are in its own subtree).
urun() { u timeout 120 systemd-run --user --quiet --wait --pipe --collect -- "$@"; }
eq "user manager running" "$(u systemctl --user is-system-running 2>&1)" running
has "user manager delegates memory, pids, cpu" "$(cat $CG/user.slice/user-1500.slice/user@1500.service/cgroup.controllers)" "cpu"
RW=/home/ferrytest/w
mkdir -p $RW && cp -a $W/rootfs $RW/rootfs && chown -R ferrytest: $RW
# mkrootless DIR: the rootless bundle maps ferrytest's own uid and gid.
mkrootless() {
    jq '.root.path = "'$RW'/rootfs" | .linux.uidMappings = [{"containerID":0,"hostID":1500,"size":1}]
        | .linux.gidMappings = [{"containerID":0,"hostID":1500,"size":1}]' $1/config.json >$RW/c.json &&
        mv $RW/c.json $1/config.json
}
mkbundle $RW/r1 '["sleep","600"]' '{"memory":{"limit":50331648},"pids":{"limit":30}}' '' '{}' --rootless
mkrootless $RW/r1
chown -R ferrytest: $RW
UU=ferry-r1.scope
if urun /usr/local/bin/ferry --systemd-cgroup create --bundle $RW/r1 r1 >$W/r1.out 2>&1 </dev/null; then ok "rootless create"; else bad "rootless create" "$(cat $W/r1.out)"; fi
pid=$(u ferry state r1 | jq -r .pid)
eq "rootless: scope active in the user manager" "$(u systemctl --user is-active $UU)" active
eq "rootless: init under user@1500.service" "$(cat /proc/$pid/cgroup 2>&1)" "0::/user.slice/user-1500.slice/user@1500.service/user.slice/$UU"
UD=$CG/user.slice/user-1500.slice/user@1500.service/user.slice/$UU
eq "rootless: MemoryMax property" "$(u systemctl --user show -p MemoryMax --value $UU)" 50331648
eq "rootless: memory.max" "$(cat $UD/memory.max 2>&1)" 50331648
eq "rootless: pids.max" "$(cat $UD/pids.max 2>&1)" 30
out=$(u ferry update --memory 64M r1 2>&1) && ok "rootless update" || bad "rootless update" "$out"
eq "rootless update: memory.max" "$(cat $UD/memory.max 2>&1)" 67108864
eq "rootless update: MemoryMax property" "$(u systemctl --user show -p MemoryMax --value $UU)" 67108864
u ferry kill r1 KILL >/dev/null 2>&1
sleep 0.5
out=$(u ferry delete r1 2>&1) && ok "rootless delete" || bad "rootless delete" "$out"
eq "rootless delete: unit gone" "$(u systemctl --user list-units --all --no-legend $UU | wc -l)" 0
mkbundle $RW/r2 "$HOG" '{"memory":{"limit":33554432,"swap":33554432}}' '' '{}' --rootless
mkrootless $RW/r2
chown -R ferrytest: $RW
urun /usr/local/bin/ferry --systemd-cgroup run --bundle $RW/r2 r2 >$W/r2.out 2>&1 </dev/null
eq "rootless oom: killed (exit 137)" "$?" 137
has "rootless oom: in the user scope's memcg" "$(dmesg | grep oom-kill | tail -n1)" "user@1500.service/user.slice/ferry-r2.scope"

# ---- 3. containerd CRI with SystemdCgroup = true ------------------------------
echo "INFO -- containerd CRI, SystemdCgroup = true, RuntimeClass handler ferry"
if [ -f $S/cri-guest.sh ]; then . $S/cri-guest.sh; fi

# ---- 4. rootless podman with the systemd cgroup manager -----------------------
echo "INFO -- rootless podman --cgroup-manager systemd --runtime ferry"
if [ -f $S/podman-guest.sh ]; then . $S/podman-guest.sh; fi

# ---- 5. checkpoint and restore (CRIU) -----------------------------------------
echo "INFO -- checkpoint/restore with criu"
out=$(criu check 2>&1)
info "criu check: $(echo "$out" | tail -n 1)"
# A counter that writes its next value to a file every 0.2 s; its stdio is
# the container's own /dev/null (CRIU cannot dump a host file outside the
# container's mounts).
CNT='["sh","-c","exec </dev/null >/dev/null 2>&1; i=0; while :; do i=$((i+1)); echo $i >/cr/n; sleep 0.2; done"]'
mkbundle $W/b7 "$CNT" '{}' ''
mkdir -p $W/cr
jq --arg d $W/cr '.mounts += [{"destination":"/cr","type":"bind","source":$d,"options":["rbind","rw"]}]' \
    $W/b7/config.json >$W/b7/c.json && mv $W/b7/c.json $W/b7/config.json
cnt() { cat $W/cr/n 2>/dev/null || echo 0; }
ferry run -d --bundle $W/b7 cr1 >$W/cr1.out 2>&1
sleep 2
before=$(cnt)
cg=$(cat /proc/$(ferry state cr1 | jq -r .pid)/cgroup)
rm -rf $W/cr1-img
t0=$(now_ms)
if out=$(ferry checkpoint --image-path $W/cr1-img --work-path $W/cr1-work cr1 2>&1); then ok "checkpoint"; else
    bad "checkpoint" "$out; $(grep -i error $W/cr1-work/dump.log | tail -n 5)"; fi
info "checkpoint took $(($(now_ms) - t0)) ms"
eq "checkpoint: state stopped" "$(ferry state cr1 | jq -r .status)" stopped
at=$(cnt)
sleep 1
eq "checkpoint: the counter stopped" "$(cnt)" "$at"
[ "$at" -ge "$before" ] 2>/dev/null && [ "$at" -gt 3 ] && ok "checkpoint: the counter had run ($at)" || bad "checkpoint: the counter had run" "before $before, at $at"
ferry delete cr1 >/dev/null 2>&1
t0=$(now_ms)
if out=$(ferry restore -d --image-path $W/cr1-img --work-path $W/cr1-work --bundle $W/b7 --pid-file $W/cr1.pid cr1 2>&1); then ok "restore"; else
    bad "restore" "$out; $(grep -i error $W/cr1-work/restore.log | tail -n 5)"; fi
info "restore took $(($(now_ms) - t0)) ms"
eq "restore: state running" "$(ferry state cr1 | jq -r .status)" running
eq "restore: pid file is the state's pid" "$(cat $W/cr1.pid 2>&1)" "$(ferry state cr1 | jq -r .pid)"
eq "restore: in the container's cgroup again" "$(cat /proc/$(ferry state cr1 | jq -r .pid)/cgroup 2>&1)" "$cg"
sleep 1.5
after=$(cnt)
[ "$after" -gt "$at" ] 2>/dev/null && [ "$after" -lt $((at + 30)) ] && ok "restore: the counter continues ($at -> $after)" ||
    bad "restore: the counter continues" "at $at, after $after"
# --leave-running: the images are taken and the container keeps counting.
rm -rf $W/cr2-img
if out=$(ferry checkpoint --leave-running --image-path $W/cr2-img cr1 2>&1); then ok "checkpoint --leave-running"; else
    bad "checkpoint --leave-running" "$out; $(grep -i error $W/cr2-img/dump.log | tail -n 5)"; fi
eq "--leave-running: state running" "$(ferry state cr1 | jq -r .status)" running
at=$(cnt); sleep 1
[ "$(cnt)" -gt "$at" ] 2>/dev/null && ok "--leave-running: the counter goes on" || bad "--leave-running: the counter goes on" "at $at, now $(cnt)"
ferry kill cr1 KILL >/dev/null 2>&1; sleep 0.5
out=$(ferry delete cr1 2>&1) && ok "restored container deleted" || bad "restored container deleted" "$out"
[ ! -e "$CG${cg#0::}" ] && ok "delete: the restored container's cgroup is gone" || bad "delete: the restored container's cgroup is gone" "$CG${cg#0::} exists"
# In the foreground (no --detach), restore waits for the init and returns
# its exit status.
ferry restore --image-path $W/cr2-img --bundle $W/b7 cr4 >$W/cr4.out 2>&1 &
fg=$!
for _ in $(seq 60); do
    st=$(ferry state cr4 2>&1 | jq -r .status 2>&1)
    [ "$st" = running ] && break
    sleep 0.25
done
[ "$st" = running ] && ok "foreground restore: state running" ||
    bad "foreground restore: state running" "$st; $(cat $W/cr4.out; grep Error $W/cr2-img/restore.log | head -n 3)"
ferry kill cr4 KILL >/dev/null 2>&1
wait $fg
eq "foreground restore: the init's exit status (137)" "$?" 137
ferry delete cr4 >/dev/null 2>&1
[ -f $W/cr2-img/inventory.img ] && ok "--leave-running: images written" || bad "--leave-running: images written" "$(ls $W/cr2-img 2>&1)"
has "restore of an existing id refused" "$(ferry run -d --bundle $W/b7 cr3 >/dev/null 2>&1; ferry restore -d --image-path $W/cr2-img --bundle $W/b7 cr3 2>&1)" "exists"
ferry delete -f cr3 >/dev/null 2>&1

journalctl -b --no-pager -o short-monotonic >$S/journal.txt 2>&1
echo "$pass passed, $fail failed"
