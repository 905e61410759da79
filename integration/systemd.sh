#!/usr/bin/env bash
# ferry on a production-like host: Debian 12 with systemd as PID 1 on a pure
# cgroup v2 hierarchy, which this machine (v1 hybrid, no systemd) cannot be.
# Builds the guest image from Debian packages once (integration/systemd-guest/
# build.sh, cached under /var/tmp), boots it in qemu (TCG), shares ferry's
# binary, the CRI client, a busybox rootfs and the checks with it over 9p,
# and reports the checks from the serial console. The guest runs its checks
# from a systemd service (ferry-checks.service) and powers itself off.
#
#   integration/systemd.sh                  (TIMEOUT=900 s by default)
#   FERRY=/path/to/ferry KEEP=1 integration/systemd.sh
#   CHECKS=bench integration/systemd.sh     (bench/systemd.sh uses this)
#
# Exit status: 0 when every guest check passed, 1 on a failed check, 2 when
# the VM could not be prepared or did not report in time.
set -euo pipefail
export LC_ALL=C

self=$(readlink -f "$0")
repo=$(cd "$(dirname "$self")/.." && pwd)
guest=$repo/integration/systemd-guest
FERRY=${FERRY:-$repo/target/release/ferry}
CRI_CLIENT=${CRI_CLIENT:-$repo/target/cri-client/release/ferry-cri-client}
TIMEOUT=${TIMEOUT:-900}
CHECKS=${CHECKS:-checks}

die() { echo "systemd: $*" >&2; exit 2; }

[ -x "$FERRY" ] || die "no ferry binary at $FERRY (cargo build --release)"
command -v qemu-system-x86_64 >/dev/null || die "qemu-system-x86_64 missing (apt-get install qemu-system-x86)"

t0=$(date +%s)
image=$(bash "$guest/build.sh") || die "cannot build the guest image"
t1=$(date +%s)
[ -f "$image/disk.img" ] || die "no disk image in $image"

work=$(mktemp -d "${TMPDIR:-/tmp}/ferry-sdvm.XXXXXX")
cleanup() { [ -n "${KEEP:-}" ] || rm -rf "$work"; }
trap cleanup EXIT
share=$work/share
mkdir -p "$share"
cp "$FERRY" "$share/ferry"
if [ -x "$CRI_CLIENT" ]; then
    cp "$CRI_CLIENT" "$share/ferry-cri-client"
else
    echo "systemd: no CRI client at $CRI_CLIENT (integration/run.sh builds it): the CRI checks fail" >&2
fi
cp "$guest"/*.sh "$repo/integration/mkoci.sh" "$share/"
[ -f "$repo/bench/systemd-guest.sh" ] && cp "$repo/bench/systemd-guest.sh" "$share/"
echo "$CHECKS" >"$share/which"
echo "${BENCH_N:-20}" >"$share/bench-n"
bash "$repo/scripts/mkrootfs.sh" "$share/rootfs" >/dev/null
chmod -R a+rX "$share"

log=$work/console.log
echo "systemd: booting the systemd guest (TCG), up to ${TIMEOUT}s; image $(basename "$image") ready in $((t1 - t0)) s"
set +e
# The disk is opened with snapshot=on: the cached image is never written.
timeout --kill-after=10 "$TIMEOUT" qemu-system-x86_64 \
    -machine q35,accel=tcg -cpu max -smp 2 -m 2048 \
    -kernel "$image/vmlinuz" -initrd "$image/initrd.img" \
    -append "root=/dev/vda rw console=ttyS0 panic=-1 quiet loglevel=3 systemd.show_status=0 systemd.unified_cgroup_hierarchy=1" \
    -drive file="$image/disk.img",format=raw,if=virtio,snapshot=on \
    -virtfs local,path="$share",mount_tag=ferry,security_model=none,id=ferry \
    -nographic -no-reboot -nic none >"$log" 2>&1
qemu_rc=$?
set -e
t2=$(date +%s)
tr -d '\r' <"$log" | grep -E '^(FERRY-SD|PASS|FAIL|SKIP|INFO|BENCH|[0-9]+ passed)' || true
echo "systemd: guest ran for $((t2 - t1)) s (boot and checks)"
if ! grep -q 'FERRY-SD: end' "$log"; then
    echo "systemd: the guest did not finish (qemu exit $qemu_rc); last console lines:" >&2
    tr -d '\r' <"$log" | tail -n 30 >&2
    exit 2
fi
if grep -q '^FAIL' <(tr -d '\r' <"$log"); then
    exit 1
fi
exit 0
