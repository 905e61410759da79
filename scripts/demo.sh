#!/usr/bin/env bash
# Run a busybox container with ferry, rootless, as the unprivileged user
# ferrytest. Called by `make demo` (after scripts/deps.sh and the build).
set -euo pipefail

repo=$(cd "$(dirname "$(readlink -f "$0")")/.." && pwd)
FERRY=${FERRY:-$repo/target/release/ferry}
USER_=${FERRY_TEST_USER:-ferrytest}

step() { printf '\n==> %s\n' "$*"; }

if [ ! -x "$FERRY" ]; then
    echo "demo: $FERRY not built (make build)" >&2
    exit 1
fi
home=$(getent passwd "$USER_" | cut -d: -f6)

# Everything lives under /tmp so that the unprivileged user can reach it.
demo=$(mktemp -d /tmp/ferry-demo.XXXXXX)
trap 'rm -rf "$demo"' EXIT
chmod 0755 "$demo"
bundle=$demo/bundle
mkdir "$bundle"
cp "$FERRY" "$demo/ferry"
chmod 0755 "$demo/ferry"

as_user() {
    setpriv --reuid="$USER_" --regid="$USER_" --init-groups \
        env XDG_RUNTIME_DIR= HOME="$home" USER="$USER_" LOGNAME="$USER_" "$@"
}

step "building a busybox rootfs in $bundle/rootfs"
bash "$repo/scripts/mkrootfs.sh" "$bundle/rootfs"
chown "$USER_:" "$bundle"

step "as $USER_: ferry spec --rootless --bundle $bundle"
(cd "$bundle" && as_user "$demo/ferry" spec --rootless --bundle "$bundle")

# shellcheck disable=SC2016 # expanded inside the container
script='echo "hostname: $(hostname)"
echo "id:       $(id)"
echo "uid_map:  $(cat /proc/self/uid_map)"
echo "pid:      $$"
echo "ls /:     $(ls / | tr "\n" " ")"'
step "setting process.args to: sh -c '...' (hostname, id, uid_map, pid, ls /) and terminal=false"
jq --arg s "$script" '.process.terminal = false | .process.args = ["sh", "-c", $s]' \
    "$bundle/config.json" >"$demo/config.json"
cat "$demo/config.json" >"$bundle/config.json"

id=demo-$$
step "as $USER_ (uid $(id -u "$USER_")): cd $bundle && ferry run $id"
cd "$bundle"
set +e
as_user "$demo/ferry" run "$id"
rc=$?
set -e
step "container exited with status $rc"
exit "$rc"
