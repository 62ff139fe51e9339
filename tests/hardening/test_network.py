"""Network faults between imagestore and real servers: the fault proxy (tests/services/
faultproxy.py) in front of moto, radosgw and the Swift SAIO drops requests and responses
mid-body, answers 5xx storms, stalls and throttles. Retries recover what is retryable,
the rest is one clear ImageStoreError, and no truncated read ever succeeds."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from imagestore import BackendUnavailable, ImageStoreError, NotFound, Store
from imagestore.testing.backends import Backend, S3Backend, SwiftBackend
from imagestore.testing.payloads import chunks, payload
from tests.services.faultproxy import FaultProxy, FaultProxyFactory

SIZE = (7 << 20) + 123  # over the S3 part size and several Swift segments
SETTINGS = {"retries": 3, "retry_backoff": 0.05, "auto_sweep": False, "chunk_size": "256K"}
RECOVER = "recover"

#: name -> (arm the proxy, operation, expected): "recover" or an error class
Arm = Callable[[FaultProxy], None]
CASES: dict[str, tuple[Arm, str, Any]] = {
    "response reset mid-body": (lambda p: p.drop_response(64 << 10), "get", RECOVER),
    "response cut mid-body (FIN)": (lambda p: p.drop_response(300 << 10, how="close"), "get", RECOVER),
    "503 storm on read": (lambda p: p.storm(2), "get", RECOVER),
    "500 storm on read": (lambda p: p.storm(2, 500), "get", RECOVER),
    "response stalled past the read timeout": (lambda p: p.stall(4.0, after=64 << 10), "get", RECOVER),
    "ranged response reset": (lambda p: p.drop_response(1000), "range", RECOVER),
    "throttled to 4 MB/s": (lambda p: p.throttle(4_000_000), "get", RECOVER),
    "request reset mid-body (upload)": (lambda p: p.drop_request(512 << 10), "add", RECOVER),
    "503 storm on upload": (lambda p: p.storm(2), "add", RECOVER),
    "every response reset": (lambda p: p.drop_response(64 << 10, times=None), "get", ImageStoreError),
    "every range reset": (lambda p: p.drop_response(100, times=None), "range", ImageStoreError),
    "503 forever on read": (lambda p: p.storm(None), "get", BackendUnavailable),
    "503 forever on upload": (lambda p: p.storm(None), "add", ImageStoreError),
}


def proxied(backend: Backend, proxy: FaultProxy) -> Store:
    """The backend's images store, talking through the proxy."""
    table = backend.table("images")
    if isinstance(backend, S3Backend):
        table["endpoint"] = proxy.endpoint
    elif isinstance(backend, SwiftBackend):
        url, _ = _swift_auth(backend)
        table["storage_url"] = proxy.endpoint + "/" + url.split("/", 3)[3]
    return backend_store(table)


def backend_store(table: dict[str, Any]) -> Store:
    import imagestore

    return imagestore.open_store({**table, **SETTINGS, "read_timeout": 2}, "images")


def _swift_auth(backend: SwiftBackend) -> tuple[str, str]:
    conn = backend.conn()
    try:
        url, token = conn.get_auth()
        return str(url), str(token)
    finally:
        conn.close()


def _target(backend: Backend) -> str:
    if isinstance(backend, S3Backend):
        return backend.endpoint
    assert isinstance(backend, SwiftBackend)
    return _swift_auth(backend)[0]


@pytest.fixture(params=["s3-moto", "s3-radosgw", "swift"])
def net_backend(request: pytest.FixtureRequest) -> Iterator[Backend]:
    name = {"s3-moto": "moto_backend", "s3-radosgw": "radosgw_backend", "swift": "swift_backend"}[request.param]
    yield request.getfixturevalue(name)


def test_network_faults(net_backend: Backend, fault_proxy: FaultProxyFactory, prefix: str) -> None:
    proxy = fault_proxy(_target(net_backend))
    store = proxied(net_backend, proxy)
    direct = net_backend.open("images", **SETTINGS)
    data = payload(SIZE, 11)
    ref = store.add(f"{prefix}-ref", chunks(data, 1 << 20), SIZE)
    failures = []
    try:
        for i, (name, (arm, op, expect)) in enumerate(CASES.items()):
            proxy.passthrough()
            arm(proxy)
            new = f"{prefix}-n{i}"
            try:
                if op == "get":
                    got = store.get(ref.location)
                    assert got == data, f"{name}: a read returned {len(got)} bytes that are not the image's"
                elif op == "range":
                    got = store.get(ref.location, SIZE // 3, SIZE // 2, verify=False)
                    assert got == data[SIZE // 3:SIZE // 3 + SIZE // 2], f"{name}: a ranged read returned wrong bytes"
                else:
                    store.add(new, chunks(data, 1 << 20), SIZE)
                outcome: Any = RECOVER
            except ImageStoreError as exc:
                outcome = exc
            fired = proxy.pending_faults == 0 or expect is not RECOVER
            if expect is RECOVER and outcome is not RECOVER:
                failures.append(f"{name}: {type(outcome).__name__}: {outcome}")
            elif expect is not RECOVER and not isinstance(outcome, expect):
                failures.append(f"{name}: expected {expect.__name__}, got {outcome!r}")
            elif not fired:
                failures.append(f"{name}: the fault never applied")
            proxy.passthrough()
            if op == "add":  # visible means whole
                try:
                    got = direct.get(new)  # by id: an s3 location names the proxy's endpoint
                except NotFound:
                    assert outcome is not RECOVER, f"{name}: add succeeded but the image is not there"
                else:
                    assert got == data, f"{name}: a visible image holds other bytes"
                    direct.delete(new)
        assert failures == []
        assert direct.get(f"{prefix}-ref") == data
    finally:
        proxy.passthrough()
        direct.delete(f"{prefix}-ref")
        store.close()
        direct.close()
