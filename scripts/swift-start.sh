#!/usr/bin/env bash
# Start a throwaway OpenStack Swift "all in one" (SAIO) for imagestore's Swift
# tests: proxy + account + container + object server (one process each,
# workers = 0), 1 replica on 1 device (a directory), tempauth, and memcached on
# its own port. Bound to 127.0.0.1 only. No systemd, no /etc/swift.
#
# Usage: scripts/swift-start.sh [DIR]     DIR defaults to /tmp/swift-imagestore. It must be
#                                         empty, absent, or an old DIR of this script (wiped).
# Environment (all optional):
#   SWIFT_PROXY_PORT=8181  SWIFT_OBJECT_PORT=6211  SWIFT_CONTAINER_PORT=6212
#   SWIFT_ACCOUNT_PORT=6213  SWIFT_MEMCACHED_PORT=11311
#                           every port is checked free first; pick other ones to run
#                           several SAIOs side by side
#   SWIFT_NODE_TIMEOUT=10   proxy -> storage server timeout (s); small for fault tests
#   SWIFT_CONSTRAINTS=      [swift-constraints] of this SAIO, "name=value ...", for
#                           example "max_file_size=1048576 max_meta_count=20"
#   SWIFT_MAX_MANIFEST_SEGMENTS=1000  SWIFT_MAX_MANIFEST_SIZE=8388608   SLO limits
#   SWIFT_READY_TIMEOUT=60  seconds to wait for a working auth + PUT/DELETE
#   SWIFT_SKIP_APT=1        never touch apt (memcached must be installed)
#   SWIFT_PYTHON=python3    interpreter for Swift's virtualenv
#   IMAGESTORE_CACHE=~/.cache/imagestore   where the virtualenv is kept between runs
#
# Swift comes from PyPI (pinned below) in its own virtualenv,
# $IMAGESTORE_CACHE/swift-venv-<version>, built once and reused. memcached comes
# from Debian (apt) when missing.
#
# Accounts (tempauth): test:tester/testing (.admin), test2:tester2/testing2 (.admin),
# test:tester3/testing3 (no role: needs ACLs for anything).
# Proxy pipeline: catch_errors gatekeeper healthcheck proxy-logging cache
# listing_formats bulk tempurl tempauth copy container-quotas slo dlo proxy-logging
# proxy-server; tempurl allows sha256 and sha512 signatures.
#
# Constraints: Swift reads [swift-constraints] and the storage policies from
# /etc/swift/swift.conf when swift.common.constraints is first imported; swift_dir
# in a server config only redirects the hash prefix/suffix. So every server is run
# through DIR/bin/swift-server, which points Swift at DIR/etc/swift.conf before
# that import; the start fails unless /info reports the constraints asked for.
#
# Output in DIR: env (shell exports: ST_AUTH ST_USER ST_KEY SWIFT_STORAGE_URL, the
# other accounts, ports, PIDs), pids/NAME ("PID STARTTIME COMM"), log/, etc/.
# Stop with scripts/swift-stop.sh DIR: it kills only the processes recorded there.
set -Eeuo pipefail

SWIFT_VERSION=2.38.3
# eventlet is pinned too: Swift's servers depend on its monkey-patching details
PIP_PINS=("swift==$SWIFT_VERSION" "eventlet==0.41.3")
MARKER=.imagestore-swift

DIR=${1:-/tmp/swift-imagestore}
PROXY_PORT=${SWIFT_PROXY_PORT:-8181}
OBJECT_PORT=${SWIFT_OBJECT_PORT:-6211}
CONTAINER_PORT=${SWIFT_CONTAINER_PORT:-6212}
ACCOUNT_PORT=${SWIFT_ACCOUNT_PORT:-6213}
MEMCACHED_PORT=${SWIFT_MEMCACHED_PORT:-11311}
NODE_TIMEOUT=${SWIFT_NODE_TIMEOUT:-10}
CONSTRAINTS=${SWIFT_CONSTRAINTS:-}
MAX_MANIFEST_SEGMENTS=${SWIFT_MAX_MANIFEST_SEGMENTS:-1000}
MAX_MANIFEST_SIZE=${SWIFT_MAX_MANIFEST_SIZE:-8388608}
READY_TIMEOUT=${SWIFT_READY_TIMEOUT:-60}
PY=${SWIFT_PYTHON:-python3}
CACHE=${IMAGESTORE_CACHE:-$HOME/.cache/imagestore}
VENV=$CACHE/swift-venv-$SWIFT_VERSION

