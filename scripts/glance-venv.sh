#!/usr/bin/env bash
# Make (once) the virtualenv a real Glance runs from: glance, glance-store and
# gunicorn from PyPI, pinned, plus this checkout of imagestore, which is
# reinstalled on every run (no dependencies, no build isolation: a few seconds) so
# the Glance under test always loads the code in front of it.
#
# Usage: scripts/glance-venv.sh          prints the virtualenv's path on stdout
# Environment (all optional):
#   IMAGESTORE_CACHE=~/.cache/imagestore  the venv is $IMAGESTORE_CACHE/glance-venv-<version>
#   GLANCE_PYTHON=python3                 interpreter for the virtualenv
#   GLANCE_SKIP_IMAGESTORE=1              do not (re)install imagestore into it
#
# The venv is built in a temporary directory beside it and renamed into place only
# once complete and checked, so a killed install never looks done. Concurrent runs
# are serialised by a lock file in the cache. Scripts in bin/ are not used: the
# callers run modules with the venv's python (python -m gunicorn ...), which works
# from wherever the directory was renamed to.
set -Eeuo pipefail

GLANCE_VERSION=33.0.0
GLANCE_STORE_VERSION=5.7.0
PIP_PINS=("glance==$GLANCE_VERSION" "glance-store==$GLANCE_STORE_VERSION" "gunicorn==23.0.0"
          "blake3>=0.4" "setuptools>=68" "wheel")
PY=${GLANCE_PYTHON:-python3}
CACHE=${IMAGESTORE_CACHE:-$HOME/.cache/imagestore}
VENV=$CACHE/glance-venv-$GLANCE_VERSION
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

t0=$EPOCHREALTIME
log() { awk -v a="$t0" -v b="$EPOCHREALTIME" -v m="$*" 'BEGIN{printf "[glance-venv %5.1fs] %s\n", b-a, m}' >&2; }
die() { echo "[glance-venv] $*" >&2; exit 1; }

venv_ok() {
    "$1/bin/python" - "$GLANCE_VERSION" "$GLANCE_STORE_VERSION" 2>/dev/null <<'EOF'
import sys
from importlib.metadata import version
version("blake3")  # imagestore's own dependency (installed below with --no-deps)
sys.exit(0 if (version("glance"), version("glance-store")) == tuple(sys.argv[1:3]) else 1)
EOF
}

mkdir -p "$CACHE"
exec 9>"$CACHE/.glance-venv.lock"
flock -w 900 9 || die "another glance-venv.sh holds $CACHE/.glance-venv.lock for 15 minutes"

VENV_TMP=""
cleanup() { if [ -n "$VENV_TMP" ]; then rm -rf "$VENV_TMP"; fi; }
trap cleanup EXIT
if ! venv_ok "$VENV"; then
    # leftovers of installs that were killed (we hold the lock: no live install owns them)
    find "$CACHE" -maxdepth 1 -name ".glance-venv-*.tmp.*" -exec rm -rf {} + 2>/dev/null || true
    log "building $VENV (${PIP_PINS[*]})"
    VENV_TMP=$(mktemp -d "$CACHE/.glance-venv-$GLANCE_VERSION.tmp.XXXXXX")
    chmod 755 "$VENV_TMP"
    piplog=$VENV_TMP/.pip.log
    "$PY" -m venv "$VENV_TMP" >"$piplog" 2>&1 || { tail -20 "$piplog" >&2; die "$PY -m venv failed"; }
    "$VENV_TMP/bin/python" -m pip install -q --disable-pip-version-check "${PIP_PINS[@]}" >>"$piplog" 2>&1 \
        || { tail -30 "$piplog" >&2; die "pip install ${PIP_PINS[*]} failed"; }
    venv_ok "$VENV_TMP" || die "the new virtualenv does not have glance $GLANCE_VERSION and glance-store $GLANCE_STORE_VERSION"
    if [ -e "$VENV" ]; then  # broken or outdated: move it aside, then drop it
        old=$(mktemp -d "$CACHE/.glance-venv-$GLANCE_VERSION.tmp.XXXXXX")
        mv -T "$VENV" "$old/venv"
        rm -rf "$old"
    fi
    mv -T "$VENV_TMP" "$VENV"   # rename(2): the venv appears complete or not at all
    VENV_TMP=""
    log "virtualenv ready ($(du -sm "$VENV" | cut -f1) MB)"
fi

if [ "${GLANCE_SKIP_IMAGESTORE:-0}" != 1 ]; then
    # the checkout as it is now (a regular, non-editable install: a running Glance keeps
    # the code it started with); dependencies are already in the venv (stevedore, blake3)
    ilog=$(mktemp)
    if ! "$VENV/bin/python" -m pip install -q --disable-pip-version-check --no-deps --no-build-isolation \
            --force-reinstall "$REPO" >"$ilog" 2>&1; then
        tail -30 "$ilog" >&2; rm -f "$ilog"; die "installing imagestore from $REPO failed"
    fi
    rm -f "$ilog"
    "$VENV/bin/python" - <<'EOF' || die "imagestore's glance_store entry point is not installed in $VENV"
from importlib.metadata import entry_points
names = {ep.name: ep.value for ep in entry_points(group="glance_store.drivers")}
assert names.get("imagestore") == "imagestore.compat.glance_store_driver:Store", names.get("imagestore")
EOF
    log "imagestore installed from $REPO"
fi
echo "$VENV"
