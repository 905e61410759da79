#!/usr/bin/env bash
# Unpack benchmark: `ferry image import` (verify + extract every layer, in
# parallel) vs `umoci raw unpack --rootless` vs plain `tar -xzf` of each
# layer in turn. Same input (an OCI layout of gzip layers made from host
# directories), same disk, one run each, as the unprivileged test user
# (rootless, like umoci's --rootless) when there is one.
#
#   bench/unpack.sh
#   SRCS="/usr/include /usr/bin" FERRY=target/release/ferry bench/unpack.sh
set -euo pipefail
export LC_ALL=C

FERRY=$(realpath "${FERRY:-target/release/ferry}")
WORK=${WORK:-/var/tmp/ferry-unpack-bench}
SRCS=${SRCS:-"/usr/include /usr/lib/python3.11 /usr/share/perl /usr/share/locale /usr/bin"}
RUN_AS=${RUN_AS:-ferrytest}

for tool in umoci jq sha256sum gzip; do
    command -v "$tool" >/dev/null || { echo "unpack bench: $tool is missing (apt-get install umoci jq)"; exit 1; }
done
[ -x "$FERRY" ] || { echo "unpack bench: build ferry first (cargo build --release)"; exit 1; }

rm -rf "$WORK"
mkdir -p "$WORK/layout/blobs/sha256"
blobs=$WORK/layout/blobs/sha256
layers=()
diffs=()
echo "== building the image from: $SRCS"
for d in $SRCS; do
    [ -d "$d" ] || continue
    tar -C / --sort=name -cf "$WORK/layer.tar" "${d#/}" 2>/dev/null || true
    diff=$(sha256sum <"$WORK/layer.tar" | cut -d' ' -f1)
    gzip -n -6 <"$WORK/layer.tar" >"$WORK/layer.tar.gz"
    dig=$(sha256sum <"$WORK/layer.tar.gz" | cut -d' ' -f1)
    size=$(stat -c %s "$WORK/layer.tar.gz")
    mv "$WORK/layer.tar.gz" "$blobs/$dig"
    layers+=("{\"mediaType\":\"application/vnd.oci.image.layer.v1.tar+gzip\",\"digest\":\"sha256:$dig\",\"size\":$size}")
    diffs+=("\"sha256:$diff\"")
done
rm -f "$WORK/layer.tar"
[ ${#layers[@]} -gt 0 ] || { echo "unpack bench: none of $SRCS exists"; exit 1; }
config="{\"architecture\":\"amd64\",\"os\":\"linux\",\"config\":{\"Cmd\":[\"sh\"]},\"rootfs\":{\"type\":\"layers\",\"diff_ids\":[$(IFS=,; echo "${diffs[*]}")]}}"
printf '%s' "$config" >"$WORK/c"
cdig=$(sha256sum <"$WORK/c" | cut -d' ' -f1)
mv "$WORK/c" "$blobs/$cdig"
manifest="{\"schemaVersion\":2,\"mediaType\":\"application/vnd.oci.image.manifest.v1+json\",\"config\":{\"mediaType\":\"application/vnd.oci.image.config.v1+json\",\"digest\":\"sha256:$cdig\",\"size\":${#config}},\"layers\":[$(IFS=,; echo "${layers[*]}")]}"
printf '%s' "$manifest" >"$WORK/m"
mdig=$(sha256sum <"$WORK/m" | cut -d' ' -f1)
mv "$WORK/m" "$blobs/$mdig"
echo "{\"schemaVersion\":2,\"manifests\":[{\"mediaType\":\"application/vnd.oci.image.manifest.v1+json\",\"digest\":\"sha256:$mdig\",\"size\":${#manifest},\"annotations\":{\"org.opencontainers.image.ref.name\":\"bench\"}}]}" >"$WORK/layout/index.json"
echo '{"imageLayoutVersion":"1.0.0"}' >"$WORK/layout/oci-layout"
compressed=$(du -sb "$blobs" | cut -f1)
echo "   ${#layers[@]} layers, $((compressed / 1048576)) MiB compressed"

as_user=()
if [ "$(id -u)" = 0 ] && id "$RUN_AS" >/dev/null 2>&1; then
    chown -R "$RUN_AS:" "$WORK"
    chmod 755 "$WORK"
    as_user=(setpriv --reuid="$RUN_AS" --regid="$RUN_AS" --init-groups env HOME=/tmp XDG_RUNTIME_DIR=)
fi
mkdir -p "$WORK/tar-rootfs"
[ ${#as_user[@]} -gt 0 ] && chown "$RUN_AS:" "$WORK/tar-rootfs"

untar() {
    for l in "$@"; do
        tar -xzf "$l" -C "$WORK/tar-rootfs" --no-same-owner
    done
}
export -f untar
export WORK

declare -A secs
timed() {
    local name=$1
    shift
    sync
    local t0=$EPOCHREALTIME
    if ! "${as_user[@]}" "$@" >"$WORK/$name.log" 2>&1; then
        echo "   $name failed:"
        tail -5 "$WORK/$name.log"
        secs[$name]=n/a
        return
    fi
    local t1=$EPOCHREALTIME
    secs[$name]=$(echo "$t1 - $t0" | bc -l)
    printf '   %-6s %8.2f s\n' "$name" "${secs[$name]}"
}

layer_files=()
for l in "${layers[@]}"; do
    d=$(echo "$l" | jq -r .digest | cut -d: -f2)
    layer_files+=("$blobs/$d")
done

echo "== unpacking (one run each)"
timed tar bash -c 'untar "$@"' untar "${layer_files[@]}"
timed umoci umoci raw unpack --rootless --image "$WORK/layout:bench" "$WORK/umoci-rootfs"
timed ferry "$FERRY" image --store "$WORK/store" import --name bench "oci:$WORK/layout:bench"

f=${secs[ferry]}
echo "== ferry / tar: $( [ "$f" != n/a ] && [ "${secs[tar]}" != n/a ] && printf '%.2f' "$(echo "$f / ${secs[tar]}" | bc -l)" || echo n/a)" \
     " ferry / umoci: $( [ "$f" != n/a ] && [ "${secs[umoci]}" != n/a ] && printf '%.2f' "$(echo "$f / ${secs[umoci]}" | bc -l)" || echo n/a)"
echo "   (target: below 1.2 against tar, below 1 against umoci)"
chmod -R u+rwx "$WORK" 2>/dev/null || true
rm -rf "$WORK"
