"""``Store.scrub`` on the memory driver: its rate limit on a virtual clock, the records it gives."""

from __future__ import annotations

import uuid

import pytest

import imagestore
from imagestore.store.ops import scrub as scrub_module
from imagestore.testing.payloads import payload


class Clock:
    """A clock that moves only when the code under test sleeps."""

    def __init__(self) -> None:
        self.now = 100.0
        self.slept: list[float] = []

    def monotonic(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


@pytest.fixture
def store() -> imagestore.Store:
    return imagestore.open_store({"driver": "memory", "namespace": f"scrub-{uuid.uuid4().hex[:8]}"}, "m")


def test_scrub_reads_no_faster_than_its_rate(store: imagestore.Store, monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("a", "b", "c"):
        store.add(name, payload(1_000_000, seed=ord(name)))
    clock = Clock()
    monkeypatch.setattr(scrub_module.time, "monotonic", clock.monotonic)
    monkeypatch.setattr(scrub_module.time, "sleep", clock.sleep)
    report = store.scrub(rate=500_000)  # 3 MB at 0.5 MB/s: six seconds of a clock that reading does not move
    assert report.bytes_read == 3_000_000 and report.checked == 3
    assert sum(clock.slept) == pytest.approx(6.0)
    clock.slept.clear()
    assert store.scrub().checked == 3 and clock.slept == []  # no rate: no wait


def test_scrub_records_an_image_it_cannot_verify(store: imagestore.Store) -> None:
    store.add("good", payload(1000, seed=1))
    namespace = store._driver._ns
    namespace.images["bare"] = (b"x" * 10, {})  # no digest, no checksum: as glance_store's drivers write
    seen: list[imagestore.Scrubbed] = []
    report = store.scrub(on_image=seen.append)
    assert [(s.image, s.status) for s in seen] == [("bare", "unverifiable"), ("good", "ok")]
    assert report.unverifiable == ("bare",) and report.checked == 1 and report.corrupt == ()
