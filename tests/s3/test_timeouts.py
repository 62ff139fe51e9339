"""The store's ``io_timeout`` and ``connect_timeout`` reach botocore, which does not retry on top
of the facade: a stalled endpoint fails after ``retries`` + 1 attempts, counted at a proxy."""

from __future__ import annotations

from typing import Any

import pytest

import imagestore
from imagestore import BackendUnavailable
from tests.services.faultproxy import FaultProxyFactory
from tests.services.s3 import S3Server

from .conftest import s3_spec


def _spec(server: S3Server, bucket: str, **options: Any) -> dict[str, Any]:
    """A table without the driver's own timeouts: the store's apply."""
    table = s3_spec(server, bucket, **options)
    for key in ("connect_timeout", "read_timeout"):
        if key not in options:
            table.pop(key, None)
    return table


def test_a_stalled_endpoint_fails_after_retries_plus_one_attempts_bounded_by_io_timeout(
        s3_server: S3Server, s3_bucket: str, fault_proxy: FaultProxyFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("IMAGESTORE_TEST_S3_ACCESS", s3_server.access_key)
    monkeypatch.setenv("IMAGESTORE_TEST_S3_SECRET", s3_server.secret_key)
    proxy = fault_proxy(s3_server)
    store = imagestore.open_store(_spec(s3_server, s3_bucket, endpoint=proxy.endpoint, io_timeout=0.5,
                                        connect_timeout=3, retries=2, retry_backoff=0.01, auto_sweep=False), "slow")
    try:
        config = store._driver.client.raw.meta.config  # type: ignore[attr-defined]
        assert (config.connect_timeout, config.read_timeout) == (3.0, 0.5)
        assert config.retries["total_max_attempts"] == 1  # botocore never resends: the facade does
        store.add("img", b"data", 4)
        proxy.reset_counters()
        proxy.stall(30, times=None)  # every answer held back far longer than io_timeout
        with pytest.raises(BackendUnavailable) as err:
            store.stat("img")
        assert proxy.requests == 3, proxy.requests  # retries=2: three attempts, each ended by io_timeout
        assert "'slow'" in str(err.value) and "img" in str(err.value)
        proxy.passthrough()
    finally:
        store.close()


def test_the_drivers_read_timeout_overrides_the_stores_io_timeout(
        s3_server: S3Server, s3_bucket: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("IMAGESTORE_TEST_S3_ACCESS", s3_server.access_key)
    monkeypatch.setenv("IMAGESTORE_TEST_S3_SECRET", s3_server.secret_key)
    stores = [imagestore.open_store(_spec(s3_server, s3_bucket, **options), "t")
              for options in ({}, {"io_timeout": 5}, {"io_timeout": 5, "read_timeout": 7})]
    try:
        seen = [(s._driver.client.raw.meta.config.connect_timeout,  # type: ignore[attr-defined]
                 s._driver.client.raw.meta.config.read_timeout) for s in stores]  # type: ignore[attr-defined]
        assert seen == [(10.0, 60.0), (10.0, 5.0), (10.0, 7.0)]  # one default for every driver: 10 s, 60 s
    finally:
        for s in stores:
            s.close()
