#!/usr/bin/env bash
# Stop a Glance started by scripts/glance-start.sh: only the processes recorded in
# DIR/pids (gunicorn's master, then any worker left), each checked to be the same
# process (PID and start time), so a reused PID is never signalled. Zombies count
# as stopped. DIR and its data are kept, so glance-start.sh DIR can start it again
# on the same database; GLANCE_REMOVE_DIR=1 removes DIR afterwards.
#
# Usage: scripts/glance-stop.sh DIR
#   GLANCE_STOP_GRACE=10   seconds between SIGTERM and SIGKILL
#   GLANCE_REMOVE_DIR=1    remove DIR once stopped (only a DIR glance-start.sh made)
set -Eeuo pipefail

DIR=${1:?usage: glance-stop.sh DIR}
GRACE=${GLANCE_STOP_GRACE:-10}
MARKER=.imagestore-glance
[[ "$GRACE" =~ ^[0-9]+$ ]] || { echo "[glance-stop] bad GLANCE_STOP_GRACE '$GRACE'" >&2; exit 1; }
[ -d "$DIR" ] || { echo "[glance-stop] $DIR does not exist; nothing to stop" >&2; exit 0; }
if [ ! -e "$DIR/$MARKER" ]; then
    echo "[glance-stop] $DIR was not made by glance-start.sh; not touching it" >&2
    exit 1
fi

is_ours() {  # PID START
    local s f
    s=$(cat "/proc/$1/stat" 2>/dev/null) || return 1  # $(<missing) would end the script
    read -r -a f <<<"${s##*) }"
    [ "${f[0]}" != Z ] && [ "${f[19]}" = "$2" ]
}

# the master first: it stops its workers itself; a worker left over is signalled after
pids=() starts=()
for f in "$DIR"/pids/master "$DIR"/pids/worker.*; do
    [ -f "$f" ] || continue
    read -r pid start _ <"$f" || true
    if [[ "${pid:-}" =~ ^[0-9]+$ ]] && is_ours "$pid" "${start:-}"; then
        pids+=("$pid") starts+=("$start")
    fi
done
if [ "${#pids[@]}" -gt 0 ]; then
    kill -TERM "${pids[0]}" 2>/dev/null || true
fi

left=("${!pids[@]}")
for ((t = 0; t < GRACE * 20 && ${#left[@]} > 0; t++)); do
    sleep 0.05
    still=()
    for i in "${left[@]}"; do is_ours "${pids[$i]}" "${starts[$i]}" && still+=("$i"); done
    left=("${still[@]}")
    # the master is gone: its workers should follow; TERM those that did not
    if [ "$t" = 40 ]; then for i in "${left[@]}"; do kill -TERM "${pids[$i]}" 2>/dev/null || true; done; fi
done
for i in "${left[@]}"; do
    echo "[glance-stop] pid ${pids[$i]} ignored SIGTERM for ${GRACE}s; SIGKILL" >&2
    kill -KILL "${pids[$i]}" 2>/dev/null || true
done
for i in "${left[@]}"; do
    for ((t = 0; t < 100; t++)); do is_ours "${pids[$i]}" "${starts[$i]}" || break; sleep 0.05; done
done
rm -f "$DIR"/pids/*

if [ "${GLANCE_REMOVE_DIR:-0}" = 1 ]; then
    rm -rf "$DIR"
    echo "[glance-stop] stopped ${#pids[@]} process(es) (${pids[*]:-}); removed $DIR" >&2
else
    echo "[glance-stop] stopped ${#pids[@]} process(es) (${pids[*]:-}); kept $DIR" >&2
fi
