#!/bin/bash
echo "INFO boot test"
journalctl -b -o short-monotonic --no-pager > /mnt/ferry/journal.txt 2>&1
systemctl list-units --no-pager > /mnt/ferry/units.txt 2>&1
echo "0 passed, 0 failed"
