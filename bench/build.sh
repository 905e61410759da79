#!/usr/bin/env bash
# Build benchmark: `ferry build` vs `buildah bud --layers` on the same
# multistage Dockerfile (bench/build/) and the same busybox base (loaded
# into both stores from one OCI layout), cold and fully cached, as root and
# rootless (the test user), one run each. Also the cost of committing a
# layer against `tar -c` of the same directory.
#
#   bench/build.sh
#   FERRY=target/fasttest/ferry DRIVER=vfs bench/build.sh
set -euo pipefail
export LC_ALL=C

ROOT_DIR=$(cd "$(dirname "$0")/.." && pwd)
FERRY=$(realpath "${FERRY:-$ROOT_DIR/target/release/ferry}")
WORK=${WORK:-/var/tmp/ferry-build-bench}
RUN_AS=${RUN_AS:-ferrytest}
DRIVER=${DRIVER:-overlay}
CTX=$ROOT_DIR/bench/build

[ -x "$FERRY" ] || { echo "build bench: build ferry first (cargo build --release)"; exit 1; }
command -v buildah >/dev/null || { echo "build bench: buildah is missing (apt-get install buildah)"; exit 1; }

# buildah's overlay storage may stay mounted: unmount it before removing.
unmount_work() {
    awk -v w="$WORK" '$5 ~ "^"w { print $5 }' /proc/self/mountinfo | sort -r |
        while read -r m; do umount "$m" 2>/dev/null || umount -l "$m" 2>/dev/null || true; done
}
trap unmount_work EXIT
unmount_work
rm -rf "$WORK"
mkdir -p "$WORK"
chmod 755 "$WORK"

# The base: busybox from scripts/mkrootfs.sh as a one-layer OCI layout.
bash "$ROOT_DIR/scripts/mkrootfs.sh" "$WORK/rootfs" >/dev/null
layout=$WORK/layout
mkdir -p "$layout/blobs/sha256"
tar -C "$WORK/rootfs" --sort=name --numeric-owner -cf "$WORK/layer.tar" .
diff=$(sha256sum <"$WORK/layer.tar" | cut -d' ' -f1)
lsize=$(stat -c %s "$WORK/layer.tar")
mv "$WORK/layer.tar" "$layout/blobs/sha256/$diff"
config="{\"architecture\":\"amd64\",\"os\":\"linux\",\"config\":{\"Env\":[\"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin\"],\"Cmd\":[\"sh\"]},\"rootfs\":{\"type\":\"layers\",\"diff_ids\":[\"sha256:$diff\"]},\"created\":\"2025-01-01T00:00:00Z\",\"history\":[{\"created\":\"2025-01-01T00:00:00Z\",\"created_by\":\"ADD rootfs /\"}]}"
printf '%s' "$config" >"$WORK/c"
cdig=$(sha256sum <"$WORK/c" | cut -d' ' -f1)
mv "$WORK/c" "$layout/blobs/sha256/$cdig"
manifest="{\"schemaVersion\":2,\"mediaType\":\"application/vnd.oci.image.manifest.v1+json\",\"config\":{\"mediaType\":\"application/vnd.oci.image.config.v1+json\",\"digest\":\"sha256:$cdig\",\"size\":${#config}},\"layers\":[{\"mediaType\":\"application/vnd.oci.image.layer.v1.tar\",\"digest\":\"sha256:$diff\",\"size\":$lsize}]}"
printf '%s' "$manifest" >"$WORK/m"
mdig=$(sha256sum <"$WORK/m" | cut -d' ' -f1)
mv "$WORK/m" "$layout/blobs/sha256/$mdig"
echo "{\"schemaVersion\":2,\"manifests\":[{\"mediaType\":\"application/vnd.oci.image.manifest.v1+json\",\"digest\":\"sha256:$mdig\",\"size\":${#manifest},\"annotations\":{\"org.opencontainers.image.ref.name\":\"v1\"}}]}" >"$layout/index.json"
echo '{"imageLayoutVersion":"1.0.0"}' >"$layout/oci-layout"
cp -a "$CTX" "$WORK/ctx"
chmod -R a+rX "$WORK"

now() { echo "$EPOCHREALTIME"; }
elapsed() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f", b - a }'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.3f", a / b; else print "n/a" }'; }

