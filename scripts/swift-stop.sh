#!/usr/bin/env bash
# Stop a Swift SAIO started by scripts/swift-start.sh: only the processes recorded
# in DIR/pids, each checked to be the same process (PID, start time and name), so a
# reused PID is never signalled; then remove DIR. Zombies count as stopped.
#
# Usage: scripts/swift-stop.sh [DIR]     DIR defaults to /tmp/swift-imagestore
#   SWIFT_KEEP_DIR=1     keep DIR (logs, data) after stopping
#   SWIFT_STOP_GRACE=5   seconds between SIGTERM and SIGKILL
# DIR is removed only if it carries the marker file swift-start.sh writes.
set -Eeuo pipefail

DIR=${1:-/tmp/swift-imagestore}
GRACE=${SWIFT_STOP_GRACE:-5}
MARKER=.imagestore-swift
[[ "$GRACE" =~ ^[0-9]+$ ]] || { echo "[swift-stop] bad SWIFT_STOP_GRACE '$GRACE'" >&2; exit 1; }
[ -d "$DIR" ] || { echo "[swift-stop] $DIR does not exist; nothing to stop" >&2; exit 0; }
if [ ! -e "$DIR/$MARKER" ]; then
    echo "[swift-stop] $DIR was not made by swift-start.sh; not touching it" >&2
    exit 1
fi

# alive, not a zombie, and still the process that was recorded (START, COMM)
is_ours() {  # PID START [COMM]
    local s f
    s=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
    read -r -a f <<<"${s##*) }"
    [ "${f[0]}" != Z ] && [ "${f[19]}" = "$2" ] || return 1
    [ -z "${3:-}" ] || [ "$(cat "/proc/$1/comm" 2>/dev/null)" = "$3" ]
}

pids=() starts=() comms=()
for f in "$DIR"/pids/*; do
    [ -f "$f" ] || continue
    read -r pid start comm <"$f" || true
    if [[ "${pid:-}" =~ ^[0-9]+$ ]] && is_ours "$pid" "${start:-}" "${comm:-}"; then
        kill -TERM "$pid" 2>/dev/null || true
        kill -CONT "$pid" 2>/dev/null || true   # a paused (SIGSTOPped) server must run to exit
        pids+=("$pid") starts+=("$start") comms+=("${comm:-}")
    fi
done

left=("${!pids[@]}")
for ((t = 0; t < GRACE * 20 && ${#left[@]} > 0; t++)); do
    sleep 0.05
    still=()
    for i in "${left[@]}"; do is_ours "${pids[$i]}" "${starts[$i]}" "${comms[$i]}" && still+=("$i"); done
    left=("${still[@]}")
done
for i in "${left[@]}"; do
    echo "[swift-stop] pid ${pids[$i]} ignored SIGTERM for ${GRACE}s; SIGKILL" >&2
    kill -KILL "${pids[$i]}" 2>/dev/null || true
done
for i in "${left[@]}"; do
    for ((t = 0; t < 100; t++)); do is_ours "${pids[$i]}" "${starts[$i]}" "${comms[$i]}" || break; sleep 0.05; done
done
rm -f "$DIR"/pids/*

if [ "${SWIFT_KEEP_DIR:-0}" = 1 ]; then
    echo "[swift-stop] stopped ${#pids[@]} process(es) (${pids[*]:-}); kept $DIR" >&2
else
    rm -rf "$DIR"
    echo "[swift-stop] stopped ${#pids[@]} process(es) (${pids[*]:-}); removed $DIR" >&2
fi
