#!/usr/bin/env bash
# Start a throwaway single-node Ceph cluster for imagestore's RBD tests and demos:
# 1 mon + 1 memstore OSD, bound to 127.0.0.1 only, cephx, RBD pools, and a
# least-privilege user client.imagestore. No systemd, no block device needed.
#
# Usage: scripts/ceph-start.sh [DIR]      DIR defaults to /tmp/ceph-imagestore; it is
#                                         wiped. Keep it short (AF_UNIX paths < 108 bytes).
# Environment (all optional):
#   CEPH_MON_PORT=3300           msgr2 port of the mon; a second cluster needs another port
#   CEPH_POOLS="images vms"      RBD pools to create (size 1, 8 PGs, application rbd)
#   CEPH_OSD_SIZE_MB=4096        capacity of the memstore OSD (data lives in RAM)
#   CEPH_MIN_COMPAT_CLIENT=      unset: luminous -> librbd makes clone v1 (protected parent
#                                snapshot required); mimic -> clone v2 (trash-deferred deletes)
#   CEPH_SKIP_APT=1              never touch apt (the packages must already be installed)
#   CEPH_START_TIMEOUT=60        seconds to wait for each step that waits
#   CEPH_WITH_RGW=1              also start radosgw (S3 + Swift) with scripts/ceph-rgw-start.sh,
#                                which adds the CEPH_RGW_* exports to DIR/env; it can also be
#                                run later on the running cluster
#   CEPH_RGW_PORT=7480           radosgw's HTTP port on 127.0.0.1 (a busy port is refused)
# Output in DIR: ceph.conf, keyring (client.admin + client.imagestore),
# client.imagestore.keyring (that user only), env (shell exports), pids/, log/.
# Stop with scripts/ceph-stop.sh DIR, which kills only the PIDs recorded in DIR/pids.
set -Eeuo pipefail

DIR=${1:-/tmp/ceph-imagestore}
MON_PORT=${CEPH_MON_PORT:-3300}
POOLS=${CEPH_POOLS:-images vms}
OSD_MB=${CEPH_OSD_SIZE_MB:-4096}
TIMEOUT=${CEPH_START_TIMEOUT:-60}
WITH_RGW=${CEPH_WITH_RGW:-0}
RGW_PORT=${CEPH_RGW_PORT:-7480}

t0=$EPOCHREALTIME
log() { awk -v a="$t0" -v b="$EPOCHREALTIME" -v m="$*" 'BEGIN{printf "[ceph-start %5.1fs] %s\n", b-a, m}' >&2; }
die() { echo "[ceph-start] $*" >&2; exit 1; }

# ------------------------------------------------------------------ packages
# librados2/librbd1 (what imagestore loads with ctypes) come with ceph-common.
install_packages() {
    local pkgs="ceph-mon ceph-osd ceph-common" missing="" p aptlog
    [ "$WITH_RGW" = 1 ] && pkgs="$pkgs radosgw"
    for p in $pkgs; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing="$missing $p"
    done
    [ -z "$missing" ] && return 0
    command -v apt-get >/dev/null || die "missing packages:$missing and no apt-get; install them or set CEPH_SKIP_APT=1"
    [ "$(id -u)" = 0 ] || die "missing packages:$missing; run as root or install them first (apt install$missing)"
    log "installing:$missing"
    export DEBIAN_FRONTEND=noninteractive
    local apt=(apt-get -q -o DPkg::Lock::Timeout=600)
    aptlog=$(mktemp)
    # update only when the lists do not know the package, or when the install fails once
    apt-cache show ceph-mon >/dev/null 2>&1 || "${apt[@]}" update >"$aptlog" 2>&1 || true
    # shellcheck disable=SC2086
    if ! "${apt[@]}" install -y --no-install-recommends $missing >>"$aptlog" 2>&1; then
        "${apt[@]}" update >>"$aptlog" 2>&1 || true
        # shellcheck disable=SC2086
        "${apt[@]}" install -y --no-install-recommends $missing >>"$aptlog" 2>&1 \
            || { tail -30 "$aptlog" >&2; rm -f "$aptlog"; die "apt-get install failed"; }
    fi
    rm -f "$aptlog"
    log "packages installed"
}
[ "${CEPH_SKIP_APT:-0}" = 1 ] || install_packages
for tool in ceph-mon ceph-osd ceph ceph-authtool monmaptool rados uuidgen; do
    command -v "$tool" >/dev/null || die "$tool not found (apt install ceph-mon ceph-osd ceph-common)"
