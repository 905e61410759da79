#!/usr/bin/env bash
# The Kubernetes path: containerd's CRI plugin with a runtime handler `ferry`
# (io.containerd.runc.v2, BinaryName = the runtime under test), driven over the
# CRI gRPC API the way the kubelet does by integration/cri-client (a small Rust
# client on the k8s-cri crate).
#
#   integration/run.sh cri          (also among run.sh's default suites)
#
# Called by integration/run.sh, which installs protoc, builds the client and
# exports WORK, RUNTIME_BIN, ROOTFS and CRI_CLIENT.
# A private containerd (own root, state, socket; CRI enabled, its CNI dirs
# empty: the pod uses the host network) is stopped and cleaned up on exit.
set -uo pipefail

here=$(cd "$(dirname "$(readlink -f "$0")")" && pwd)
SUITE=cri
# shellcheck source=integration/lib.sh
. "$here/lib.sh"

: "${WORK:?run through integration/run.sh}" "${RUNTIME_BIN:?}" "${ROOTFS:?}" "${CRI_CLIENT:?}"
C=$WORK/cri
SOCK=$C/containerd.sock
NS=k8s.io
IMG=localhost/busybox:latest
PAUSE=localhost/pause:latest
mkdir -p "$C/cni-bin" "$C/cni-conf" "$C/pods"

cat >"$C/config.toml" <<EOF
version = 2
root = "$C/root"
state = "$C/state"
disabled_plugins = [
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

[plugins]
  [plugins."io.containerd.internal.v1.opt"]
    path = "$C/opt"
  [plugins."io.containerd.grpc.v1.cri"]
    sandbox_image = "$PAUSE"
    disable_apparmor = true
    # Without CAP_SYS_RESOURCE (this VM) no runtime can lower oom_score_adj to
    # the sandbox's -998 (runc fails too): keep it at containerd's own score.
    restrict_oom_score_adj = true
    [plugins."io.containerd.grpc.v1.cri".cni]
      bin_dir = "$C/cni-bin"
      conf_dir = "$C/cni-conf"
    [plugins."io.containerd.grpc.v1.cri".containerd]
      snapshotter = "overlayfs"
      default_runtime_name = "runc"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
        runtime_type = "io.containerd.runc.v2"
      # The RuntimeClass handler "ferry" (docs/engines.md shows this snippet).
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.ferry]
        runtime_type = "io.containerd.runc.v2"
        [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.ferry.options]
          BinaryName = "$RUNTIME_BIN"
          Root = "$C/runtime-root"
EOF

ctd_start "private containerd with the CRI plugin started"

c() { timeout -k 5 "$CMD_TIMEOUT" ctr -a "$SOCK" -n "$NS" "$@"; }
check "build the busybox and pause images" 0 '' bash -c \
    "bash '$here/mkoci.sh' '$ROOTFS' '$C/busybox.tar' '$IMG' && bash '$here/mkoci.sh' '$ROOTFS' '$C/pause.tar' '$PAUSE' '[\"sleep\", \"2147483647\"]'"
check "ctr -n k8s.io image import (busybox)" 0 '' c image import "$C/busybox.tar"
check "ctr -n k8s.io image import (pause)" 0 '' c image import "$C/pause.tar"

t0=$(now_ms)
timeout -k 5 300 "$CRI_CLIENT" "$SOCK" ferry "$IMG" "$C/pods" >"$C/client.out" 2>&1
rc=$?
grep -v '^#    cri:\|^POD ' "$C/client.out"
read -r p f < <(sed -nE 's/^#    cri: ([0-9]+) passed, ([0-9]+) failed.*/\1 \2/p' "$C/client.out")
PASS=$((PASS + ${p:-0}))
FAIL=$((FAIL + ${f:-0}))
if [ "$rc" != 0 ] && [ "${f:-0}" = 0 ]; then fail "CRI client exited $rc" "$(tail -n 5 "$C/client.out")"; fi
info "CRI scenario took $(($(now_ms) - t0)) ms"

# The handler really ran the runtime under test: its state went to the
# handler's Root, and nothing is left there.
if [ -d "$C/runtime-root/$NS" ]; then
    pass "the handler's runtime kept its state in its Root ($C/runtime-root/$NS)"
else
    fail "the handler's runtime kept its state in its Root" "no $C/runtime-root/$NS"
fi
left=$(ls "$C/runtime-root/$NS" 2>/dev/null)
if [ -z "$left" ]; then pass "no runtime state left"; else fail "no runtime state left" "$left"; fi

summary
