#!/bin/bash
# Run in the systemd guest (bench/systemd.sh): N interleaved create + start +
# delete cycles of /bin/true per runtime (ferry, runc, crun) and cgroup driver
# (systemd: --systemd-cgroup and a slice:prefix:name path; cgroupfs: a
# /bench/ID path), then mean times and the ratios to ferry.
set -u
export PATH=/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
S=/mnt/ferry
N=$(cat $S/bench-n 2>/dev/null || echo 20)
W=/var/lib/ferry-bench
mkdir -p $W
install -m 0755 $S/ferry /usr/local/bin/ferry
cp -a $S/rootfs $W/rootfs
now_us() { local t=${EPOCHREALTIME/./}; echo "$t"; }
declare -A BIN=([ferry]=/usr/local/bin/ferry [runc]=/usr/bin/runc [crun]=/usr/bin/crun)
mkbundle() {
    mkdir -p $W/$1
    # runc refuses a symlinked rootfs: a copy per bundle.
    (cd $W/$1 && runc spec && cp -a $W/rootfs rootfs)
    jq --arg p "$2" '.process.args = ["/bin/true"] | .process.terminal = false | .linux.cgroupsPath = $p' \
        $W/$1/config.json >$W/$1/c.json && mv $W/$1/c.json $W/$1/config.json
}
mkbundle systemd 'system.slice:bench:X'
mkbundle cgroupfs '/bench/X'
# cycle RUNTIME DRIVER I: one create/start/delete, prints microseconds
cycle() {
    local rt=$1 drv=$2 id=b$3 flag=() t0 t1
    [ "$drv" = systemd ] && flag=(--systemd-cgroup)
    local b=$W/$drv
    local path=/bench/$id
    [ "$drv" = systemd ] && path=system.slice:bench:$id
    jq --arg p "$path" '.linux.cgroupsPath = $p' $b/config.json >$b/c.json && mv $b/c.json $b/config.json
    t0=$(now_us)
    "${BIN[$rt]}" --root $W/root-$rt "${flag[@]}" create --bundle $b $id >/dev/null 2>$W/err &&
        "${BIN[$rt]}" --root $W/root-$rt "${flag[@]}" start $id >/dev/null 2>>$W/err || { echo fail; return; }
    for _ in $(seq 1 200); do
        "${BIN[$rt]}" --root $W/root-$rt state $id 2>/dev/null | grep -q '"stopped"' && break
        sleep 0.01
    done
    "${BIN[$rt]}" --root $W/root-$rt "${flag[@]}" delete $id >/dev/null 2>>$W/err || { echo fail; return; }
    t1=$(now_us)
    echo $((t1 - t0))
}
declare -A SUM CNT
for drv in systemd cgroupfs; do
    for rt in ferry runc crun; do SUM[$rt-$drv]=0; CNT[$rt-$drv]=0; done
done
for i in $(seq 1 "$N"); do
    for drv in systemd cgroupfs; do
        order="ferry runc crun"
        [ $((i % 2)) = 0 ] && order="crun runc ferry"
        for rt in $order; do
            us=$(cycle $rt $drv $i-$rt)
            [ "$us" = fail ] && { echo "INFO $rt $drv cycle $i failed: $(tail -n 2 $W/err | tr '\n' ' ')"; continue; }
            [ "$i" -le 1 ] && continue # warm-up
            SUM[$rt-$drv]=$((SUM[$rt-$drv] + us))
            CNT[$rt-$drv]=$((CNT[$rt-$drv] + 1))
        done
    done
done
echo "BENCH create+start+delete of /bin/true, mean of $((N - 1)) cycles (TCG guest, systemd $(systemctl --version | awk 'NR==1 {print $2}'), cgroup v2)"
for drv in systemd cgroupfs; do
    f=0
    [ "${CNT[ferry-$drv]}" -gt 0 ] && f=$((SUM[ferry-$drv] / CNT[ferry-$drv]))
    line="BENCH $drv driver:"
    for rt in ferry runc crun; do
        c=${CNT[$rt-$drv]}
        if [ "$c" -gt 0 ]; then
            m=$((SUM[$rt-$drv] / c))
            r=n/a
            [ "$f" -gt 0 ] && r=$(echo "scale=2; $m / $f" | bc)
            line="$line $rt $((m / 1000)) ms (x$r)"
        else
            line="$line $rt n/a"
        fi
    done
    echo "$line"
done
f1=${CNT[ferry-systemd]}; f2=${CNT[ferry-cgroupfs]}
if [ "$f1" -gt 0 ] && [ "$f2" -gt 0 ]; then
    echo "BENCH ferry: systemd driver / cgroupfs driver = $(echo "scale=2; (${SUM[ferry-systemd]} / $f1) / (${SUM[ferry-cgroupfs]} / $f2)" | bc)"
fi
echo "0 passed, 0 failed"
