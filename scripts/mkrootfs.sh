#!/usr/bin/env bash
# Build a minimal busybox root filesystem in DIR.
#
#   scripts/mkrootfs.sh DIR
#
# DIR/bin holds a copy of the static busybox (busybox-static) and one symlink
# per applet; DIR/etc has passwd and group (root, nobody); proc sys dev tmp
# root exist and are empty. Everything is world-readable so that a non-root
# user can use (or copy) the rootfs. Re-running is cheap: nothing is done when
# DIR/bin/busybox already matches the host's busybox and the build finished.
set -euo pipefail

if [ $# -ne 1 ] || [ -z "$1" ]; then
    echo "usage: $0 DIR" >&2
    exit 2
fi
dir=$1

busybox=""
for b in /bin/busybox /usr/bin/busybox; do
    if [ -x "$b" ]; then busybox=$b; break; fi
done
if [ -z "$busybox" ]; then
    echo "mkrootfs: busybox not found (apt-get install busybox-static)" >&2
    exit 1
fi
# A dynamically linked busybox would need the host's libraries in the rootfs.
if command -v ldd >/dev/null 2>&1 && ldd "$busybox" >/dev/null 2>&1; then
    echo "mkrootfs: $busybox is not static (apt-get install busybox-static)" >&2
    exit 1
fi

stamp=$dir/.mkrootfs-done
if [ -f "$stamp" ] && [ -x "$dir/bin/busybox" ] && cmp -s "$busybox" "$dir/bin/busybox"; then
    exit 0
fi

rm -f "$stamp"
mkdir -p "$dir"
chmod 0755 "$dir"
mkdir -p "$dir/bin" "$dir/proc" "$dir/sys" "$dir/dev" "$dir/tmp" "$dir/etc" "$dir/root"

# Replace (not overwrite in place): the old busybox may be running in a container.
cp "$busybox" "$dir/bin/busybox.new"
chmod 0755 "$dir/bin/busybox.new"
mv -f "$dir/bin/busybox.new" "$dir/bin/busybox"

for applet in $("$dir/bin/busybox" --list); do
    case $applet in
        busybox|*/*|'') continue ;;
    esac
    ln -sfn busybox "$dir/bin/$applet"
done

cat > "$dir/etc/passwd" <<'PASSWD'
root:x:0:0:root:/root:/bin/sh
nobody:x:65534:65534:nobody:/nonexistent:/bin/false
PASSWD
cat > "$dir/etc/group" <<'GROUP'
root:x:0:
nogroup:x:65534:
GROUP

chmod -R a+rX "$dir"
chmod 1777 "$dir/tmp"
chmod 0755 "$dir/root"

echo "$busybox" > "$stamp"
