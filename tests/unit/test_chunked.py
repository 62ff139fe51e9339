"""The shared part uploader and read-ahead reader (used by rbd, s3 and swift)."""

from __future__ import annotations

import threading
import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from imagestore.spi.parts import ChunkedUploader, PartSizes, ReadAhead, ThreadParts, done
from imagestore.errors import ImageTooLarge, Transient
from imagestore.spi.zeros import is_known_zero, zeros

MiB = 1 << 20
TiB = 1 << 40


class Sink:
    """Records parts; can fail chosen (index, attempt) pairs and hold parts until released."""

    def __init__(self, fail: dict[int, int] | None = None, hold: bool = False) -> None:
        self.parts: dict[int, bytes] = {}
        self.attempts: dict[int, int] = {}
        self.fail = fail or {}
        self.hold = threading.Event()
        if not hold:
            self.hold.set()
        self.started = 0
        self.lock = threading.Lock()
        self.pool = ThreadParts(8)

    def _send(self, index: int, data: bytes) -> int:
        self.hold.wait(10)
        with self.lock:
            self.attempts[index] = self.attempts.get(index, 0) + 1
            if self.attempts[index] <= self.fail.get(index, 0):
                raise Transient(f"part {index} attempt {self.attempts[index]} failed")
            self.parts[index] = data
        return index

    def start(self, index: int, offset: int, data: memoryview):  # type: ignore[no-untyped-def]
        self.started += 1
        return self.pool.run(self._send, index, bytes(data))


def test_parts_are_cut_in_order_and_results_returned_in_order() -> None:
    sink = Sink()
    up = ChunkedUploader(sink.start, PartSizes(1000), concurrency=3)
    data = bytes(range(256)) * 20  # 5120 bytes
    for i in range(0, len(data), 333):
        up.write(data[i:i + 333])
    assert up.finish() == [0, 1, 2, 3, 4, 5]
    assert b"".join(sink.parts[i] for i in range(6)) == data and len(sink.parts[5]) == 120


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(["known", "zeros", "data"]), st.integers(min_value=1, max_value=2500)),
                max_size=12), st.booleans())
def test_known_zeros_are_not_copied_and_every_part_is_what_was_written(writes: list[tuple[str, int]],
                                                                         single: bool) -> None:
    """A part of nothing but known zeros goes out as a view of the shared zero buffer (no copy);
    a part that mixes them with anything else is copied whole. Either way, the bytes are right."""
    sent: list[tuple[bytes, bool]] = []

    def start(index: int, offset: int, data: memoryview):  # type: ignore[no-untyped-def]
        sent.append((bytes(data), is_known_zero(data)))
        return done(index)

    def one(data: memoryview) -> int:
        return start(0, 0, data).wait()  # type: ignore[no-any-return]

    up = ChunkedUploader(start, PartSizes(1000), concurrency=2, single=one if single else None)
    expected = bytearray()
    known = bytearray()  # which bytes came as known zeros
    for kind, n in writes:
        chunk = zeros(n) if kind == "known" else bytes(n) if kind == "zeros" else bytes([7]) * n
        up.write(chunk)
        expected += chunk
        known += bytes([kind == "known"]) * n
    up.finish()
    assert b"".join(part for part, _ in sent) == expected
    at = 0
    for part, shared in sent:
        assert shared == (len(part) > 0 and all(known[at:at + len(part)]))
        at += len(part)


def test_back_pressure_bounds_what_is_read_ahead() -> None:
    """With every buffer in flight, write blocks: the source is never read further ahead."""
    sink = Sink(hold=True)
    up = ChunkedUploader(sink.start, PartSizes(MiB), concurrency=2)
    written = 0

    def produce() -> None:
        nonlocal written
        for _ in range(10):
            up.write(b"x" * MiB)
            written += MiB

    thread = threading.Thread(target=produce)
    thread.start()
    time.sleep(0.5)
    # two parts in flight and the third being waited for: at most concurrency + 1 parts taken
    assert written <= 3 * MiB and sink.started == 2
    sink.hold.set()
    thread.join(10)
    assert written == 10 * MiB
    assert len(up.finish()) == 10


def test_a_failing_part_is_retried_then_the_upload_fails() -> None:
    sink = Sink(fail={1: 2})
    up = ChunkedUploader(sink.start, PartSizes(100), concurrency=2, retries=2, backoff=0)
    up.write(b"a" * 350)
    assert up.finish() == [0, 1, 2, 3] and sink.attempts[1] == 3 and up.retried == 2
    sink = Sink(fail={2: 5})
    up = ChunkedUploader(sink.start, PartSizes(100), concurrency=2, retries=2, backoff=0)
    with pytest.raises(Transient):
        up.write(b"a" * 1000)
        up.finish()
    up.abort()
    assert sink.attempts[2] == 3


