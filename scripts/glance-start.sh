#!/usr/bin/env bash
# Start a real Glance image API (glance.wsgi.api under gunicorn) for imagestore's
# tests: sqlite, no Keystone (the "trusted" paste flavor: the keystone pipeline
# without authtoken, so the four identity headers X-Identity-Status: Confirmed,
# X-Roles, X-Project-Id, X-User-Id are trusted), bound to 127.0.0.1 only.
#
# Usage: scripts/glance-start.sh DIR
#   DIR holds everything: etc/ (glance-api.conf, glance-api-paste.ini), glance.sqlite,
#   staging/, tasks/, locks/, log/, pids/. It must be absent, empty but for backends.conf,
#   or a DIR of this script whose Glance is stopped: then its database and data are kept
#   (a restart with other backends sees the images of the last run) and etc/ is written anew.
#   Backend sections come from DIR/backends.conf, written by the caller, e.g.
#       [fast]
#       imagestore_config = /etc/imagestore.toml
#       imagestore_store = fast
#   and are appended to glance-api.conf as they are.
# Environment:
#   GLANCE_PORT                 required: the (free) port to listen on
#   GLANCE_BACKENDS             enabled_backends, e.g. "fast:imagestore,legacy:file"
#   GLANCE_DEFAULT_BACKEND      default: the first of GLANCE_BACKENDS
#   GLANCE_HASHING_ALGORITHM    [DEFAULT] hashing_algorithm (default sha512)
#   GLANCE_WORKERS=1 GLANCE_THREADS=4   gunicorn workers and threads per worker
#   GLANCE_READY_TIMEOUT=120    seconds to wait for /versions to answer
#   IMAGESTORE_CACHE            where scripts/glance-venv.sh keeps the virtualenv
#   GLANCE_VENV                 use this virtualenv instead of running glance-venv.sh
# Output: DIR/env (shell exports GLANCE_URL GLANCE_PORT GLANCE_DIR GLANCE_VENV) on stdout
# too; pids/NAME holds "PID STARTTIME COMM" of the gunicorn master and its workers.
# Stop with scripts/glance-stop.sh DIR, which kills only the processes recorded there.
set -Eeuo pipefail

DIR=${1:?usage: glance-start.sh DIR}
PORT=${GLANCE_PORT:?set GLANCE_PORT to a free port}
BACKENDS=${GLANCE_BACKENDS:?set GLANCE_BACKENDS, e.g. fast:imagestore}
DEFAULT_BACKEND=${GLANCE_DEFAULT_BACKEND:-${BACKENDS%%:*}}
HASHING=${GLANCE_HASHING_ALGORITHM:-sha512}
WORKERS=${GLANCE_WORKERS:-1}
THREADS=${GLANCE_THREADS:-4}
READY_TIMEOUT=${GLANCE_READY_TIMEOUT:-120}
MARKER=.imagestore-glance
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)

t0=$EPOCHREALTIME
log() { awk -v a="$t0" -v b="$EPOCHREALTIME" -v m="$*" 'BEGIN{printf "[glance-start %5.1fs] %s\n", b-a, m}' >&2; }
die() { echo "[glance-start] $*" >&2; exit 1; }

# "STATE STARTTIME" of a process from /proc/PID/stat (fails when it is gone)
proc_stat() {
    local s f
    s=$(cat "/proc/$1/stat" 2>/dev/null) || return 1  # $(<missing) would end the script
    read -r -a f <<<"${s##*) }"
    echo "${f[0]} ${f[19]}"
}
# alive, not a zombie, and still the recorded process
is_ours() {  # PID START
    local st
    st=$(proc_stat "$1") || return 1
    [ "${st%% *}" != Z ] && [ "${st#* }" = "$2" ]
}

# ------------------------------------------------------------------ arguments
[[ "$PORT" =~ ^[0-9]+$ ]] && [ "$PORT" -ge 1 ] && [ "$PORT" -le 65535 ] || die "bad GLANCE_PORT '$PORT'"
for n in "$WORKERS" "$THREADS" "$READY_TIMEOUT"; do
    [[ "$n" =~ ^[0-9]+$ ]] && [ "$n" -ge 1 ] || die "'$n' is not a positive whole number (GLANCE_WORKERS, GLANCE_THREADS, GLANCE_READY_TIMEOUT)"
