"""The generic helpers the S3 driver added to the shared part plumbing (drivers/chunked.py):
``run_parts`` (server-side copy parts) and ``call_retrying`` (one request inside a stream)."""

from __future__ import annotations

import threading
import time

import pytest

from imagestore.spi.parts import ThreadParts, call_retrying, run_parts
from imagestore.errors import Transient


def test_run_parts_keeps_order_bounds_concurrency_and_retries() -> None:
    pool = ThreadParts(8)
    lock = threading.Lock()
    running, peak, attempts = 0, 0, {i: 0 for i in range(12)}

    def part(i: int) -> int:
        nonlocal running, peak
        with lock:
            running += 1
            peak = max(peak, running)
            attempts[i] += 1
            fail = i % 5 == 0 and attempts[i] == 1  # parts 0, 5 and 10 fail once
        time.sleep(0.01)
        with lock:
            running -= 1
        if fail:
            raise Transient(f"part {i} hiccup")
        return i * 10

    def starter(i: int):  # type: ignore[no-untyped-def]
        return lambda: pool.run(part, i)

    try:
        out = run_parts([starter(i) for i in range(12)], concurrency=3, retries=2, backoff=0.001, label="t")
    finally:
        pool.close()
    assert out == [i * 10 for i in range(12)]
    assert peak <= 3
    assert [attempts[i] for i in (0, 5, 10)] == [2, 2, 2] and sum(attempts.values()) == 15


def test_run_parts_stops_at_a_part_that_keeps_failing() -> None:
    pool = ThreadParts(4)
    started: list[int] = []

    def part(i: int) -> int:
        started.append(i)
        if i == 1:
            raise Transient("always")
        time.sleep(0.01)
        return i

    try:
        with pytest.raises(Transient):
            run_parts([(lambda i=i: pool.run(part, i)) for i in range(20)], concurrency=2, retries=1,
                      backoff=0.001)
    finally:
        pool.close()
    assert started.count(1) == 2  # first try and one retry
    assert max(started) < 19, "parts after the failure were all started anyway"


def test_call_retrying() -> None:
    calls = []

    def flaky() -> str:
        calls.append(1)
        if len(calls) < 3:
            raise Transient("not yet")
        return "ok"

    assert call_retrying(flaky, retries=2, backoff=0.001, what="x") == "ok" and len(calls) == 3
    calls.clear()
    with pytest.raises(Transient):
        call_retrying(flaky, retries=1, backoff=0.001, what="x")
    with pytest.raises(ValueError):
        call_retrying(lambda: (_ for _ in ()).throw(ValueError("not retried")), retries=5, backoff=0.001, what="x")