class Once:
    """A pending that may be waited for once (a polled librbd completion is released by its wait)."""

    def __init__(self, index: int, failing: bool, waits: dict[int, int]) -> None:
        self.index, self.failing, self.waits = index, failing, waits

    def wait(self) -> int:
        self.waits[self.index] = self.waits.get(self.index, 0) + 1
        assert self.waits[self.index] == 1, f"part {self.index} waited for twice"
        if self.failing:
            raise OSError("the part failed for good")
        return self.index


def test_a_part_that_failed_for_good_is_not_waited_for_again_by_abort() -> None:
    waits: dict[int, int] = {}
    up = ChunkedUploader(lambda i, off, data: Once(i, i == 1, waits), PartSizes(100), concurrency=3,
                         retries=0, backoff=0)
    with pytest.raises(OSError, match="for good"):
        up.write(b"a" * 1000)
    up.abort()  # waits for the parts still in flight, each once; never the failed one again
    assert waits == {0: 1, 1: 1, 2: 1, 3: 1}


def test_abort_waits_for_parts_in_flight() -> None:
    sink = Sink(hold=True)
    up = ChunkedUploader(sink.start, PartSizes(10), concurrency=4)
    up.write(b"z" * 35)
    threading.Timer(0.2, sink.hold.set).start()
    up.abort()  # returns once the started parts are done: nothing keeps writing behind our back
    settled = dict(sink.parts)
    time.sleep(0.3)
    assert sink.parts == settled
    with pytest.raises(ValueError):
        up.write(b"more")


def test_single_put_below_the_first_part() -> None:
    sink = Sink()
    singles: list[bytes] = []
    up = ChunkedUploader(sink.start, PartSizes(1000), concurrency=2,
                         single=lambda view: singles.append(bytes(view)) or -1)
    up.write(b"small")
    assert up.finish() == [-1] and singles == [b"small"] and sink.started == 0


def test_unknown_size_reaches_5_tib_within_10000_parts() -> None:
    sizes = PartSizes(16 * MiB, grow_every=500, factor=2, largest=5 << 30, max_parts=10_000)
    capacity = sizes.capacity()
    assert capacity is not None and capacity >= 5 * TiB
    assert sizes.size_of(0) == sizes.size_of(499) == 16 * MiB and sizes.size_of(500) == 32 * MiB
    assert sizes.size_of(9_999) == 5 << 30
    assert sum(sizes.size_of(i) for i in range(10_000)) == capacity
    fixed = PartSizes(16 * MiB, max_parts=10_000)
    assert fixed.capacity() == 10_000 * 16 * MiB


def test_part_sizes_grow_and_the_part_limit_is_enforced() -> None:
    sink = Sink()
    up = ChunkedUploader(sink.start, PartSizes(10, grow_every=2, factor=2, largest=40, max_parts=5),
                         concurrency=2)
    up.write(b"q" * (10 + 10 + 20 + 20 + 40))
    assert up.finish() == [0, 1, 2, 3, 4]
    assert [len(sink.parts[i]) for i in range(5)] == [10, 10, 20, 20, 40]
    up = ChunkedUploader(Sink().start, PartSizes(10, max_parts=3), concurrency=2, label="store 's'")
    with pytest.raises(ImageTooLarge, match="more than 3 parts"):
        up.write(b"q" * 41)
    up.abort()


def test_memory_budget_narrows_the_window_as_parts_grow() -> None:
    sink = Sink(hold=True)
    up = ChunkedUploader(sink.start, PartSizes(10, grow_every=1, factor=4, largest=160), concurrency=8,
                         memory_budget=100)
    thread = threading.Thread(target=lambda: up.write(b"w" * (10 + 40 + 160 + 160)))
    thread.start()
    time.sleep(0.3)
    assert sink.started <= 3  # 10 + 40 fit the budget; a 160-byte part waits for room
    sink.hold.set()
    thread.join(10)
    up.finish()


def test_read_ahead_keeps_depth_reads_in_flight_and_reads_everything() -> None:
    data = bytes(range(256)) * 100
    inflight, peak = 0, 0
    lock = threading.Lock()
    pool = ThreadParts(4)

    def fetch(at: int, n: int, buf: bytearray) -> int:
        nonlocal inflight, peak
        with lock:
            inflight += 1
            peak = max(peak, inflight)
        time.sleep(0.01)
        buf[:n] = data[at:at + n]
        with lock:
            inflight -= 1
        return n

    reader = ReadAhead(lambda at, n, buf: pool.run(fetch, at, n, buf), 100, 20_000, piece=1000, depth=4)
    out = b""
    while chunk := reader.read(777):
        out += chunk
    reader.close()
    assert out == data[100:20_100] and 2 <= peak <= 4


def test_read_ahead_short_piece_is_transient() -> None:
    reader = ReadAhead(lambda at, n, buf: done(n - 1), 0, 100, piece=50, depth=2)
    with pytest.raises(Transient):
        reader.read(10)
    reader.close()
