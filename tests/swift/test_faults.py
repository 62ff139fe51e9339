"""Faults on a real Swift: a connection cut mid-body, a proxy that is down, a wrong key, a full
quota, a token that expires in the middle of a transfer, 503s on segment PUTs."""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

import imagestore
from imagestore import BackendUnavailable, NoSpace, NotFound, PermissionDenied
from imagestore.drivers.swift import SwiftDriver
from imagestore.testing.payloads import chunks, payload
from tests.services.faultproxy import FaultProxyFactory, Request

from .area import MiB, SwiftArea
from .conftest import forget_token


def _segment_get(index: int | None = None) -> Callable[[Request], bool]:
    def match(req: Request) -> bool:
        tail = "" if index is None else f"/{index:08d}"
        return req.method == "GET" and "_segments/" in req.path and req.path.endswith(tail)

    return match


def test_connection_dropped_mid_body_resumes_at_that_byte(area: SwiftArea, fault_proxy: FaultProxyFactory) -> None:
    """Reads of 1.5 MiB over 1 MiB segments, one at a time: the read [4.5 MiB, 6 MiB) asks for
    the second half of segment 4 and all of segment 5; segment 5's body is cut twice. The
    stream resumes twice at byte 4.5 MiB (what it had delivered) and the image is whole."""
    proxy = fault_proxy("127.0.0.1", area.saio.proxy_port)
    auth = f"{proxy.endpoint}/auth/v1.0"
    store = area.store(auth_url=auth, concurrency=1, chunk_size="1536K")
    data = payload(9 * MiB + 5, seed=1)
    info = store.add("img", data)
    assert store._driver.auth.storage_url.startswith(proxy.endpoint)  # type: ignore[attr-defined]
    proxy.reset_counters()
    proxy.drop_response(after=MiB // 2 + 3, times=2, match=_segment_get(5))
    with store.open(info.location) as reader:  # verified at the end
        assert b"".join(reader) == data
        assert reader.resumes == 2
    gets = [(r.path.rsplit("/", 1)[1], r.headers.get("range"), r.fault) for r in proxy.log if _segment_get()(r)]
    cut = [i for i, g in enumerate(gets) if g[2] == "drop_response"]
    assert len(cut) == 2
    for i in cut:
        assert gets[i][:2] == ("00000005", f"bytes=0-{MiB - 1}")
        assert gets[i + 1][:2] == ("00000004", f"bytes={MiB // 2}-{MiB - 1}")  # from byte 4.5 MiB again

    # a connection that keeps breaking is BackendUnavailable after the retries: never a short image
    proxy.drop_response(after=1000, times=None, match=_segment_get())
    with pytest.raises(BackendUnavailable), store.open(info.location, verify=False) as reader:
        reader.read()
    proxy.passthrough()
    assert store.get(info.location, 3 * MiB, MiB) == data[3 * MiB:4 * MiB]


def test_503_on_segment_puts_are_retried(area: SwiftArea, fault_proxy: FaultProxyFactory) -> None:
    proxy = fault_proxy("127.0.0.1", area.saio.proxy_port)
    store = area.store(auth_url=f"{proxy.endpoint}/auth/v1.0")
    data = payload(4 * MiB + 1, seed=2)
    proxy.storm(times=2, status=503, body=b"busy", content_type="text/plain",
                match=lambda r: r.method == "PUT" and r.path.endswith("/00000001"))
    info = store.add("img", chunks(data, MiB))
    puts = [r for r in proxy.log if r.method == "PUT" and r.path.endswith("/00000001")]
    assert [r.status for r in puts] == [503, 503, 201]  # the same segment, sent again
    assert store.get(info.location) == data
    assert area.leftovers() == []


def test_proxy_down_is_backend_unavailable_after_bounded_retries(area: SwiftArea,
                                                                  fault_proxy: FaultProxyFactory) -> None:
    """Bounded: each operation gives up after ``retries`` + 1 connection attempts (counted by a
    proxy in front of a port where nothing listens), never by a clock."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        dead = s.getsockname()[1]  # nothing listens there once the socket is closed
    with pytest.raises(BackendUnavailable) as err:
        imagestore.open_store(area.spec(auth_url=f"http://127.0.0.1:{dead}/auth/v1.0", retries=2,
                                        retry_backoff=0.1), "down")
    assert "connection refused" in str(err.value) and "'down'" in str(err.value)
    nowhere = fault_proxy("127.0.0.1", dead)
    with pytest.raises(BackendUnavailable):
        imagestore.open_store(area.spec(auth_url=f"{nowhere.endpoint}/auth/v1.0", retries=2, retry_backoff=0.01),
                              "down")
    assert nowhere.upstream_failures == 3

    proxy = fault_proxy("127.0.0.1", area.saio.proxy_port)
    store = area.store(auth_url=f"{proxy.endpoint}/auth/v1.0", retries=2, retry_backoff=0.01)
    info = store.add("img", b"before the outage", 17)
    proxy.retarget("127.0.0.1", dead)  # the Swift proxy is gone for this client
    attempts = []
    for op in (lambda: store.stat(info.location), lambda: store.get(info.location),
               lambda: store.add("new", b"during", 6), lambda: store.delete(info.location)):
        proxy.reset_counters()
        with pytest.raises(BackendUnavailable):
            op()
        attempts.append(proxy.upstream_failures)
    assert attempts == [3, 3, 3, 3], attempts  # retries=2: three attempts, then BackendUnavailable


def test_wrong_password_is_permission_denied_without_the_secret(area: SwiftArea, caplog: Any) -> None:
    caplog.set_level(logging.DEBUG)
    secret = "not-the-password-4b1d"
    os.environ["IMAGESTORE_TEST_WRONG_KEY"] = secret
    with pytest.raises(PermissionDenied) as err:
        imagestore.open_store(area.spec(key={"env": "IMAGESTORE_TEST_WRONG_KEY"}), "wrong")
    text = str(err.value)
    assert "test2:tester2" in text and area.saio.auth_url in text
    for shown in (text, repr(err.value), caplog.text):
        assert secret not in shown and area.saio.key2 not in shown


def test_quota_full_is_no_space_and_leaves_nothing(area: SwiftArea) -> None:
    store = area.store()
    container, segments = area.container(), area.container() + "_segments"
    area.conn.post_container(segments, headers={"X-Container-Meta-Quota-Bytes": str(MiB // 2)})
    area.conn.post_container(container, headers={"X-Container-Meta-Quota-Bytes": "100000"})
    time.sleep(1.2)  # the proxy caches container info for 1 s on this SAIO
    with pytest.raises(NoSpace) as err:
        store.add("segmented", payload(6 * MiB, seed=3))
    assert "quota" in str(err.value)
    with pytest.raises(NoSpace):
        store.add("plain", payload(500_000, seed=4), 500_000)
    for image in ("segmented", "plain"):
        with pytest.raises(NotFound):
            store.stat(image)
    assert area.leftovers() == [] and area.objects(segments) == [] and area.objects(container) == []
    store.add("fits", b"x" * 1000, 1000)  # the store still works below the quota


def test_token_expiring_mid_upload_and_mid_read_is_renewed(area: SwiftArea) -> None:
    store = area.store(segment_size="1M", chunk_size="1M")  # 1 MiB reads: some start after the token is gone
    driver = store._driver
    assert isinstance(driver, SwiftDriver)
    data = payload(12 * MiB + 7, seed=5)
    forgot = threading.Event()

    def source() -> Iterator[bytes]:
        for i, chunk in enumerate(chunks(data, MiB)):
            if i == 5:
                _, token = driver.auth.credentials()
                forget_token(area.saio, token)
                forgot.set()
            yield chunk

    before = driver.auth.renewals
    info = store.add("img", source())
    assert forgot.is_set() and driver.auth.renewals == before + 1
    with store.open(info.location) as reader:
        first = reader.read(2 * MiB)
        forget_token(area.saio, driver.auth.credentials()[1])
        rest = b"".join(reader)
    assert first + rest == data and driver.auth.renewals == before + 2
    assert area.leftovers() == []
