# Sourced by checks.sh in the systemd guest: containerd's CRI plugin with
# `SystemdCgroup = true` (what the kubelet's systemd cgroup driver needs),
# ferry as the RuntimeClass handler `ferry`, driven by integration/cri-client
# as the kubelet would, the pod in a kubepods slice; a container with a
# memory limit is OOM-killed and containerd reports it. docs/engines.md
# shows the same configuration.
C=$W/cri
SOCK=$C/containerd.sock
mkdir -p $C/pods
cat >$C/config.toml <<CFG
version = 2
root = "$C/root"
state = "$C/state"
disabled_plugins = [
  "io.containerd.snapshotter.v1.aufs",
  "io.containerd.snapshotter.v1.btrfs",
  "io.containerd.snapshotter.v1.devmapper",
  "io.containerd.snapshotter.v1.zfs",
]
[grpc]
  address = "$SOCK"
[ttrpc]
  address = "$SOCK.ttrpc"
[plugins]
  [plugins."io.containerd.grpc.v1.cri"]
    sandbox_image = "localhost/pause:latest"
    [plugins."io.containerd.grpc.v1.cri".cni]
      bin_dir = "$C/cni-bin"
      conf_dir = "$C/cni-conf"
    [plugins."io.containerd.grpc.v1.cri".containerd]
      snapshotter = "overlayfs"
      default_runtime_name = "runc"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
        runtime_type = "io.containerd.runc.v2"
        [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
          SystemdCgroup = true
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.ferry]
        runtime_type = "io.containerd.runc.v2"
        [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.ferry.options]
          BinaryName = "/usr/local/bin/ferry"
          SystemdCgroup = true
CFG
t0=$(now_ms)
containerd --config $C/config.toml >$C/containerd.log 2>&1 &
ctd=$!
for _ in $(seq 1 120); do ctr -a $SOCK version >/dev/null 2>&1 && break; sleep 0.5; done
if ctr -a $SOCK version >/dev/null 2>&1; then
    ok "containerd $(containerd --version | awk '{print $3}') with the CRI plugin up ($(($(now_ms) - t0)) ms)"
    c() { timeout 120 ctr -a $SOCK -n k8s.io "$@"; }
    bash $S/mkoci.sh $W/rootfs $C/busybox.tar localhost/busybox:latest >/dev/null 2>&1
    bash $S/mkoci.sh $W/rootfs $C/pause.tar localhost/pause:latest '["sleep", "2147483647"]' >/dev/null 2>&1
    if c image import $C/busybox.tar >/dev/null 2>&1 && c image import $C/pause.tar >/dev/null 2>&1; then
        ok "images imported"
    else
        bad "images imported" "$(c image import $C/busybox.tar 2>&1)"
    fi
    t0=$(now_ms)
    FERRY_CRI_CGROUP_PARENT=kubepods-besteffort-podferry.slice FERRY_CRI_OOM=1 FERRY_CRI_SLOW=1 \
        timeout 300 $S/ferry-cri-client $SOCK ferry localhost/busybox:latest $C/pods >$C/client.out 2>&1
    info "CRI scenario took $(($(now_ms) - t0)) ms"
    cp $C/client.out $S/cri-client.out 2>/dev/null
    while IFS= read -r line; do
        case $line in
            "ok   cri: "*) ok "cri: ${line#ok   cri: }" ;;
            "FAIL cri: "*) bad "cri: ${line#FAIL cri: }" "see below" ;;
            *) echo "INFO   $line" ;;
        esac
    done <$C/client.out
    grep -q "passed" $C/client.out || bad "CRI client finished" "$(tail -n 5 $C/client.out)"
    scopes=$(journalctl -b --no-pager | grep -c 'Started cri-containerd-.*\.scope - ferry container')
    [ "$scopes" -ge 4 ] && ok "systemd made the pod's scopes for ferry ($scopes cri-containerd-*.scope)" ||
        bad "systemd made the pod's scopes for ferry" "$scopes scopes in the journal"
    has "cri oom: killed in the pod's slice" "$(dmesg | grep oom-kill | tail -n1)" "oom_memcg=/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-podferry.slice/cri-containerd-"
    eq "cri: no scope left" "$(systemctl list-units --all --no-legend 'cri-containerd-*' | wc -l)" 0
else
    bad "containerd with the CRI plugin up" "$(tail -n 10 $C/containerd.log)"
fi
kill $ctd 2>/dev/null
wait $ctd 2>/dev/null
