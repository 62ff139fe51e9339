"""locate(): a presigned GET URL that needs nothing else to fetch (urllib, curl --range)."""

from __future__ import annotations

import shutil
import subprocess
import time
import urllib.error
import urllib.request
from datetime import UTC, datetime

import pytest

from imagestore import Unsupported
from imagestore.testing.conformance import assert_expires
from tests.services.s3 import S3Server

from .conftest import MiB, Opener, payload


@pytest.mark.parametrize("size", [MiB + 5, 13 * MiB + 7], ids=["inline", "multipart"])
def test_presigned_url_with_urllib_and_curl(open_s3: Opener, size: int) -> None:
    store = open_s3(part_size="5M", single_put_threshold="5M")
    data = payload(size, seed=size)
    info = store.add("img", iter([data[i:i + MiB] for i in range(0, len(data), MiB)]))
    before = datetime.now(UTC)
    access = store.locate(info.location, ttl=600)
    after = datetime.now(UTC)
    assert access.kind == "url" and access.url and access.expires_at is not None
    assert_expires(access, before, after, 600)
    assert "X-Amz-Signature=" in access.url and "hidden" in repr(access)
    with urllib.request.urlopen(access.url, timeout=30) as resp:  # noqa: S310 - the test server
        assert resp.read() == data
    curl = shutil.which("curl")
    assert curl, "curl is needed for this test (apt install curl)"
    first, last = size // 3, size - 1000
    out = subprocess.run([curl, "-sS", "--fail", "--range", f"{first}-{last}", access.url], capture_output=True,
                         timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout == data[first:last + 1]


def test_default_ttl_and_limits(open_s3: Opener) -> None:
    store = open_s3(presign_ttl="2h")
    info = store.add("img", b"abc", 3)
    before = datetime.now(UTC)
    access = store.locate(info.location)
    assert_expires(access, before, datetime.now(UTC), 7200)
    with pytest.raises(Unsupported):
        store.locate(info.location, ttl=8 * 86400)  # SigV4 URLs last at most 7 days


def test_expired_url_is_refused_by_radosgw(open_s3: Opener, s3_server: S3Server) -> None:
    """radosgw checks the expiry (403 once past); moto does not check it at all."""
    store = open_s3()
    info = store.add("img", b"short-lived", 11)
    url = store.locate(info.location, ttl=1).url
    assert url
    time.sleep(2.1)  # X-Amz-Date has 1 s resolution
    try:
        with urllib.request.urlopen(url, timeout=30) as resp:  # noqa: S310
            status = resp.status
    except urllib.error.HTTPError as exc:
        status = exc.code
    assert status == (403 if s3_server.name == "radosgw" else 200)
