#!/usr/bin/env bash
# The lifecycle benchmark on a systemd host: create + start + delete of
# /bin/true, ferry vs runc vs crun, with the systemd cgroup driver
# (--systemd-cgroup, a transient scope per container made over D-Bus) and
# with the cgroupfs driver, inside the systemd guest of integration/systemd.sh
# (Debian 12, systemd 252, pure cgroup v2; qemu TCG, so absolute times are
# those of an emulated CPU: read the ratios).
#
#   bench/systemd.sh                (N=20 cycles per runtime and driver)
#   N=50 FERRY=/path/to/ferry bench/systemd.sh
set -euo pipefail
repo=$(cd "$(dirname "$(readlink -f "$0")")/.." && pwd)
export CHECKS=bench BENCH_N=${N:-20}
out=$(bash "$repo/integration/systemd.sh")
printf '%s\n' "$out" | grep -E '^(BENCH|INFO|FAIL)' || true
