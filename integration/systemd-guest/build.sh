#!/usr/bin/env bash
# Build (or find cached) the systemd guest of integration/systemd.sh: Debian 12
# with systemd as PID 1 on a pure cgroup v2 hierarchy, from Debian packages
# (mmdebstrap), in an ext4 disk image (mke2fs -d), with the kernel and the
# initramfs initramfs-tools made for it copied beside the image. Services the
# checks do not need at boot are masked (containerd: the checks start their
# own).
#
#   integration/systemd-guest/build.sh      prints the cache directory
#
# The image is cached under $FERRY_SYSTEMD_VM_CACHE (default
# /var/tmp/ferry-systemd-vm)/KEY, KEY being a hash of this script (its package
# list and its configuration hooks) and of ferry-checks.service: a change to
# either builds a new image.
# Nothing of ferry is in the image: integration/systemd.sh shares its binary
# and the checks with the guest over 9p at each boot.
set -euo pipefail
export LC_ALL=C

self=$(readlink -f "$0")
cache_root=${FERRY_SYSTEMD_VM_CACHE:-/var/tmp/ferry-systemd-vm}
die() { echo "systemd-guest: $*" >&2; exit 2; }

# What the guest runs: systemd and D-Bus (system and user bus, logind for the
# user manager), the kernel, the engines and runtimes to compare and drive,
# CRIU, and the tools the checks use.
PACKAGES=(
    systemd systemd-sysv dbus dbus-user-session libpam-systemd
    linux-image-amd64 initramfs-tools
    containerd runc crun podman criu uidmap catatonit
    busybox-static jq iproute2 procps kmod util-linux e2fsprogs bc
    slirp4netns fuse-overlayfs
)

key=$(cat "$self" "$(dirname "$self")/ferry-checks.service" | sha256sum | cut -c1-16)
out=$cache_root/$key
if [ -f "$out/ready" ]; then
    echo "$out"
    exit 0
fi
[ "$(id -u)" -eq 0 ] || die "building the image needs root"
command -v mmdebstrap >/dev/null || die "mmdebstrap missing (scripts/deps.sh installs it)"
command -v mke2fs >/dev/null || die "mke2fs missing (e2fsprogs)"

rm -rf "$out"
mkdir -p "$out"
tree=$out/tree
include=$(IFS=,; echo "${PACKAGES[*]}")
t0=$(date +%s)
echo "systemd-guest: mmdebstrap bookworm (${#PACKAGES[@]} packages) into $tree" >&2

# The configuration, run inside the tree after the packages are installed.
# shellcheck disable=SC2016
mmdebstrap --mode=root --variant=apt --skip=check/empty \
    --include="$include" \
    --dpkgopt='path-exclude=/usr/share/man/*' \
    --dpkgopt='path-exclude=/usr/share/doc/*' \
    --dpkgopt='path-exclude=/usr/share/locale/*' \
    --dpkgopt='path-include=/usr/share/doc/*/copyright' \
    --customize-hook='echo ferry-systemd >"$1/etc/hostname"' \
    --customize-hook='printf "/dev/vda / ext4 rw,relatime 0 1\nferry /mnt/ferry 9p trans=virtio,version=9p2000.L,msize=1048576,nofail 0 0\n" >"$1/etc/fstab"' \
    --customize-hook='mkdir -p "$1/mnt/ferry"' \
    --customize-hook='chroot "$1" passwd -d root' \
    --customize-hook='chroot "$1" useradd -m -u 1500 -s /bin/bash ferrytest' \
    --customize-hook='echo "ferrytest:100000:65536" >"$1/etc/subuid"; echo "ferrytest:100000:65536" >"$1/etc/subgid"' \
    --customize-hook='mkdir -p "$1/var/lib/systemd/linger" && touch "$1/var/lib/systemd/linger/ferrytest"' \
    --customize-hook='mkdir -p "$1/etc/systemd/system/user@.service.d" && printf "[Service]\nDelegate=yes\n" >"$1/etc/systemd/system/user@.service.d/delegate.conf"' \
    --customize-hook='for u in serial-getty@ttyS0.service getty@tty1.service apt-daily.timer apt-daily-upgrade.timer man-db.timer e2scrub_all.timer e2scrub_reap.service fstrim.timer dpkg-db-backup.timer systemd-tmpfiles-clean.timer systemd-timesyncd.service containerd.service podman.service podman.socket podman-restart.service podman-auto-update.service podman-auto-update.timer podman-clean-transient.service; do ln -sf /dev/null "$1/etc/systemd/system/$u"; done' \
    --customize-hook='cp "'"$(dirname "$self")"'/ferry-checks.service" "$1/etc/systemd/system/" && ln -sf /etc/systemd/system/ferry-checks.service "$1/etc/systemd/system/multi-user.target.wants/ferry-checks.service"' \
    --customize-hook='rm -rf "$1/var/cache/apt/archives/"*.deb "$1/var/lib/apt/lists/"*' \
    bookworm "$tree" http://deb.debian.org/debian >"$out/mmdebstrap.log" 2>&1 ||
    { tail -n 30 "$out/mmdebstrap.log" >&2; die "mmdebstrap failed (log: $out/mmdebstrap.log)"; }
t1=$(date +%s)

cp "$(ls "$tree"/boot/vmlinuz-* | head -n1)" "$out/vmlinuz"
cp "$(ls "$tree"/boot/initrd.img-* | head -n1)" "$out/initrd.img"
# Room for images, containers and the checks' scratch files beside the tree.
size_mb=$(($(du -sm "$tree" | cut -f1) + 2048))
mke2fs -q -t ext4 -L ferry-root -d "$tree" "$out/disk.img" "${size_mb}M" ||
    die "mke2fs -d failed"
rm -rf "$tree"
t2=$(date +%s)
echo "mmdebstrap $((t1 - t0)) s, mke2fs $((t2 - t1)) s" >"$out/build-times"
touch "$out/ready"
echo "systemd-guest: image built in $((t2 - t0)) s ($(cat "$out/build-times"))" >&2
echo "$out"
