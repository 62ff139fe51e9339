#!/usr/bin/env bash
# Stop the radosgw that scripts/ceph-rgw-start.sh started in a cluster directory,
# and nothing else: only the PIDs in DIR/pids/rgw.* that are still radosgw
# processes. The cluster keeps running; the CEPH_RGW_* exports leave DIR/env.
# (scripts/ceph-stop.sh DIR stops radosgw together with the cluster.)
#
# Usage: scripts/ceph-rgw-stop.sh DIR
#   CEPH_STOP_GRACE=3  seconds between SIGTERM and SIGKILL (0: SIGKILL at once)
set -uo pipefail

[ $# -ge 1 ] || { echo "usage: $0 DIR" >&2; exit 2; }
DIR=$1
GRACE=${CEPH_STOP_GRACE:-3}
[ -d "$DIR/pids" ] || { echo "[ceph-rgw-stop] $DIR/pids does not exist; nothing to stop" >&2; exit 0; }

is_rgw() {  # alive (zombies count as gone) and still radosgw: a recycled pid is left alone
    local pid comm state rest
    read -r pid comm state rest <"/proc/$1/stat" 2>/dev/null || return 1
    [ "$state" != Z ] && [ "$comm" = "(radosgw)" ]
}

n=0
for f in "$DIR"/pids/rgw.*; do
    [ -f "$f" ] || continue
    pid=$(cat "$f")
    if [[ "$pid" =~ ^[0-9]+$ ]] && is_rgw "$pid"; then
        if [ "$GRACE" != 0 ]; then
            kill -TERM "$pid" 2>/dev/null
            for ((i = 0; i < GRACE * 20; i++)); do is_rgw "$pid" || break; sleep 0.05; done
        fi
        if is_rgw "$pid"; then
            kill -KILL "$pid" 2>/dev/null
            for ((i = 0; i < 100; i++)); do is_rgw "$pid" || break; sleep 0.05; done
        fi
        is_rgw "$pid" && echo "[ceph-rgw-stop] pid $pid did not exit" >&2
        n=$((n + 1))
    fi
    rm -f "$f"
done
if [ -f "$DIR/env" ] && grep -q '^export CEPH_RGW_' "$DIR/env"; then
    { grep -v '^export CEPH_RGW_' "$DIR/env" || true; } >"$DIR/env.new" && mv "$DIR/env.new" "$DIR/env"
fi
echo "[ceph-rgw-stop] stopped $n radosgw in $DIR" >&2
