#!/usr/bin/env bash
# Install what the tests need (OS packages, Python test dependencies) and run the
# whole suite. The real services (XFS reflink mount, Ceph clusters) are started
# and stopped by the test fixtures through the scripts beside this one.
# Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."

pkgs="qemu-utils xfsprogs ceph-mon ceph-osd ceph-common uuid-runtime"
if [ "$(id -u)" = 0 ]; then
    missing=""
    for p in $pkgs; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing="$missing $p"
    done
    if [ -n "$missing" ]; then
        echo "[test.sh] apt install:$missing" >&2
        export DEBIAN_FRONTEND=noninteractive
        aptlog=$(mktemp)
        # shellcheck disable=SC2086
        if ! { apt-get -q -o DPkg::Lock::Timeout=600 update &&
               apt-get -q -o DPkg::Lock::Timeout=600 install -y --no-install-recommends $missing; } >"$aptlog" 2>&1; then
            tail -30 "$aptlog" >&2
            echo "[test.sh] apt could not install:$missing" >&2
            exit 1
        fi
        rm -f "$aptlog"
    fi
fi
python3 -m pip install -q -e '.[test,all]'

export IMAGESTORE_REQUIRE_SERVICES=${IMAGESTORE_REQUIRE_SERVICES:-1}
status=0
python3 -m pytest "$@" || status=$?
if [ "$status" = 5 ]; then
    echo "[test.sh] pytest collected no tests: that is a failure" >&2
    exit 1
fi
exit "$status"
