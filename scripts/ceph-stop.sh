#!/usr/bin/env bash
# Stop a cluster started by scripts/ceph-start.sh: only the PIDs recorded in
# DIR/pids (checked to still be ceph daemons), radosgw (if any) before OSD before
# mon; then remove DIR.
#
# Usage: scripts/ceph-stop.sh [DIR]     DIR defaults to /tmp/ceph-imagestore
#   CEPH_KEEP_DIR=1    keep DIR (and its logs) after stopping
#   CEPH_STOP_GRACE=3  seconds between SIGTERM and SIGKILL (0: SIGKILL at once)
set -uo pipefail

DIR=${1:-/tmp/ceph-imagestore}
GRACE=${CEPH_STOP_GRACE:-3}
[ -d "$DIR" ] || { echo "[ceph-stop] $DIR does not exist; nothing to stop" >&2; exit 0; }
if [ ! -f "$DIR/ceph.conf" ] && [ ! -d "$DIR/pids" ]; then
    echo "[ceph-stop] $DIR is not a ceph-start.sh directory; not touching it" >&2
    exit 1
fi

# alive and still a ceph daemon (a recycled pid is left alone); zombies count as gone
is_ours() {
    local pid comm state rest
    read -r pid comm state rest <"/proc/$1/stat" 2>/dev/null || return 1
    [ "$state" = Z ] && return 1
    case "$comm" in "(ceph-mon)" | "(ceph-osd)" | "(radosgw)") return 0 ;; *) return 1 ;; esac
}

stop_pid() {
    local pid=$1 i
    if [ "$GRACE" != 0 ]; then
        kill -TERM "$pid" 2>/dev/null
        for ((i = 0; i < GRACE * 20; i++)); do is_ours "$pid" || return 0; sleep 0.05; done
    fi
    kill -KILL "$pid" 2>/dev/null
    for ((i = 0; i < 100; i++)); do is_ours "$pid" || return 0; sleep 0.05; done
    echo "[ceph-stop] pid $pid did not exit" >&2
}

n=0
# radosgw, then the OSD: an OSD whose mon is gone waits 5 s for a shutdown ack
for f in "$DIR"/pids/rgw.* "$DIR"/pids/osd.* "$DIR"/pids/mon.*; do
    [ -f "$f" ] || continue
    pid=$(cat "$f")
    if [[ "$pid" =~ ^[0-9]+$ ]] && is_ours "$pid"; then
        stop_pid "$pid"
        n=$((n + 1))
    fi
    rm -f "$f"
done
[ "${CEPH_KEEP_DIR:-0}" = 1 ] || rm -rf "$DIR"
echo "[ceph-stop] stopped $n daemon(s) in $DIR" >&2
