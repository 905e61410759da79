#!/bin/bash
# Started in the guest by ferry-checks.service (its output is the serial
# console): run the checks (or the bench) named in /mnt/ferry/which and
# mark the start and the end for integration/systemd.sh.
cd /mnt/ferry || exit 1
echo "FERRY-SD: up after $(cut -d' ' -f1 /proc/uptime) s: $(uname -r), systemd $(systemctl --version | awk 'NR==1 {print $2}'), $(stat -fc %T /sys/fs/cgroup) on /sys/fs/cgroup, state $(systemctl is-system-running)"
which=$(cat /mnt/ferry/which 2>/dev/null || echo checks)
case $which in
    bench) bash /mnt/ferry/systemd-guest.sh ;;
    *) bash /mnt/ferry/checks.sh ;;
esac
echo "FERRY-SD: end after $(cut -d' ' -f1 /proc/uptime) s"
