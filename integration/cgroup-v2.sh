#!/usr/bin/env bash
# ferry's cgroup checks on a pure cgroup v2 host, which this (v1 hybrid)
# machine cannot become: boot Debian's stock kernel in qemu with a busybox
# initramfs whose init mounts only cgroup2, run integration/cgroup-v2-guest.sh
# there and report its results from the serial console.
#
#   integration/cgroup-v2.sh            (TIMEOUT=600 by default, seconds)
#   FERRY=/path/to/ferry KEEP=1 integration/cgroup-v2.sh
#
# The kernel package (linux-image-amd64's current dependency) is fetched with
# `apt-get download` and unpacked with dpkg-deb -x into $FERRY_VM_CACHE
# (default /var/tmp/ferry-vm), never installed. qemu-system-x86 is installed
# with apt-get when missing (root only). The release ferry binary is dynamic:
# its libraries (ldd) go into the initramfs with it.
# Exit status: 0 when every guest check passed, 1 on a failed check, 2 when
# the VM could not be prepared or did not report in time.
set -euo pipefail
export LC_ALL=C

self=$(readlink -f "$0")
repo=$(cd "$(dirname "$self")/.." && pwd)
FERRY=${FERRY:-$repo/target/release/ferry}
TIMEOUT=${TIMEOUT:-600}
cache=${FERRY_VM_CACHE:-/var/tmp/ferry-vm}

die() { echo "cgroup-v2: $*" >&2; exit 2; }

[ -x "$FERRY" ] || die "no ferry binary at $FERRY (cargo build --release)"
if ! command -v qemu-system-x86_64 >/dev/null; then
    [ "$(id -u)" -eq 0 ] || die "qemu-system-x86_64 missing (apt-get install qemu-system-x86)"
    DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends qemu-system-x86 >/dev/null ||
        die "cannot install qemu-system-x86"
fi
busybox=""
for b in /bin/busybox /usr/bin/busybox; do
    if [ -x "$b" ]; then busybox=$b; break; fi
done
[ -n "$busybox" ] || die "busybox missing (apt-get install busybox-static)"

# ---- the kernel --------------------------------------------------------------
mkdir -p "$cache"
kernel=$(ls "$cache"/kernel/boot/vmlinuz-* 2>/dev/null | head -n1 || true)
if [ -z "$kernel" ]; then
    pkg=$(apt-cache depends linux-image-amd64 2>/dev/null | awk '/Depends: linux-image-/ { print $2; exit }')
    [ -n "$pkg" ] || die "cannot resolve linux-image-amd64 (run apt-get update)"
    (cd "$cache" && apt-get download "$pkg" >/dev/null 2>&1) || die "apt-get download $pkg failed"
    dpkg-deb -x "$cache"/"$pkg"_*.deb "$cache/kernel"
    rm -f "$cache"/"$pkg"_*.deb
    kernel=$(ls "$cache"/kernel/boot/vmlinuz-* | head -n1)
fi

# ---- the initramfs -----------------------------------------------------------
work=$(mktemp -d "${TMPDIR:-/tmp}/ferry-v2vm.XXXXXX")
cleanup() { [ -n "${KEEP:-}" ] || rm -rf "$work"; }
trap cleanup EXIT
ir=$work/initrd
mkdir -p "$ir"/{bin,sbin,usr/bin,usr/sbin,etc,proc,sys,dev,tmp,run,var/tmp}
cp "$busybox" "$ir/bin/busybox"
cp "$FERRY" "$ir/bin/ferry"
# The ferry binary's shared libraries, at the paths the loader expects.
ldd "$FERRY" | awk '/=>/ { print $3 } /^\t\/[^ ]+ \(/ { print $1 }' | while read -r lib; do
    [ -f "$lib" ] || continue
    mkdir -p "$ir$(dirname "$lib")"
    cp -L "$lib" "$ir$lib"
done
bash "$repo/scripts/mkrootfs.sh" "$ir/ctr/rootfs" >/dev/null
cp "$repo/integration/cgroup-v2-guest.sh" "$ir/checks.sh"
echo 'root:x:0:0:root:/root:/bin/sh' >"$ir/etc/passwd"
echo 'root:x:0:' >"$ir/etc/group"
cat >"$ir/init" <<'EOF'
#!/bin/busybox sh
# Stage 1: the initramfs root cannot be pivot_root'ed away from, so copy
# everything into a tmpfs and switch_root there.
/bin/busybox --install -s /bin
mount -t proc proc /proc
mount -t devtmpfs dev /dev
mkdir -p /newroot
mount -t tmpfs -o size=768m,mode=755 tmpfs /newroot
for d in bin lib lib64 usr etc ctr checks.sh stage2; do
    [ -e "/$d" ] && cp -a "/$d" /newroot/
done
mkdir -p /newroot/proc /newroot/sys /newroot/dev /newroot/tmp /newroot/run /newroot/var/tmp
umount /proc
mount --move /dev /newroot/dev
exec switch_root /newroot /stage2
EOF
cat >"$ir/stage2" <<'EOF'
#!/bin/sh
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t tmpfs -o mode=1777 tmp /tmp
mount -t tmpfs run /run
mount -t cgroup2 none /sys/fs/cgroup
echo "FERRY-V2: kernel $(uname -r), cgroup controllers: $(cat /sys/fs/cgroup/cgroup.controllers)"
sh /checks.sh 2>&1
echo "FERRY-V2: end"
sync
poweroff -f
EOF
chmod 0755 "$ir/init" "$ir/stage2" "$ir/checks.sh"
cpio=(cpio -o -H newc --quiet)
command -v cpio >/dev/null || cpio=("$busybox" cpio -o -H newc)
(cd "$ir" && find . | "${cpio[@]}" 2>/dev/null | gzip -1) >"$work/initrd.gz"

# ---- boot --------------------------------------------------------------------
accel=tcg cpu=max
# KVM only on request: nested KVM on these machines aborts on MSR writes.
if [ -n "${FERRY_VM_KVM:-}" ] && [ -w /dev/kvm ]; then accel=kvm cpu=host; fi
log=$work/console.log
echo "cgroup-v2: booting $(basename "$kernel") ($accel), up to ${TIMEOUT}s"
set +e
timeout --kill-after=10 "$TIMEOUT" qemu-system-x86_64 \
    -machine q35,accel="$accel" -cpu "$cpu" -smp 2 -m 1536 \
    -kernel "$kernel" -initrd "$work/initrd.gz" \
    -append "console=ttyS0 panic=-1 quiet loglevel=3 systemd.unified_cgroup_hierarchy=1 cgroup_no_v1=all" \
    -nographic -no-reboot -nic none >"$log" 2>&1
qemu_rc=$?
set -e
tr -d '\r' <"$log" | grep -E '^(FERRY-V2|PASS|FAIL|SKIP|[0-9]+ passed)' || true
if ! grep -q 'FERRY-V2: end' "$log"; then
    echo "cgroup-v2: the guest did not finish (qemu exit $qemu_rc); last console lines:" >&2
    tr -d '\r' <"$log" | tail -n 20 >&2
    exit 2
fi
if grep -q '^FAIL' <(tr -d '\r' <"$log"); then
    exit 1
fi
exit 0
