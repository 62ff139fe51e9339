#!/usr/bin/env bash
# Start radosgw (S3, plus Swift v1 auth) on a running cluster made by
# scripts/ceph-start.sh, for imagestore's S3 tests: beast frontend on 127.0.0.1
# only, key client.rgw.<id>, two S3 users with generated keys (the second one for
# permission tests) and a Swift subuser. The cluster itself is not restarted and
# its ceph.conf is not touched: every radosgw setting is given on the command line.
#
# Usage: scripts/ceph-rgw-start.sh DIR     DIR: a cluster directory of ceph-start.sh
# Environment (all optional):
#   CEPH_RGW_PORT=7480         HTTP port on 127.0.0.1; a busy port is refused
#   CEPH_RGW_ID=a              daemon name client.rgw.<id>
#   CEPH_SKIP_APT=1            never touch apt (radosgw must already be installed)
#   CEPH_START_TIMEOUT=60      seconds to wait for each step that waits
# Output: the CEPH_RGW_* exports are added to DIR/env (and printed), the PID goes
# to DIR/pids/rgw.<id> (scripts/ceph-stop.sh DIR stops it with the cluster, or
# scripts/ceph-rgw-stop.sh DIR alone), the log to DIR/log/client.rgw.<id>.log.
# Exports: CEPH_RGW_ENDPOINT, CEPH_RGW_REGION, CEPH_RGW_USER, CEPH_RGW_ACCESS_KEY,
# CEPH_RGW_SECRET_KEY, CEPH_RGW_ALT_USER, CEPH_RGW_ALT_ACCESS_KEY,
# CEPH_RGW_ALT_SECRET_KEY, CEPH_RGW_SWIFT_AUTH_URL, CEPH_RGW_SWIFT_USER,
# CEPH_RGW_SWIFT_KEY. The keys are random, made at the first start on a cluster (kept
# in DIR/rgw/users.env, so a restarted radosgw has the same users and keys).
set -Eeuo pipefail