t0=$EPOCHREALTIME
log() { awk -v a="$t0" -v b="$EPOCHREALTIME" -v m="$*" 'BEGIN{printf "[swift-start %5.1fs] %s\n", b-a, m}' >&2; }
die() { echo "[swift-start] $*" >&2; exit 1; }

# "STATE STARTTIME" of a process from /proc/PID/stat (fails when it is gone)
proc_stat() {
    local s f
    s=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
    read -r -a f <<<"${s##*) }"
    echo "${f[0]} ${f[19]}"
}

# ------------------------------------------------------------------ arguments
ports=("$PROXY_PORT" "$OBJECT_PORT" "$CONTAINER_PORT" "$ACCOUNT_PORT" "$MEMCACHED_PORT")
for p in "${ports[@]}"; do
    if ! [[ "$p" =~ ^[0-9]+$ ]] || [ "$p" -lt 1 ] || [ "$p" -gt 65535 ]; then die "bad port '$p' (SWIFT_*_PORT)"; fi
done
[ "$(printf '%s\n' "${ports[@]}" | sort -u | wc -l)" = "${#ports[@]}" ] || die "the five SWIFT_*_PORT values must differ: ${ports[*]}"
for c in $CONSTRAINTS; do
    [[ "$c" =~ ^[a-z_]+=[^=]+$ ]] || die "bad SWIFT_CONSTRAINTS entry '$c' (want name=value)"
done
for n in "$MAX_MANIFEST_SEGMENTS" "$MAX_MANIFEST_SIZE" "$READY_TIMEOUT"; do
    [[ "$n" =~ ^[0-9]+$ ]] || die "'$n' is not a whole number (SWIFT_MAX_MANIFEST_*, SWIFT_READY_TIMEOUT)"
done
[[ "$NODE_TIMEOUT" =~ ^[0-9]+(\.[0-9]+)?$ ]] || die "bad SWIFT_NODE_TIMEOUT '$NODE_TIMEOUT'"