done

# ------------------------------------------------------------------ layout
port_busy() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
[ -z "$(ls -A "$DIR/pids" 2>/dev/null)" ] || die "$DIR/pids is not empty: a cluster runs there; run ceph-stop.sh $DIR first"
port_busy "$MON_PORT" && die "127.0.0.1:$MON_PORT is in use (another cluster?); set CEPH_MON_PORT"
if [ "$WITH_RGW" = 1 ]; then
    command -v radosgw >/dev/null || die "radosgw not found (apt install radosgw)"
    port_busy "$RGW_PORT" && die "127.0.0.1:$RGW_PORT is in use; set CEPH_RGW_PORT"
fi
rm -rf "$DIR"
mkdir -p "$DIR"
DIR=$(cd "$DIR" && pwd)
[ ${#DIR} -le 70 ] || die "$DIR is too long for the admin sockets (keep it under 70 characters)"
mkdir -p "$DIR"/{run,log,pids,crash,mon/a,osd/0}
CONF=$DIR/ceph.conf
KEYRING=$DIR/keyring
FSID=$(uuidgen)

# on failure: kill what this run started (by recorded pid), keep DIR/log for diagnosis
on_error() {
    echo "[ceph-start] FAILED at line $1; logs in $DIR/log" >&2
    local f pid
    for f in "$DIR"/pids/* "$DIR"/run/*.pid; do
        [ -f "$f" ] || continue
        pid=$(cat "$f")
        case "$(cat "/proc/$pid/comm" 2>/dev/null)" in ceph-mon | ceph-osd) kill -KILL "$pid" ;; esac
        rm -f "$f"
    done
}
trap 'on_error $LINENO' ERR

# daemons fork into the background: wait for their pid file and record it
record_pid() {  # NAME PIDFILE
    local i
    for ((i = 0; i < TIMEOUT * 20; i++)); do [ -s "$2" ] && break; sleep 0.05; done
    [ -s "$2" ] || { echo "[ceph-start] $1 wrote no pid file" >&2; false; }
    cp "$2" "$DIR/pids/$1"
    log "$1 started (pid $(cat "$DIR/pids/$1"))"
}

cat >"$CONF" <<EOF
[global]
fsid = $FSID
mon host = v2:127.0.0.1:$MON_PORT
mon initial members = a
public addr = 127.0.0.1
cluster addr = 127.0.0.1
ms bind ipv4 = true
ms bind ipv6 = false
ms bind msgr1 = false
auth cluster required = cephx
auth service required = cephx
auth client required = cephx
keyring = $KEYRING
run dir = $DIR/run
admin socket = $DIR/run/\$cluster-\$name.\$pid.asok
crash dir = $DIR/crash
log to stderr = false
err to stderr = true
osd pool default size = 1
osd pool default min size = 1
osd pool default pg num = 8
osd pool default pgp num = 8
osd pool default pg autoscale mode = off
osd crush chooseleaf type = 0
mon allow pool size one = true
mon allow pool delete = true
mon max pg per osd = 1000
mon warn on pool no redundancy = false
mon warn on insecure global id reclaim allowed = false
mon data avail warn = 2
mon data avail crit = 1
# commit mon changes (pool create, snapshot ids) in ~10 ms instead of ~1 s
paxos propose interval = 0.01
paxos min wait = 0.01
# no mgr: RBD does not need one; keep HEALTH_OK instead of MGR_DOWN after 120 s
mon mgr mkfs grace = 31536000

[client]
# clients never hang forever on a dead cluster
client mount timeout = 30
rados mon op timeout = 30
rados osd op timeout = 60

[mon]
mon data = $DIR/mon/\$id
log file = $DIR/log/\$name.log
pid file = $DIR/run/\$name.pid
admin socket = $DIR/run/\$cluster-\$name.asok
mon cluster log file = $DIR/log/cluster.log

[osd]
osd data = $DIR/osd/\$id
keyring = $DIR/osd/\$id/keyring
log file = $DIR/log/\$name.log
pid file = $DIR/run/\$name.pid
admin socket = $DIR/run/\$cluster-\$name.asok
osd objectstore = memstore
memstore device bytes = $((OSD_MB * 1024 * 1024))
osd op num shards = 1
osd op num threads per shard = 2
EOF

# ------------------------------------------------------------------ mon
log "creating mon (fsid $FSID, port $MON_PORT)"
ceph-authtool --create-keyring "$KEYRING" --gen-key -n mon. --cap mon 'allow *' >/dev/null
ceph-authtool "$KEYRING" --gen-key -n client.admin \
    --cap mon 'allow *' --cap osd 'allow *' --cap mgr 'allow *' --cap mds 'allow *' >/dev/null
# least privilege, as a real image service deployment: RBD on its pools only
osd_caps=$(printf 'profile rbd pool=%s, ' $POOLS)
ceph-authtool "$KEYRING" --gen-key -n client.imagestore --cap mon 'profile rbd' \
    --cap osd "${osd_caps%, }" --cap mgr 'profile rbd' >/dev/null
monmaptool --create --fsid "$FSID" --addv a "[v2:127.0.0.1:$MON_PORT]" "$DIR/monmap" >/dev/null
ceph-mon -c "$CONF" --mkfs -i a --monmap "$DIR/monmap" --keyring "$KEYRING"
ceph-mon -c "$CONF" -i a
record_pid mon.a "$DIR/run/mon.a.pid"
C=(ceph -c "$CONF" --connect-timeout "$TIMEOUT")
"${C[@]}" mon stat >/dev/null
log "mon answers"
# the least-privilege user's own keyring, so tests can prove they need no admin key
"${C[@]}" auth get client.imagestore -o "$DIR/client.imagestore.keyring" 2>/dev/null

# ------------------------------------------------------------------ osd
OSD_UUID=$(uuidgen)
OSD_SECRET=$(ceph-authtool --gen-print-key)
printf '{"cephx_secret": "%s"}' "$OSD_SECRET" >"$DIR/osd/0/secret.json"
OSD_ID=$("${C[@]}" osd new "$OSD_UUID" -i "$DIR/osd/0/secret.json")
rm -f "$DIR/osd/0/secret.json"
[ "$OSD_ID" = 0 ] || { echo "[ceph-start] unexpected osd id $OSD_ID" >&2; false; }
ceph-authtool --create-keyring "$DIR/osd/0/keyring" --name osd.0 --add-key "$OSD_SECRET" >/dev/null
ceph-osd -c "$CONF" -i 0 --mkfs --osd-uuid "$OSD_UUID" --key "$OSD_SECRET" \
    >"$DIR/log/osd.0.mkfs.log" 2>&1 || { cat "$DIR/log/osd.0.mkfs.log" >&2; false; }
ceph-osd -c "$CONF" -i 0 2>>"$DIR/log/osd.0.stderr.log"
record_pid osd.0 "$DIR/run/osd.0.pid"

# ------------------------------------------------------------------ pools
quiet() { local out; out=$("$@" 2>&1) || { echo "$out" >&2; return 1; }; }
for pool in $POOLS; do
    quiet "${C[@]}" osd pool create "$pool" 8 8 replicated
    quiet "${C[@]}" osd pool application enable "$pool" rbd
done
if [ -n "${CEPH_MIN_COMPAT_CLIENT:-}" ]; then
    quiet "${C[@]}" osd set-require-min-compat-client "$CEPH_MIN_COMPAT_CLIENT"
fi
log "pools created: $POOLS (min compat client: ${CEPH_MIN_COMPAT_CLIENT:-luminous})"

# usable = the OSD is up and a write to every pool succeeds
for ((i = 0; i < TIMEOUT * 10; i++)); do
    "${C[@]}" osd stat -f json 2>/dev/null | grep -q '"num_up_osds":1' && break
    sleep 0.1
done
for pool in $POOLS; do
    timeout "$TIMEOUT" rados -c "$CONF" -p "$pool" put .ceph-start-probe "$CONF"
    rados -c "$CONF" -p "$pool" rm .ceph-start-probe
done
cat >"$DIR/env" <<EOF
export CEPH_CONF=$CONF
export CEPH_FSID=$FSID
export CEPH_MON_HOST=v2:127.0.0.1:$MON_PORT
export CEPH_IMAGESTORE_KEYRING=$DIR/client.imagestore.keyring
EOF
log "usable: $("${C[@]}" health 2>/dev/null)"
if [ "$WITH_RGW" = 1 ]; then
    # on failure it kills its radosgw; the ERR trap here then stops the mon and OSD
    CEPH_SKIP_APT=1 CEPH_RGW_PORT=$RGW_PORT CEPH_START_TIMEOUT=$TIMEOUT \
        bash "$(dirname "${BASH_SOURCE[0]}")/ceph-rgw-start.sh" "$DIR" >/dev/null
fi
trap - ERR
cat "$DIR/env"