[ $# -ge 1 ] || { echo "usage: $0 DIR" >&2; exit 2; }
DIR=$1
PORT=${CEPH_RGW_PORT:-7480}
ID=${CEPH_RGW_ID:-a}
TIMEOUT=${CEPH_START_TIMEOUT:-60}
NAME=client.rgw.$ID

t0=$EPOCHREALTIME
log() { awk -v a="$t0" -v b="$EPOCHREALTIME" -v m="$*" 'BEGIN{printf "[ceph-rgw-start %5.1fs] %s\n", b-a, m}' >&2; }
die() { echo "[ceph-rgw-start] $*" >&2; exit 1; }

[[ "$PORT" =~ ^[0-9]+$ ]] || die "CEPH_RGW_PORT=$PORT is not a port number"
[[ "$ID" =~ ^[A-Za-z0-9_-]+$ ]] || die "CEPH_RGW_ID=$ID: use letters, digits, - and _ only"
if [ ! -f "$DIR/ceph.conf" ] || [ ! -f "$DIR/env" ] || [ ! -d "$DIR/pids" ]; then
    die "$DIR is not a cluster directory of ceph-start.sh (no ceph.conf, env or pids/)"
fi
DIR=$(cd "$DIR" && pwd)
CONF=$DIR/ceph.conf

# ------------------------------------------------------------------ package
install_radosgw() {
    local aptlog
    dpkg-query -W -f='${Status}' radosgw 2>/dev/null | grep -q 'install ok installed' && return 0
    command -v apt-get >/dev/null || die "radosgw is not installed and there is no apt-get; install it or set CEPH_SKIP_APT=1"
    [ "$(id -u)" = 0 ] || die "radosgw is not installed; run as root or install it first (apt install radosgw)"
    log "installing: radosgw"
    export DEBIAN_FRONTEND=noninteractive
    local apt=(apt-get -q -o DPkg::Lock::Timeout=600)
    aptlog=$(mktemp)
    # update only when the lists do not know the package, or when the install fails once
    apt-cache show radosgw >/dev/null 2>&1 || "${apt[@]}" update >"$aptlog" 2>&1 || true
    if ! "${apt[@]}" install -y --no-install-recommends radosgw >>"$aptlog" 2>&1; then
        "${apt[@]}" update >>"$aptlog" 2>&1 || true
        "${apt[@]}" install -y --no-install-recommends radosgw >>"$aptlog" 2>&1 \
            || { tail -30 "$aptlog" >&2; rm -f "$aptlog"; die "apt-get install radosgw failed"; }
    fi
    rm -f "$aptlog"
    log "radosgw installed"
}
[ "${CEPH_SKIP_APT:-0}" = 1 ] || install_radosgw
for tool in radosgw radosgw-admin ceph; do
    command -v "$tool" >/dev/null || die "$tool not found (apt install radosgw)"
done

# ------------------------------------------------------------------ checks
alive() { [ -n "$1" ] && [ -r "/proc/$1/stat" ] && ! grep -q '^[0-9]* ([^)]*) Z' "/proc/$1/stat"; }
if [ -f "$DIR/pids/rgw.$ID" ] && alive "$(cat "$DIR/pids/rgw.$ID")"; then
    die "radosgw $NAME already runs in $DIR (pid $(cat "$DIR/pids/rgw.$ID")); stop it with ceph-rgw-stop.sh $DIR"
fi
alive "$(cat "$DIR/pids/mon.a" 2>/dev/null)" || die "the mon of $DIR is not running; start the cluster with ceph-start.sh"
port_busy() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
port_busy "$PORT" && die "127.0.0.1:$PORT is in use; set CEPH_RGW_PORT"

quiet() { local out; out=$("$@" 2>&1) || { echo "$out" >&2; return 1; }; }
C=(ceph -c "$CONF" --connect-timeout "$TIMEOUT")
A=(timeout "$TIMEOUT" radosgw-admin -c "$CONF")
mkdir -p "$DIR/rgw/$ID"
PIDFILE=$DIR/run/$NAME.pid
rm -f "$PIDFILE"

# on failure: kill the radosgw this run started (checked by name), keep DIR/log
on_error() {
    echo "[ceph-rgw-start] FAILED at line $1; log in $DIR/log/$NAME.log" >&2
    local f pid
    for f in "$DIR/pids/rgw.$ID" "$PIDFILE"; do
        [ -f "$f" ] || continue
        pid=$(cat "$f")
        [ "$(cat "/proc/$pid/comm" 2>/dev/null)" = radosgw ] && kill -KILL "$pid"
        rm -f "$f"
    done
    [ -f "$DIR/log/$NAME.log" ] && tail -20 "$DIR/log/$NAME.log" >&2
    return 0
}
trap 'on_error $LINENO' ERR

# ------------------------------------------------------------------ daemon
# 20 upper-case letters/digits and 40 base64 characters, like AWS keys
gen_access() { od -An -N20 -tu1 /dev/urandom | awk '{for (i = 1; i <= NF; i++) printf "%c", substr("ABCDEFGHIJKLMNOPQRSTUVWXYZ234567", $i % 32 + 1, 1)}'; }
gen_secret() { head -c 30 /dev/urandom | base64; }

quiet "${C[@]}" auth get-or-create "$NAME" mon 'allow rw' osd 'allow rwx' mgr 'allow rw' \
    -o "$DIR/rgw/$ID/keyring"
log "key $NAME created; starting radosgw on 127.0.0.1:$PORT"
# radosgw stays in the foreground until it has authenticated to the mon and made
# its pools (it would retry for 300 s), then forks
timeout "$TIMEOUT" radosgw -c "$CONF" -n "$NAME" \
    --keyring "$DIR/rgw/$ID/keyring" \
    --rgw-data "$DIR/rgw/$ID" \
    --rgw-frontends "beast endpoint=127.0.0.1:$PORT" \
    --rgw-thread-pool-size 32 \
    --rgw-gc-obj-min-wait 0 --rgw-gc-processor-period 10 \
    --log-file "$DIR/log/$NAME.log" \
    --pid-file "$PIDFILE" \
    --admin-socket "$DIR/run/ceph-$NAME.asok" \
    </dev/null >>"$DIR/log/$NAME.stderr.log" 2>&1 \
    || { cat "$DIR/log/$NAME.stderr.log" >&2; false; }
for ((i = 0; i < TIMEOUT * 20; i++)); do [ -s "$PIDFILE" ] && break; sleep 0.05; done
[ -s "$PIDFILE" ] || { echo "[ceph-rgw-start] radosgw wrote no pid file" >&2; false; }
cp "$PIDFILE" "$DIR/pids/rgw.$ID"
PID=$(cat "$PIDFILE")
log "radosgw started (pid $PID)"

# answers = an HTTP status line for an anonymous GET /, from our radosgw
rgw_answers() {
    ( exec 3<>"/dev/tcp/127.0.0.1/$PORT" || exit 1
      printf 'GET / HTTP/1.1\r\nHost: 127.0.0.1:%s\r\nConnection: close\r\n\r\n' "$PORT" >&3
      IFS= read -r -t 5 line <&3 && [[ $line == "HTTP/1.1 "* ]] ) 2>/dev/null
}
for ((i = 0; i < TIMEOUT * 10; i++)); do
    rgw_answers && break
    alive "$PID" || { echo "[ceph-rgw-start] radosgw exited during start-up" >&2; false; }
    sleep 0.1
done
rgw_answers || { echo "[ceph-rgw-start] radosgw does not answer on 127.0.0.1:$PORT" >&2; false; }
alive "$PID" || { echo "[ceph-rgw-start] radosgw exited (another server answers on $PORT?)" >&2; false; }
log "radosgw answers on 127.0.0.1:$PORT"

# ------------------------------------------------------------------ users
USERS=$DIR/rgw/users.env
if [ -f "$USERS" ]; then
    # shellcheck disable=SC1090
    . "$USERS"  # an earlier start on this cluster made the users: same keys
else
    ACCESS=$(gen_access) SECRET=$(gen_secret)
    ALT_ACCESS=$(gen_access) ALT_SECRET=$(gen_secret)
    SWIFT_KEY=$(gen_secret)
    (umask 077 && printf 'ACCESS=%s\nSECRET=%s\nALT_ACCESS=%s\nALT_SECRET=%s\nSWIFT_KEY=%s\n' \
        "$ACCESS" "$SECRET" "$ALT_ACCESS" "$ALT_SECRET" "$SWIFT_KEY" >"$USERS")
fi
ensure_user() {  # UID DISPLAY-NAME ACCESS SECRET [SWIFT-KEY]
    "${A[@]}" user info --uid="$1" >/dev/null 2>&1 && return 0
    quiet "${A[@]}" user create --uid="$1" --display-name="$2" --access-key="$3" --secret-key="$4"
    if [ -n "${5:-}" ]; then
        quiet "${A[@]}" subuser create --uid="$1" --subuser="$1:swift" --access=full --key-type=swift --secret="$5"
    fi
}
# each radosgw-admin call loads the zone (~0.1-0.3 s): the two users side by side
ensure_user imagestore "imagestore tests" "$ACCESS" "$SECRET" "$SWIFT_KEY" &
u1=$!
ensure_user imagestore-alt "imagestore tests (second user)" "$ALT_ACCESS" "$ALT_SECRET" &
u2=$!
wait "$u1"
wait "$u2"
log "users imagestore (+ Swift subuser imagestore:swift) and imagestore-alt ready"

ENDPOINT=http://127.0.0.1:$PORT
section=$(cat <<EOF
export CEPH_RGW_ENDPOINT=$ENDPOINT
export CEPH_RGW_REGION=us-east-1
export CEPH_RGW_USER=imagestore
export CEPH_RGW_ACCESS_KEY=$ACCESS
export CEPH_RGW_SECRET_KEY=$SECRET
export CEPH_RGW_ALT_USER=imagestore-alt
export CEPH_RGW_ALT_ACCESS_KEY=$ALT_ACCESS
export CEPH_RGW_ALT_SECRET_KEY=$ALT_SECRET
export CEPH_RGW_SWIFT_AUTH_URL=$ENDPOINT/auth/1.0
export CEPH_RGW_SWIFT_USER=imagestore:swift
export CEPH_RGW_SWIFT_KEY=$SWIFT_KEY
EOF
)
# replace an earlier radosgw section (a restarted radosgw), atomically
{ grep -v '^export CEPH_RGW_' "$DIR/env" || true; echo "$section"; } >"$DIR/env.new"
mv "$DIR/env.new" "$DIR/env"
trap - ERR
log "usable: S3 and Swift on $ENDPOINT"
echo "$section"
