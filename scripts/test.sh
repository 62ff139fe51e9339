#!/usr/bin/env bash
# Install what the tests need and run the whole suite in a virtual environment
# that this script creates itself (.venv), so that nothing installed elsewhere on
# the machine can hide a missing dependency. OS packages come from apt (as root);
# the real services (XFS reflink mount, Ceph clusters, ...) are started and
# stopped by the test fixtures through the scripts beside this one.
# Extra arguments go to pytest.
#
# Environment: IMAGESTORE_VENV (default: .venv in the checkout) chooses the venv;
# IMAGESTORE_EXTRAS (default: test,all) the extras installed into it.
set -euo pipefail
cd "$(dirname "$0")/.."

pkgs="qemu-utils qemu-block-extra xfsprogs ceph-mon ceph-osd ceph-common uuid-runtime radosgw memcached curl"
if [ "$(id -u)" = 0 ]; then
    missing=""
    for p in $pkgs; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing="$missing $p"
    done
    if [ -n "$missing" ]; then
        echo "[test.sh] apt install:$missing" >&2
        export DEBIAN_FRONTEND=noninteractive
        aptlog=$(mktemp)
        apt=(apt-get -q -o DPkg::Lock::Timeout=600)
        # shellcheck disable=SC2086
        if ! { "${apt[@]}" update && "${apt[@]}" install -y --no-install-recommends $missing; } >"$aptlog" 2>&1; then
            tail -30 "$aptlog" >&2
            echo "[test.sh] apt could not install:$missing" >&2
            exit 1
        fi
        rm -f "$aptlog"
    fi
fi

venv=${IMAGESTORE_VENV:-.venv}
extras=${IMAGESTORE_EXTRAS:-test,all}
if [ ! -x "$venv/bin/python" ] || ! "$venv/bin/python" -c 'import sys; sys.exit(sys.prefix == sys.base_prefix)'; then
    rm -rf "$venv"
    python3 -m venv "$venv"
fi
echo "[test.sh] installing .[$extras] into $venv" >&2
"$venv/bin/python" -m pip install -q --upgrade pip >/dev/null
"$venv/bin/python" -m pip install -q -e ".[$extras]"

export IMAGESTORE_REQUIRE_SERVICES=${IMAGESTORE_REQUIRE_SERVICES:-1}
status=0
"$venv/bin/python" -m pytest "$@" || status=$?
if [ "$status" = 5 ]; then
    echo "[test.sh] pytest collected no tests: that is a failure" >&2
    exit 1
fi
exit "$status"
