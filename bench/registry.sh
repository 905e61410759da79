#!/usr/bin/env bash
# Registry benchmark: push and pull of one image (~200 MB of random data in
# 4 gzip layers: random data does not compress, so gzip costs little, and
# skopeo pushes gzip layers as they are, where it would compress
# uncompressed ones) to Debian's docker-registry on 127.0.0.1, ferry vs
# skopeo, in one run.
#
#   push: `ferry image push` (from its store) vs `skopeo copy oci:LAYOUT
#         docker://...` (the same blobs, from an OCI layout)
#   pull: `ferry image pull` (download, verify, gunzip, extract, keep the
#         blob) vs
#         `skopeo copy docker://... oci:DIR` (download, verify, write)
#
# Each round starts a fresh registry (empty storage, new port) so nothing is
# mounted or skipped; who goes first alternates. Medians of N rounds;
# throughput is image bytes / seconds; ratio = ferry's / skopeo's (the
# target is >= 0.8).
#
#   bench/registry.sh
#   N=5 SIZE_MB=400 FERRY=target/release/ferry bench/registry.sh
set -euo pipefail
export LC_ALL=C

FERRY=$(realpath "${FERRY:-target/release/ferry}")
WORK=${WORK:-/var/tmp/ferry-registry-bench}
SIZE_MB=${SIZE_MB:-200}
LAYERS=${LAYERS:-4}
N=${N:-3}

for tool in docker-registry skopeo sha256sum python3; do
    command -v "$tool" >/dev/null || { echo "registry bench: $tool is missing (scripts/deps.sh)"; exit 1; }
done
[ -x "$FERRY" ] || { echo "registry bench: build ferry first (cargo build --release)"; exit 1; }

REG_PID=
stop_registry() {
    if [ -n "$REG_PID" ]; then
        kill "$REG_PID" 2>/dev/null || true
        wait "$REG_PID" 2>/dev/null || true
        REG_PID=
    fi
}
trap 'stop_registry; rm -rf "$WORK"' EXIT

rm -rf "$WORK"
mkdir -p "$WORK/layout/blobs/sha256" "$WORK/src"
blobs=$WORK/layout/blobs/sha256
layers=()
diffs=()
per=$((SIZE_MB / LAYERS))
echo "== building a $SIZE_MB MB image: $LAYERS layers of $per MB of random data"
for i in $(seq "$LAYERS"); do
    head -c "${per}M" /dev/urandom >"$WORK/src/data$i"
    tar -C "$WORK/src" -cf "$WORK/layer.tar" "data$i"
    rm "$WORK/src/data$i"
    diff=$(sha256sum <"$WORK/layer.tar" | cut -d' ' -f1)
    gzip -n -1 <"$WORK/layer.tar" >"$WORK/layer.tar.gz"
    rm "$WORK/layer.tar"
    dig=$(sha256sum <"$WORK/layer.tar.gz" | cut -d' ' -f1)
    size=$(stat -c %s "$WORK/layer.tar.gz")
    mv "$WORK/layer.tar.gz" "$blobs/$dig"
    layers+=("{\"mediaType\":\"application/vnd.oci.image.layer.v1.tar+gzip\",\"digest\":\"sha256:$dig\",\"size\":$size}")
    diffs+=("\"sha256:$diff\"")