# ------------------------------------------------------------------ work dir
if [ -d "$DIR" ] && [ -n "$(ls -A "$DIR")" ]; then
    [ -e "$DIR/$MARKER" ] || die "$DIR is not empty and was not made by swift-start.sh; pick another DIR"
    for f in "$DIR"/pids/*; do
        [ -f "$f" ] || continue
        read -r pid start _ <"$f" || true
        if st=$(proc_stat "$pid") && [ "${st#* }" = "$start" ] && [ "${st%% *}" != Z ]; then
            die "a Swift still runs in $DIR (pid $pid); run scripts/swift-stop.sh $DIR first"
        fi
    done
    rm -rf "$DIR"
fi
mkdir -p "$DIR"
DIR=$(cd "$DIR" && pwd)
touch "$DIR/$MARKER"
mkdir -p "$DIR"/{etc,bin,pids,log,srv/node/d1}

# ------------------------------------------------------------------ ports free?
# bind with SO_REUSEADDR as the servers do: a listener (or bound socket) makes it
# fail, a TIME_WAIT left by an earlier run does not
busy=$("$PY" - "${ports[@]}" <<'EOF'
import socket, sys
for port in sys.argv[1:]:
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        s.bind(("127.0.0.1", int(port)))
    except OSError:
        print(port, end=" ")
    finally:
        s.close()
EOF
)
[ -z "$busy" ] || die "port(s) in use on 127.0.0.1: ${busy% } (set SWIFT_PROXY_PORT and friends)"

# ------------------------------------------------------------------ memcached (apt)
install_memcached() {
    local aptlog=$DIR/log/apt.log policy_made=""
    command -v apt-get >/dev/null || die "memcached is missing and there is no apt-get; install it or set SWIFT_SKIP_APT=1"
    [ "$(id -u)" = 0 ] || die "memcached is missing; run as root or install it first (apt install memcached)"
    log "installing memcached (apt)"
    # the package's postinst would start a system memcached: forbid it for this install
    if [ ! -e /usr/sbin/policy-rc.d ]; then
        printf '#!/bin/sh\n# swift-start.sh: no service starts during its apt install\nexit 101\n' >/usr/sbin/policy-rc.d
        chmod +x /usr/sbin/policy-rc.d
        policy_made=1
    fi
    export DEBIAN_FRONTEND=noninteractive
    local apt=(apt-get -q -o DPkg::Lock::Timeout=600) ok=""
    # update first only when the lists do not know the package; retry the update once
    if ! apt-cache show memcached >/dev/null 2>&1; then
        "${apt[@]}" update >"$aptlog" 2>&1 || { sleep 5; "${apt[@]}" update >>"$aptlog" 2>&1 || true; }
    fi
    if "${apt[@]}" install -y --no-install-recommends memcached >>"$aptlog" 2>&1; then
        ok=1
    else
        { "${apt[@]}" update >>"$aptlog" 2>&1 || { sleep 5; "${apt[@]}" update >>"$aptlog" 2>&1; }; } || true
        "${apt[@]}" install -y --no-install-recommends memcached >>"$aptlog" 2>&1 && ok=1
    fi
    if [ -n "$policy_made" ] && grep -q swift-start.sh /usr/sbin/policy-rc.d 2>/dev/null; then
        rm -f /usr/sbin/policy-rc.d
    fi
    [ -n "$ok" ] || { tail -30 "$aptlog" >&2; die "apt-get install memcached failed (log: $aptlog)"; }
    log "memcached installed"
}
if ! command -v memcached >/dev/null; then
    if [ "${SWIFT_SKIP_APT:-0}" = 1 ]; then die "memcached not found and SWIFT_SKIP_APT=1"; fi
    install_memcached
fi
MEMCACHED=$(command -v memcached)

# ------------------------------------------------------------------ Swift virtualenv (cached)
venv_ok() {
    "$1/bin/python" - "$SWIFT_VERSION" "${PIP_PINS[1]#*==}" 2>/dev/null <<'EOF'
import sys
from importlib.metadata import version
sys.exit(0 if (version("swift"), version("eventlet")) == tuple(sys.argv[1:3]) else 1)
EOF
}
VENV_TMP=""
cleanup_venv_tmp() { if [ -n "$VENV_TMP" ]; then rm -rf "$VENV_TMP"; fi; }
trap cleanup_venv_tmp EXIT
if ! venv_ok "$VENV"; then
    mkdir -p "$CACHE"
    # leftovers of installs that were killed (an hour old: no live install is that slow)
    find "$CACHE" -maxdepth 1 -name ".swift-venv-*.tmp.*" -mmin +60 -exec rm -rf {} + 2>/dev/null || true
    log "building $VENV (${PIP_PINS[*]})"
    VENV_TMP=$(mktemp -d "$CACHE/.swift-venv-$SWIFT_VERSION.tmp.XXXXXX")
    chmod 755 "$VENV_TMP"
    "$PY" -m venv "$VENV_TMP" >"$DIR/log/pip.log" 2>&1 \
        || { tail -20 "$DIR/log/pip.log" >&2; die "$PY -m venv failed"; }
    "$VENV_TMP/bin/python" -m pip install -q --disable-pip-version-check "${PIP_PINS[@]}" >>"$DIR/log/pip.log" 2>&1 \
        || { tail -30 "$DIR/log/pip.log" >&2; die "pip install ${PIP_PINS[*]} failed (log: $DIR/log/pip.log)"; }
    venv_ok "$VENV_TMP" || die "the new virtualenv does not have ${PIP_PINS[*]}"
    # scripts in bin/ name the temporary path: point them at the final one
    { grep -rlF "$VENV_TMP" "$VENV_TMP/bin" || true; } | while read -r f; do sed -i "s|$VENV_TMP|$VENV|g" "$f"; done
    # broken or outdated: move it aside and drop it (a SAIO still running from it keeps
    # the modules it has loaded)
    if [ -e "$VENV" ] && ! venv_ok "$VENV"; then
        old=$(mktemp -d "$CACHE/.swift-venv-$SWIFT_VERSION.tmp.XXXXXX")
        mv -T "$VENV" "$old/venv" 2>/dev/null || true
        rm -rf "$old"
    fi
    # rename(2) is atomic; if another run got there first, use its venv
    if mv -T "$VENV_TMP" "$VENV" 2>/dev/null; then VENV_TMP=""; fi
    venv_ok "$VENV" || die "$VENV is not usable"
    log "virtualenv ready"
fi
VPY=$VENV/bin/python

# ------------------------------------------------------------------ config
ME=$(id -un)
{
    cat <<EOF
[swift-hash]
swift_hash_path_prefix = imagestore-saio-prefix
swift_hash_path_suffix = imagestore-saio-suffix

[storage-policy:0]
name = Policy-0
default = yes

[swift-constraints]
EOF
    for c in $CONSTRAINTS; do echo "${c%%=*} = ${c#*=}"; done
} >"$DIR/etc/swift.conf"

# Swift reads swift.conf when swift.common.constraints and .storage_policy are first
# imported, from swift.common.utils.SWIFT_CONF_FILE: set it before anything imports them.
cat >"$DIR/bin/swift-server" <<EOF
#!$VPY
"""Run one Swift server (account, container, object or proxy) of this SAIO:
swift-server KIND CONF. swift.conf, with its constraints, is read from CONF's directory."""
import importlib, os, sys
import swift.common.utils as utils
if "swift.common.constraints" in sys.modules:
    sys.exit("swift-server: swift.common.constraints was imported before swift.conf was chosen")
kind, conf = sys.argv[1], os.path.abspath(sys.argv[2])
utils.SWIFT_CONF_FILE = os.path.join(os.path.dirname(conf), "swift.conf")
module = {"account": "swift.account.server", "container": "swift.container.server",
          "object": "swift.obj.server", "proxy": "swift.proxy.server"}[kind]
sys.argv = ["swift-%s-server" % kind, conf, "-v"]  # -v: log to stdout too (DIR/log/KIND.log)
sys.exit(importlib.import_module(module).main())
EOF
chmod +x "$DIR/bin/swift-server"

server_conf() {  # NAME PORT EXTRA-APP-LINES
    cat <<EOF
[DEFAULT]
bind_ip = 127.0.0.1
bind_port = $2
workers = 0
user = $ME
swift_dir = $DIR/etc
devices = $DIR/srv/node
mount_check = false
log_name = $1-server
log_level = INFO

[pipeline:main]
pipeline = healthcheck $1-server

[filter:healthcheck]
use = egg:swift#healthcheck

[app:$1-server]
use = egg:swift#$1
$3
EOF
}
# no updater daemons run here: give the synchronous container/account updates
# time enough on a loaded machine, or listings would silently miss objects
server_conf object "$OBJECT_PORT" "node_timeout = 10
container_update_timeout = 10" >"$DIR/etc/object-server.conf"
server_conf container "$CONTAINER_PORT" "node_timeout = 10" >"$DIR/etc/container-server.conf"
server_conf account "$ACCOUNT_PORT" "" >"$DIR/etc/account-server.conf"

cat >"$DIR/etc/proxy-server.conf" <<EOF
[DEFAULT]
bind_ip = 127.0.0.1
bind_port = $PROXY_PORT
workers = 0
user = $ME
swift_dir = $DIR/etc
log_name = proxy-server
log_level = INFO

[pipeline:main]
pipeline = catch_errors gatekeeper healthcheck proxy-logging cache listing_formats bulk tempurl tempauth copy container-quotas slo dlo proxy-logging proxy-server

[app:proxy-server]
use = egg:swift#proxy
account_autocreate = true
conn_timeout = 2
node_timeout = $NODE_TIMEOUT
# one storage node per ring: never "error-limit" it after timeouts (pause tests),
# or every request would get 503 for a minute after it is back
error_suppression_limit = 1000000
error_suppression_interval = 1
# container info (bytes and object counts, for container quotas) is cached 1 s, not 60 s
recheck_container_existence = 1

[filter:catch_errors]
use = egg:swift#catch_errors

[filter:gatekeeper]
use = egg:swift#gatekeeper

[filter:healthcheck]
use = egg:swift#healthcheck

[filter:proxy-logging]
use = egg:swift#proxy_logging

[filter:cache]
use = egg:swift#memcache
memcache_servers = 127.0.0.1:$MEMCACHED_PORT

[filter:listing_formats]
use = egg:swift#listing_formats

[filter:bulk]
use = egg:swift#bulk

[filter:tempurl]
use = egg:swift#tempurl
allowed_digests = sha256 sha512

[filter:tempauth]
use = egg:swift#tempauth
user_test_tester = testing .admin
user_test2_tester2 = testing2 .admin
user_test_tester3 = testing3

[filter:copy]
use = egg:swift#copy

[filter:container-quotas]
use = egg:swift#container_quotas

[filter:slo]
use = egg:swift#slo
max_manifest_segments = $MAX_MANIFEST_SEGMENTS
max_manifest_size = $MAX_MANIFEST_SIZE

[filter:dlo]
use = egg:swift#dlo
EOF

# ------------------------------------------------------------------ rings: 1 replica, 1 device
# (the same as swift-ring-builder NAME.builder create 8 1 1 / add r1z1-127.0.0.1:PORT/d1 100
# / rebalance, in one interpreter instead of nine)
(cd "$DIR/etc" && "$VPY" - "$OBJECT_PORT" "$CONTAINER_PORT" "$ACCOUNT_PORT" <<'EOF'
import sys
from swift.common.ring import RingBuilder
for kind, port in zip(("object", "container", "account"), map(int, sys.argv[1:])):
    b = RingBuilder(8, 1, 1)
    b.add_dev({"region": 1, "zone": 1, "ip": "127.0.0.1", "port": port, "device": "d1",
               "weight": 100, "replication_ip": "127.0.0.1", "replication_port": port, "meta": ""})
    b.rebalance()
    b.save(kind + ".builder")
    b.get_ring().save(kind + ".ring.gz")
EOF
) >"$DIR/log/rings.log" 2>&1 || { cat "$DIR/log/rings.log" >&2; die "building the rings failed"; }

# the object server keeps metadata in user xattrs
"$VPY" - "$DIR/srv/node/d1" <<'EOF' || die "no user xattrs on $DIR/srv/node/d1: put DIR on ext4, XFS or tmpfs"
import os, sys, tempfile
with tempfile.NamedTemporaryFile(dir=sys.argv[1]) as f:
    os.setxattr(f.name, "user.swift.metadata", b"x" * 1024)
EOF
log "config and rings written (swift $SWIFT_VERSION, proxy port $PROXY_PORT)"

# ------------------------------------------------------------------ start
NAMES=()
PIDS=()
on_error() {
    echo "[swift-start] FAILED at line $1; stopping what this run started; logs in $DIR/log" >&2
    local i st
    for i in "${!PIDS[@]}"; do
        st=$(proc_stat "${PIDS[$i]}") || continue
        [ "${st#* }" = "$(cut -d' ' -f2 "$DIR/pids/${NAMES[$i]}")" ] && kill -KILL "${PIDS[$i]}" 2>/dev/null
    done
    rm -f "$DIR"/pids/*
    for f in "$DIR"/log/*.log; do echo "--- $f" >&2; tail -n 15 "$f" >&2; done
}
trap 'on_error $LINENO' ERR

start_server() {  # NAME CMD...: in the background, output to log/NAME.log, pid to pids/NAME
    local name=$1
    shift
    nohup "$@" </dev/null >>"$DIR/log/$name.log" 2>&1 &
    local pid=$! st
    disown "$pid"   # no "Killed" job notices from this shell
    st=$(proc_stat "$pid") || st="? 0"
    echo "$pid ${st#* }" >"$DIR/pids/$name"   # COMM is added once the exec is surely done
    NAMES+=("$name")
    PIDS+=("$pid")
}
mc_user=()
if [ "$(id -u)" = 0 ]; then mc_user=(-u root); fi   # memcached refuses to run as root without -u
start_server memcached "$MEMCACHED" -l 127.0.0.1 -p "$MEMCACHED_PORT" -U 0 -t 2 -m 64 -c 1024 "${mc_user[@]}"
for kind in account container object proxy; do
    start_server "$kind" "$VPY" "$DIR/bin/swift-server" "$kind" "$DIR/etc/$kind-server.conf"
done

# usable = auth works and a container + object PUT/DELETE round trip succeeds (the
# proxy may answer before the object server listens), and /info shows the limits
"$VPY" - "$PROXY_PORT" "$READY_TIMEOUT" "$DIR" "$CONSTRAINTS" "$MAX_MANIFEST_SEGMENTS" "${NAMES[@]}" <<'EOF'
import json, os, sys, time, urllib.request
port, timeout, workdir, constraints, max_segments = sys.argv[1:6]
names = sys.argv[6:]
opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # never via *_proxy
base = "http://127.0.0.1:%s" % port

def dead():
    for name in names:
        pid, start = open(os.path.join(workdir, "pids", name)).read().split()[:2]
        try:
            fields = open("/proc/%s/stat" % pid).read().rsplit(")", 1)[1].split()
        except OSError:
            return "%s (pid %s) exited" % (name, pid)
        if fields[0] in ("Z", "X") or fields[19] != start:  # state, start time
            return "%s (pid %s) exited" % (name, pid)

def call(method, url, token=None, data=None, headers=None):
    h = dict(headers or {}, **({"X-Auth-Token": token} if token else {}))
    with opener.open(urllib.request.Request(url, data=data, method=method, headers=h), timeout=10) as r:
        return r.headers, r.read()

deadline, err = time.monotonic() + float(timeout), "nothing tried"
while True:
    why = dead()
    if why:
        sys.exit("swift-start: " + why + " (see its log)")
    try:
        h, _ = call("GET", base + "/auth/v1.0", headers={"X-Auth-User": "test:tester", "X-Auth-Key": "testing"})
        token, url = h["X-Auth-Token"], h["X-Storage-Url"]
        assert url == base + "/v1/AUTH_test", url
        probe = url + "/.swift-start-probe"
        call("PUT", probe, token)
        call("PUT", probe + "/o", token, b"probe")
        call("DELETE", probe + "/o", token)
        call("DELETE", probe, token)
        break
    except Exception as e:  # refused, 401 until memcached answers, 503 until the object server does
        err = repr(e)
    if time.monotonic() > deadline:
        sys.exit("swift-start: not usable after %ss: %s" % (timeout, err))
    time.sleep(0.1)

info = json.loads(call("GET", base + "/info")[1])
bad = []
for name, _, value in (c.partition("=") for c in constraints.split()):
    got = info["swift"].get(name)
    if (got if isinstance(got, list) else str(got)) != (value.split(",") if isinstance(got, list) else value):
        bad.append("%s=%s (reported %s)" % (name, value, got))
if int(info["slo"]["max_manifest_segments"]) != int(max_segments):
    bad.append("slo max_manifest_segments=%s (reported %s)" % (max_segments, info["slo"]["max_manifest_segments"]))
if bad:
    sys.exit("swift-start: /info does not show the constraints asked for: " + ", ".join(bad))
EOF

# record each process's name now that every exec is done: stop checks PID, start time and name
for i in "${!NAMES[@]}"; do
    read -r pid start <"$DIR/pids/${NAMES[$i]}"
    echo "$pid $start $(<"/proc/$pid/comm")" >"$DIR/pids/${NAMES[$i]}"
done

{
    q() {  # plain when that is safe, else quoted for the shell
        if [[ "$2" =~ ^[A-Za-z0-9_./:,@+-]+$ ]]; then echo "export $1=$2"; else printf 'export %s=%q\n' "$1" "$2"; fi
    }
    q SWIFT_DIR "$DIR"
    q SWIFT_VERSION "$SWIFT_VERSION"
    q SWIFT_VENV "$VENV"
    q ST_AUTH "http://127.0.0.1:$PROXY_PORT/auth/v1.0"
    q ST_USER test:tester
    q ST_KEY testing
    q SWIFT_STORAGE_URL "http://127.0.0.1:$PROXY_PORT/v1/AUTH_test"
    q SWIFT_USER2 test2:tester2
    q SWIFT_KEY2 testing2
    q SWIFT_STORAGE_URL2 "http://127.0.0.1:$PROXY_PORT/v1/AUTH_test2"
    q SWIFT_NONADMIN_USER test:tester3
    q SWIFT_NONADMIN_KEY testing3
    q SWIFT_PROXY_PORT "$PROXY_PORT"
    q SWIFT_OBJECT_PORT "$OBJECT_PORT"
    q SWIFT_CONTAINER_PORT "$CONTAINER_PORT"
    q SWIFT_ACCOUNT_PORT "$ACCOUNT_PORT"
    q SWIFT_MEMCACHED_PORT "$MEMCACHED_PORT"
    q SWIFT_NODE_TIMEOUT "$NODE_TIMEOUT"
    q SWIFT_CONSTRAINTS "$CONSTRAINTS"
    q SWIFT_MAX_MANIFEST_SEGMENTS "$MAX_MANIFEST_SEGMENTS"
    q SWIFT_MAX_MANIFEST_SIZE "$MAX_MANIFEST_SIZE"
    for i in "${!NAMES[@]}"; do q "SWIFT_PID_${NAMES[$i]^^}" "${PIDS[$i]}"; done
    # loopback traffic must never go through an HTTP proxy (requests honours *_proxy)
    q NO_PROXY "127.0.0.1,localhost"
    q no_proxy "127.0.0.1,localhost"
} >"$DIR/env"
trap - ERR
log "usable: auth $(grep -o 'http://[^ ]*/auth/v1.0' "$DIR/env"), pids ${PIDS[*]}"
cat "$DIR/env"
