"""The store's ``io_timeout`` and ``connect_timeout`` reach the Swift driver's requests (and its
authentication), and requests does not retry on top of the facade: a stalled proxy fails an
operation after ``retries`` + 1 attempts, counted at a fault proxy."""

from __future__ import annotations

import pytest

from imagestore import BackendUnavailable
from tests.services.faultproxy import FaultProxyFactory

from .area import SwiftArea


def test_a_stalled_proxy_fails_after_retries_plus_one_attempts_bounded_by_io_timeout(
        area: SwiftArea, fault_proxy: FaultProxyFactory) -> None:
    proxy = fault_proxy("127.0.0.1", area.saio.proxy_port)
    store = area.store(auth_url=f"{proxy.endpoint}/auth/v1.0", io_timeout=0.5, connect_timeout=3, retries=2,
                       retry_backoff=0.01, auto_sweep=False)
    driver = store._driver
    assert driver.http.timeout == (3.0, 0.5)  # type: ignore[attr-defined]
    assert driver.auth._timeout == (3.0, 0.5)  # type: ignore[attr-defined]
    adapter = driver.http.session.get_adapter("http://x")  # type: ignore[attr-defined]
    assert adapter.max_retries.total == 0  # requests never resends: the facade does
    info = store.add("img", b"data", 4)
    proxy.reset_counters()
    proxy.stall(30, times=None)  # every answer held back far longer than io_timeout
    with pytest.raises(BackendUnavailable) as err:
        store.stat(info.location)
    assert proxy.requests == 3, proxy.requests  # retries=2: three attempts, each ended by io_timeout
    assert "'main'" in str(err.value) and "img" in str(err.value)
    proxy.passthrough()


def test_the_drivers_read_timeout_overrides_the_stores_io_timeout(area: SwiftArea) -> None:
    seen = [area.store(name=f"t{i}", **options)._driver.http.timeout  # type: ignore[attr-defined]
            for i, options in enumerate(({}, {"io_timeout": 5}, {"io_timeout": 5, "read_timeout": 7}))]
    assert seen == [(10.0, 60.0), (10.0, 5.0), (10.0, 7.0)]  # one default for every driver: 10 s, 60 s