done
config="{\"architecture\":\"amd64\",\"os\":\"linux\",\"config\":{\"Cmd\":[\"sh\"]},\"rootfs\":{\"type\":\"layers\",\"diff_ids\":[$(IFS=,; echo "${diffs[*]}")]}}"
printf '%s' "$config" >"$WORK/c"
cdig=$(sha256sum <"$WORK/c" | cut -d' ' -f1)
mv "$WORK/c" "$blobs/$cdig"
manifest="{\"schemaVersion\":2,\"mediaType\":\"application/vnd.oci.image.manifest.v1+json\",\"config\":{\"mediaType\":\"application/vnd.oci.image.config.v1+json\",\"digest\":\"sha256:$cdig\",\"size\":${#config}},\"layers\":[$(IFS=,; echo "${layers[*]}")]}"
printf '%s' "$manifest" >"$WORK/m"
mdig=$(sha256sum <"$WORK/m" | cut -d' ' -f1)
mv "$WORK/m" "$blobs/$mdig"
echo '{"imageLayoutVersion":"1.0.0"}' >"$WORK/layout/oci-layout"
echo "{\"schemaVersion\":2,\"manifests\":[{\"mediaType\":\"application/vnd.oci.image.manifest.v1+json\",\"digest\":\"sha256:$mdig\",\"size\":${#manifest},\"annotations\":{\"org.opencontainers.image.ref.name\":\"bench\"}}]}" >"$WORK/layout/index.json"
bytes=$(du -cb "$blobs"/* | tail -1 | cut -f1)

"$FERRY" image --store "$WORK/store" import --name bench "oci:$WORK/layout:bench" >/dev/null

start_registry() {
    PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
    rm -rf "$WORK/registry-data"
    cat >"$WORK/registry.yml" <<EOF
version: 0.1
log:
  level: error
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: $WORK/registry-data
http:
  addr: 127.0.0.1:$PORT
EOF
    docker-registry serve "$WORK/registry.yml" >/dev/null 2>"$WORK/registry.log" &
    REG_PID=$!
    for _ in $(seq 200); do
        (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null && return 0
        sleep 0.05
    done
    echo "registry bench: docker-registry did not start"; cat "$WORK/registry.log"; exit 1
}

now_us() { local t=${EPOCHREALTIME/./}; echo "$t"; }
# time_us CMD...: run it (output hidden), print its wall time in µs.
time_us() {
    local t0 t1
    t0=$(now_us)
    "$@" >/dev/null 2>"$WORK/cmd.err" || { echo "registry bench: failed: $*" >&2; cat "$WORK/cmd.err" >&2; exit 1; }
    t1=$(now_us)
    echo $((t1 - t0))
}

ferry_push() { rm -rf "$WORK/store/pushed"; "$FERRY" image --store "$WORK/store" push bench "127.0.0.1:$PORT/ferry/bench:v1"; }
skopeo_push() { skopeo copy -q --dest-tls-verify=false "oci:$WORK/layout:bench" "docker://127.0.0.1:$PORT/skopeo/bench:v1"; }
ferry_pull() {
    rm -rf "$WORK/pull-store"
    "$FERRY" image --store "$WORK/pull-store" pull --insecure "127.0.0.1:$PORT/ferry/bench:v1"
}
skopeo_pull() {
    rm -rf "$WORK/pulled"
    skopeo copy -q --src-tls-verify=false "docker://127.0.0.1:$PORT/ferry/bench:v1" "oci:$WORK/pulled:v1"
}

declare -A times
for r in $(seq "$N"); do
    start_registry
    if [ $((r % 2)) -eq 1 ]; then order="ferry skopeo"; else order="skopeo ferry"; fi
    for who in $order; do times[push_$who]+="$(time_us "${who}_push") "; done
    for who in $order; do times[pull_$who]+="$(time_us "${who}_pull") "; done
    stop_registry
    sync
done

median() { tr ' ' '\n' | grep -v '^$' | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
echo "== $((bytes / 1000000)) MB image, $LAYERS layers, median of $N rounds (fresh registry each)"
printf '%-6s %-7s %10s %10s\n' "" "" "seconds" "MB/s"
for op in push pull; do
    for who in ferry skopeo; do
        us=$(echo "${times[${op}_$who]}" | median)
        printf '%-6s %-7s %10.2f %10.1f\n' "$op" "$who" "$(echo "$us / 1000000" | bc -l)" "$(echo "$bytes / $us" | bc -l)"
        eval "${op}_$who=$us"
    done
done
for op in push pull; do
    f=${op}_ferry s=${op}_skopeo
    printf '%s throughput ferry/skopeo: %.2fx (target >= 0.8)\n' "$op" "$(echo "${!s} / ${!f}" | bc -l)"
done
