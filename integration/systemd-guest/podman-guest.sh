# Sourced by checks.sh in the systemd guest: rootless podman (user
# ferrytest, in a service of its user manager as a desktop or lingering
# session would run it) with `--cgroup-manager systemd` and ferry as the
# runtime: limits seen inside, an OOM kill seen by podman.
P="/usr/bin/podman --runtime /usr/local/bin/ferry --cgroup-manager systemd"
pm() { urun $P "$@" </dev/null; }
bash $S/mkoci.sh $W/rootfs $RW/busybox.tar localhost/busybox:latest >/dev/null 2>&1
chown ferrytest: $RW/busybox.tar
t0=$(now_ms)
out=$(pm load -i $RW/busybox.tar 2>&1) && ok "podman load (rootless)" || bad "podman load (rootless)" "$out"
info "podman load took $(($(now_ms) - t0)) ms"
t0=$(now_ms)
out=$(pm run --rm --network none --memory 64m --pids-limit 20 localhost/busybox \
    cat /sys/fs/cgroup/memory.max /sys/fs/cgroup/pids.max 2>&1 | tr '\n' ' ')
info "podman run took $(($(now_ms) - t0)) ms"
has "podman: memory.max 64 MiB and pids.max 20 in the container" "$out" "67108864 20 "
pm run --name pm-oom --network none --memory 32m --memory-swap 32m localhost/busybox \
    sh -c 'a=$(yes ferry-oom | head -c 200000000); echo survived' >$W/pm-oom.out 2>&1
eq "podman oom: exit 137" "$?" 137
has "podman oom: killed in its libpod scope under the user manager" "$(dmesg | grep oom-kill | tail -n1)" "oom_memcg=/user.slice/user-1500.slice/user@1500.service/user.slice/libpod-"
oomk=$(pm inspect pm-oom --format '{{.State.OOMKilled}}' 2>&1)
pm rm pm-oom >/dev/null 2>&1
# The same with crun, for comparison (podman's OOMKilled comes from conmon).
urun /usr/bin/podman --runtime /usr/bin/crun --cgroup-manager systemd run --name pm-oom-crun --network none --memory 32m --memory-swap 32m localhost/busybox \
    sh -c 'a=$(yes ferry-oom | head -c 200000000); echo survived' >$W/pm-oom.out 2>&1 </dev/null
rc=$?
oomc=$(pm inspect pm-oom-crun --format '{{.State.OOMKilled}}' 2>&1)
info "podman inspect .State.OOMKilled: $oomk with ferry, $oomc with crun (exit $rc): conmon 2.1.6 sets it"
eq "podman oom: OOMKilled as with crun" "$oomk" "$oomc"
pm rm pm-oom-crun >/dev/null 2>&1
eq "podman: no container left" "$(pm ps -aq 2>&1)" ""