# time_it LOG CMD...: run, print the seconds (or fail with the log's tail).
time_it() {
    local log=$1
    shift
    sync
    local t0 t1
    t0=$(now)
    if ! "$@" >"$log" 2>&1; then
        echo "   failed: $*" >&2
        tail -15 "$log" >&2
        return 1
    fi
    t1=$(now)
    elapsed "$t0" "$t1"
}

# bench_as MODE (root|rootless)
bench_as() {
    local mode=$1 dir=$WORK/$1
    local as=()
    mkdir -p "$dir"
    if [ "$mode" = rootless ]; then
        chown -R "$RUN_AS:" "$dir"
        as=(setpriv --reuid="$RUN_AS" --regid="$RUN_AS" --init-groups env HOME="$dir/home" XDG_RUNTIME_DIR="$dir/xdg")
        "${as[@]}" mkdir -p "$dir/home" "$dir/xdg"
    fi
    local ferry=("${as[@]}" "$FERRY" --root "$dir/state")
    "${ferry[@]}" image --store "$dir/store" import --name bb "oci:$layout:v1" >/dev/null
    local fb=("${ferry[@]}" build --store "$dir/store" -t bench -f "$WORK/ctx/Dockerfile" "$WORK/ctx")
    local f_cold f_cached
    f_cold=$(time_it "$dir/ferry-cold.log" "${fb[@]}")
    f_cached=$(time_it "$dir/ferry-cached.log" "${fb[@]}")
    grep -q "4 cached\|9 cached\|cached)" "$dir/ferry-cached.log" || true

    local bh=("${as[@]}" buildah --root "$dir/bh-root" --runroot "$dir/bh-run" --storage-driver "$DRIVER")
    "${bh[@]}" pull -q "oci:$layout:v1" >"$dir/bh-pull.log" 2>&1 || {
        echo "   buildah pull failed:"; tail -5 "$dir/bh-pull.log"; return 1; }
    "${bh[@]}" tag "$("${bh[@]}" images -q | head -1)" bb
    local bb=("${bh[@]}" bud --runtime "${RUNTIME:-runc}" --layers --pull=false -t bench -f "$WORK/ctx/Dockerfile" "$WORK/ctx")
    local b_cold b_cached
    b_cold=$(time_it "$dir/buildah-cold.log" "${bb[@]}")
    b_cached=$(time_it "$dir/buildah-cached.log" "${bb[@]}")

    printf '   %-9s %-8s cold %7ss  cached %7ss\n' "$mode" ferry "$f_cold" "$f_cached"
    printf '   %-9s %-8s cold %7ss  cached %7ss  (%s storage)\n' "$mode" buildah "$b_cold" "$b_cached" "$DRIVER"
    printf '   %-9s ratios: cold ferry/buildah %s (goal <= 0.5), cached ferry/buildah %s (<= 0.1), ferry cached/cold %s (<= 0.1)\n' \
        "$mode" "$(ratio "$f_cold" "$b_cold")" "$(ratio "$f_cached" "$b_cached")" "$(ratio "$f_cached" "$f_cold")"

    # Writing a layer's tar (walk, hash, write) vs tar -c of the same
    # directory: the slowest layer of the cold build.
    local line hex commit root tar_s
    line=$(grep "committed in" "$dir/ferry-cold.log" |
        sed -E 's/.*layer ([0-9a-f]+) .*tar written in ([0-9.]+)s.*/\2 \1/' | sort -n | tail -1)
    commit=${line%% *}
    hex=${line##* }
    root=$(ls -d "$dir/store/layers/$hex"*/root | head -1)
    tar_s=$(time_it "$dir/tar.log" "${as[@]}" tar -C "$root" -cf "$dir/tar-c.tar" .)
    printf '   %-9s layer commit %ss vs tar -c %ss: ratio %s (goal <= 1)\n' "$mode" "$commit" "$tar_s" "$(ratio "$commit" "$tar_s")"
    rm -f "$dir/tar-c.tar"
}

echo "== ferry build vs buildah bud --layers ($(nproc) cpus; bench/build/Dockerfile)"
bench_as root
if id "$RUN_AS" >/dev/null 2>&1; then
    bench_as rootless
else
    echo "   rootless: no user $RUN_AS, skipped"
fi
