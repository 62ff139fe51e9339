"""An S3 store whose endpoint refuses when the store opens (the capability probe) releases its
driver: the botocore client's connection pools are closed, not left to the garbage collector."""

from __future__ import annotations

from typing import Any

import pytest

import imagestore
from imagestore.drivers.s3 import S3Driver
from tests.services.ports import free_port


def test_refused_endpoint_closes_the_driver(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("IMAGESTORE_TEST_REFUSED_ACCESS", "AKIAREFUSEDREFUSED00")
    monkeypatch.setenv("IMAGESTORE_TEST_REFUSED_SECRET", "refused-secret-refused-secret-0000000000")
    drivers: list[S3Driver] = []
    pools: list[Any] = []
    real_close = S3Driver.close

    def recording_close(self: S3Driver) -> None:
        drivers.append(self)
        raw = self._client.raw if self._client is not None else None  # the botocore client
        manager = raw._endpoint.http_session._manager if raw is not None else None  # urllib3 PoolManager
        pools.append(manager)
        real_close(self)

    monkeypatch.setattr(S3Driver, "close", recording_close)
    spec = {"driver": "s3", "endpoint": f"http://127.0.0.1:{free_port()}", "region": "us-east-1",
            "bucket": "images", "access_key": {"env": "IMAGESTORE_TEST_REFUSED_ACCESS"},
            "secret_key": {"env": "IMAGESTORE_TEST_REFUSED_SECRET"}, "connect_timeout": 1, "retries": 0}
    with pytest.raises(imagestore.BackendUnavailable) as err:
        imagestore.open_store(spec, "refused")
    assert "'refused'" in str(err.value)
    assert len(drivers) == 1, "the driver of a store that failed to open was never closed"
    assert pools[0] is not None and len(pools[0].pools) == 0  # every connection pool released
