"""Helpers of the S3 driver's tests: stores on a test server's bucket, the driver's leftovers."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

import imagestore
from imagestore.testing.backends.s3 import leftovers_in
from imagestore.testing.payloads import payload  # noqa: F401 - the tests of this directory import it from here
from tests.services.s3 import S3Server

MiB = 1 << 20

Opener = Callable[..., imagestore.Store]


def s3_spec(server: S3Server, bucket: str, *, endpoint: str | None = None, env: str = "IMAGESTORE_TEST_S3",
            **options: Any) -> dict[str, Any]:
    """A store table for ``bucket`` on ``server`` (through ``endpoint``, e.g. a fault proxy)."""
    return {"driver": "s3", "endpoint": endpoint or server.endpoint, "region": server.region, "bucket": bucket,
            "access_key": {"env": f"{env}_ACCESS"}, "secret_key": {"env": f"{env}_SECRET"},
            "heartbeat": 1, "connect_timeout": 2, "read_timeout": 10, **options}


@pytest.fixture
def open_s3(s3_server: S3Server, s3_bucket: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[Opener]:
    """``open_s3(**options)``: a store on the test bucket (closed after the test)."""
    monkeypatch.setenv("IMAGESTORE_TEST_S3_ACCESS", s3_server.access_key)
    monkeypatch.setenv("IMAGESTORE_TEST_S3_SECRET", s3_server.secret_key)
    made: list[imagestore.Store] = []

    def make(name: str = "s3", **options: Any) -> imagestore.Store:
        store = imagestore.open_store(s3_spec(s3_server, options.pop("bucket", s3_bucket), **options), name)
        made.append(store)
        return store

    yield make
    for store in made:
        store.close()


def uploads(client: Any, bucket: str) -> list[str]:
    """Keys of the bucket's open multipart uploads (ListMultipartUploads)."""
    return [u["Key"] for u in client.list_multipart_uploads(Bucket=bucket).get("Uploads", [])]


def leftovers(client: Any, bucket: str) -> list[str]:
    """Open uploads and unpublished objects of the driver (see tests/conformance/test_s3.py)."""
    return leftovers_in(client, bucket)


from tests.conformance.conftest import qcow2_with_backing  # noqa: E402,F401 - the fixture, for these tests too


@pytest.fixture
def rgw_bucket(radosgw: S3Server) -> Iterator[str]:
    """A fresh bucket on radosgw alone (for what only radosgw checks: signatures, permissions)."""
    from tests.services.s3 import temporary_bucket

    with temporary_bucket(radosgw, "imagestore-rgw") as bucket:
        yield bucket