done
[[ "$HASHING" =~ ^[a-z0-9_]+$ ]] || die "bad GLANCE_HASHING_ALGORITHM '$HASHING'"
ids=()
IFS=, read -r -a items <<<"$BACKENDS"
for item in "${items[@]}"; do
    item=${item// /}
    [[ "$item" =~ ^[A-Za-z][A-Za-z0-9_-]*:[a-z0-9_]+$ ]] || die "bad GLANCE_BACKENDS entry '$item' (want ID:TYPE)"
    [[ "$item" != os_glance_* ]] || die "backend ids starting with os_glance_ are Glance's own"
    ids+=("${item%%:*}")
done
printf '%s\n' "${ids[@]}" | grep -qx "$DEFAULT_BACKEND" || die "GLANCE_DEFAULT_BACKEND '$DEFAULT_BACKEND' is not in GLANCE_BACKENDS"

# ------------------------------------------------------------------ work dir
if [ -d "$DIR" ] && [ -n "$(ls -A "$DIR")" ] && [ "$(ls -A "$DIR")" != backends.conf ]; then
    [ -e "$DIR/$MARKER" ] || die "$DIR holds more than backends.conf and was not made by glance-start.sh; pick another DIR"
    for f in "$DIR"/pids/*; do
        [ -f "$f" ] || continue
        read -r pid start _ <"$f" || true
        if [[ "${pid:-}" =~ ^[0-9]+$ ]] && is_ours "$pid" "${start:-}"; then
            die "a Glance still runs in $DIR (pid $pid); run scripts/glance-stop.sh $DIR first"
        fi
    done
    rm -f "$DIR"/pids/*
fi
mkdir -p "$DIR"
DIR=$(cd "$DIR" && pwd)
touch "$DIR/$MARKER"
mkdir -p "$DIR"/{etc,staging,tasks,locks,log,pids}

# bind as gunicorn does (SO_REUSEADDR): a listener makes it fail, a TIME_WAIT does not
python3 - "$PORT" <<'EOF' || die "127.0.0.1:$PORT is in use; choose another GLANCE_PORT"
import socket, sys
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
try:
    s.bind(("127.0.0.1", int(sys.argv[1])))
except OSError:
    sys.exit(1)
finally:
    s.close()
EOF

VENV=${GLANCE_VENV:-$(bash "$HERE/glance-venv.sh")}
VPY=$VENV/bin/python
[ -x "$VPY" ] || die "$VPY is missing (GLANCE_VENV or glance-venv.sh)"

# ------------------------------------------------------------------ config
URL=http://127.0.0.1:$PORT
cat >"$DIR/etc/glance-api.conf" <<EOF
# written by imagestore's scripts/glance-start.sh; rewritten on every start
[DEFAULT]
enabled_backends = $BACKENDS
node_staging_uri = file://$DIR/staging
enabled_import_methods = [glance-direct,copy-image]
show_image_direct_url = true
worker_self_reference_url = $URL
hashing_algorithm = $HASHING
bind_host = 127.0.0.1
bind_port = $PORT
use_stderr = true
log_file =

[database]
connection = sqlite:///$DIR/glance.sqlite

[paste_deploy]
flavor = trusted
config_file = $DIR/etc/glance-api-paste.ini

[glance_store]
default_backend = $DEFAULT_BACKEND

[os_glance_staging_store]
filesystem_store_datadir = $DIR/staging

[os_glance_tasks_store]
filesystem_store_datadir = $DIR/tasks

[oslo_concurrency]
lock_path = $DIR/locks

EOF
if [ -f "$DIR/backends.conf" ]; then
    cat "$DIR/backends.conf" >>"$DIR/etc/glance-api.conf"
fi

# the stock pipelines plus "trusted": keystone's without authtoken
cat >"$DIR/etc/glance-api-paste.ini" <<EOF
[composite:glance-api-trusted]
paste.composite_factory = glance.api:root_app_factory
/: api
/healthcheck: healthcheck

[composite:api]
paste.composite_factory = glance.api:pipeline_factory
trusted = cors http_proxy_to_wsgi versionnegotiation osprofiler context rootapp

[composite:rootapp]
paste.composite_factory = glance.api:root_app_factory
/: apiversions
/v2: apiv2app

[app:apiversions]
paste.app_factory = glance.api.versions:create_resource

[app:apiv2app]
paste.app_factory = glance.api.v2.router:API.factory

[app:healthcheck]
paste.app_factory = oslo_middleware:Healthcheck.app_factory
backends = disable_by_file
disable_by_file_path = $DIR/healthcheck_disable

[filter:versionnegotiation]
paste.filter_factory = glance.api.middleware.version_negotiation:VersionNegotiationFilter.factory

[filter:context]
paste.filter_factory = glance.api.middleware.context:ContextMiddleware.factory

[filter:osprofiler]
paste.filter_factory = osprofiler.web:WsgiMiddleware.factory

[filter:cors]
paste.filter_factory = oslo_middleware.cors:filter_factory
oslo_config_project = glance
oslo_config_program = glance-api

[filter:http_proxy_to_wsgi]
paste.filter_factory = oslo_middleware:HTTPProxyToWSGI.factory
EOF
log "config written (backends $BACKENDS, default $DEFAULT_BACKEND, $HASHING)"

# ------------------------------------------------------------------ database
"$VPY" -m glance.cmd.manage --config-file "$DIR/etc/glance-api.conf" db_sync >"$DIR/log/db_sync.log" 2>&1 \
    || { tail -30 "$DIR/log/db_sync.log" >&2; die "glance-manage db_sync failed (log: $DIR/log/db_sync.log)"; }
log "database ready ($DIR/glance.sqlite)"

# ------------------------------------------------------------------ start
MASTER=""
MASTER_START=""
on_error() {
    echo "[glance-start] FAILED at line $1; logs in $DIR/log" >&2
    local f pid start
    for f in "$DIR"/pids/*; do
        [ -f "$f" ] || continue
        read -r pid start _ <"$f" || true
        if [[ "${pid:-}" =~ ^[0-9]+$ ]] && is_ours "$pid" "${start:-}"; then kill -KILL "$pid" 2>/dev/null || true; fi
    done
    rm -f "$DIR"/pids/*
    tail -n 30 "$DIR/log/glance-api.log" >&2 2>/dev/null || true
}
trap 'on_error $LINENO' ERR

# gunicorn's own pid file is not used: DIR/pids is the record glance-stop.sh trusts
OS_GLANCE_CONFIG_DIR=$DIR/etc nohup "$VPY" -m gunicorn --workers "$WORKERS" --threads "$THREADS" \
    --timeout 300 --graceful-timeout 10 --bind "127.0.0.1:$PORT" --name glance-api \
    glance.wsgi.api:application </dev/null >>"$DIR/log/glance-api.log" 2>&1 &
MASTER=$!
disown "$MASTER"
st=$(proc_stat "$MASTER") || st="? 0"
MASTER_START=${st#* }
echo "$MASTER $MASTER_START python" >"$DIR/pids/master"
log "gunicorn started (pid $MASTER, port $PORT)"

# ready = /versions answers; the master must stay alive meanwhile
"$VPY" - "$URL" "$READY_TIMEOUT" "$MASTER" "$MASTER_START" <<'EOF'
import sys, time, urllib.error, urllib.request
url, timeout, pid, start = sys.argv[1], float(sys.argv[2]), sys.argv[3], sys.argv[4]
def alive():
    try:
        fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    except OSError:
        return False
    return fields[0] != "Z" and fields[19] == start
deadline = time.monotonic() + timeout
while True:
    try:
        with urllib.request.urlopen(url + "/versions", timeout=5) as resp:
            if resp.status < 500:
                break
    except urllib.error.HTTPError as exc:
        if exc.code < 500:
            break
    except OSError:
        pass
    if not alive():
        sys.exit(f"gunicorn (pid {pid}) exited before {url}/versions answered")
    if time.monotonic() > deadline:
        sys.exit(f"{url}/versions did not answer in {timeout:.0f}s")
    time.sleep(0.1)
EOF

# record the workers too (children of the master), so a stop never leaves one behind
for child in $(cat "/proc/$MASTER/task/"*/children 2>/dev/null); do
    st=$(proc_stat "$child") || continue
    echo "$child ${st#* } python" >"$DIR/pids/worker.$child"
done
trap - ERR
cat >"$DIR/env" <<EOF
export GLANCE_URL=$URL
export GLANCE_PORT=$PORT
export GLANCE_DIR=$DIR
export GLANCE_VENV=$VENV
EOF
log "ready: $URL ($(ls "$DIR/pids" | wc -l) process(es))"
cat "$DIR/env"
