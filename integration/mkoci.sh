#!/usr/bin/env bash
# Make an OCI image archive (an image layout in a tar, what `ctr image import`
# and `podman load` read) from a root filesystem directory, without a registry.
#
#   integration/mkoci.sh ROOTFS_DIR OUT.tar [NAME [CMD_JSON]]
#
# NAME defaults to localhost/busybox:latest, CMD_JSON (the image's Cmd) to
# '["sh"]'. One uncompressed layer with the whole rootfs (owned by root), a
# config with that Cmd and a PATH, for the host's platform (linux/amd64 here).
set -euo pipefail

if [ $# -lt 2 ]; then
    echo "usage: $0 ROOTFS_DIR OUT.tar [NAME [CMD_JSON]]" >&2
    exit 2
fi
rootfs=$1
out=$2
name=${3:-localhost/busybox:latest}
cmd=${4:-'["sh"]'}
command -v jq >/dev/null || { echo "mkoci: jq is needed (scripts/deps.sh installs it)" >&2; exit 1; }

case $(uname -m) in
    x86_64) arch=amd64 ;;
    aarch64) arch=arm64 ;;
    armv7l) arch=arm ;;
    *) arch=$(uname -m) ;;
esac

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
mkdir -p "$tmp/blobs/sha256"

# put FILE: move FILE into the blob store; prints "DIGEST SIZE"
put() {
    local d s
    d=$(sha256sum "$1" | cut -d' ' -f1)
    s=$(stat -c %s "$1")
    mv "$1" "$tmp/blobs/sha256/$d"
    echo "$d $s"
}

tar -C "$rootfs" --numeric-owner --owner=0 --group=0 --sort=name --exclude=./.mkrootfs-done \
    -cf "$tmp/layer" .
read -r ldig lsize < <(put "$tmp/layer")

jq -cn --arg arch "$arch" --arg diff "sha256:$ldig" --argjson cmd "$cmd" '{
    architecture: $arch, os: "linux",
    config: {
        Cmd: $cmd,
        Env: ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"],
        WorkingDir: "/"
    },
    rootfs: { type: "layers", diff_ids: [$diff] },
    history: [{ created_by: "integration/mkoci.sh" }]
}' >"$tmp/config"
read -r cdig csize < <(put "$tmp/config")

jq -cn --arg c "sha256:$cdig" --argjson cs "$csize" --arg l "sha256:$ldig" --argjson ls "$lsize" '{
    schemaVersion: 2,
    mediaType: "application/vnd.oci.image.manifest.v1+json",
    config: { mediaType: "application/vnd.oci.image.config.v1+json", digest: $c, size: $cs },
    layers: [{ mediaType: "application/vnd.oci.image.layer.v1.tar", digest: $l, size: $ls }]
}' >"$tmp/manifest"
read -r mdig msize < <(put "$tmp/manifest")

jq -cn --arg m "sha256:$mdig" --argjson ms "$msize" --arg name "$name" --arg arch "$arch" '{
    schemaVersion: 2,
    mediaType: "application/vnd.oci.image.index.v1+json",
    manifests: [{
        mediaType: "application/vnd.oci.image.manifest.v1+json",
        digest: $m, size: $ms,
        platform: { architecture: $arch, os: "linux" },
        annotations: {
            "io.containerd.image.name": $name,
            "org.opencontainers.image.ref.name": ($name | sub("^.*:"; ""))
        }
    }]
}' >"$tmp/index.json"
echo '{"imageLayoutVersion":"1.0.0"}' >"$tmp/oci-layout"

tar -C "$tmp" --numeric-owner --owner=0 --group=0 -cf "$out" oci-layout index.json blobs
