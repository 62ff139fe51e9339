"""``Store.scrub`` on the memory driver: its rate limit on a virtual clock, the records it gives."""

from __future__ import annotations

import dataclasses
import uuid
from typing import Any

import pytest

import imagestore
from imagestore.store import tables
from imagestore.store.ops import scrub as scrub_module
from imagestore.testing.payloads import payload

MIB = 1 << 20


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
    namespace.images["bare"] = (b"x" * 10, {}, 0.0)  # no digest, no checksum: as glance_store's drivers write
    seen: list[imagestore.Scrubbed] = []
    report = store.scrub(on_image=seen.append)
    assert [(s.image, s.status) for s in seen] == [("bare", "unverifiable"), ("good", "ok")]
    assert report.unverifiable == ("bare",) and report.checked == 1 and report.corrupt == ()


def _strip_digest(store: imagestore.Store, name: str) -> None:
    """Make ``name`` look stored by an earlier version: no digest, no table (its table object goes)."""
    images = store._driver._ns.images
    data, meta, written = images[name]
    for table in [n for n in images if tables.is_companion(n) and n.endswith(f"-{name}")]:
        del images[table]
    images[name] = (data, {k: v for k, v in meta.items() if not k.startswith("integrity.")}, written)


def test_a_failed_metadata_update_leaves_no_table(store: imagestore.Store, monkeypatch: pytest.MonkeyPatch,
                                                  caplog: pytest.LogCaptureFixture) -> None:
    data = payload(3 * MIB + 1, seed=5)
    store.add("old", data)
    _strip_digest(store, "old")

    def broken(location: object, changes: object) -> None:
        raise imagestore.BackendError("the backend refused", store="m")

    monkeypatch.setattr(store._driver, "update_metadata", broken)
    seen: list[imagestore.Scrubbed] = []
    report = store.scrub(on_image=seen.append)
    assert [(s.status, s.backfilled) for s in seen] == [("failed", ())]
    assert "verified, but recording its digest and block table failed" in (seen[0].detail or "")
    assert report.failed == ("old",) and report.backfilled == ()
    assert sorted(store._driver._ns.images) == ["old"]  # the table written first was taken back
    assert store.stat("old").integrity is None


def test_an_image_replaced_during_the_scrub_gets_nothing(store: imagestore.Store,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    data = payload(2 * MIB, seed=6)
    store.add("old", data)
    _strip_digest(store, "old")
    real_stat = store._driver.stat
    calls = []

    def stat(location: Any) -> Any:  # the second stat (after the read) sees another image under the id
        calls.append(location)
        stored = real_stat(location)
        if location.image == "old" and len([c for c in calls if c.image == "old"]) > 1:
            return dataclasses.replace(stored, metadata={**stored.metadata, "checksum.md5": "0" * 32})
        return stored

    monkeypatch.setattr(store._driver, "stat", stat)
    seen: list[imagestore.Scrubbed] = []
    store.scrub(on_image=seen.append)
    assert seen[0].status == "failed" and "changed while it was scrubbed" in (seen[0].detail or "")
    monkeypatch.undo()
    assert store.stat("old").integrity is None and sorted(store._driver._ns.images) == ["old"]


def test_a_read_only_store_verifies_and_says_why_it_records_nothing() -> None:
    ns = f"scrub-ro-{uuid.uuid4().hex[:8]}"
    rw = imagestore.open_store({"driver": "memory", "namespace": ns}, "rw")
    rw.add("old", payload(1000, seed=7))
    _strip_digest(rw, "old")
    ro = imagestore.open_store({"driver": "memory", "namespace": ns, "read_only": True}, "ro")
    seen: list[imagestore.Scrubbed] = []
    report = ro.scrub(on_image=seen.append)
    assert [(s.status, s.algorithm, s.detail) for s in seen] == [
        ("ok", "sha512", "lacks its digest, not recorded: the store is read-only")]
    assert report.backfilled == () and ro.stat("old").integrity is None
    assert rw.scrub().backfilled == ("old",) and ro.stat("old").integrity is not None


def _damaged_table(store: imagestore.Store, data: bytes) -> tuple[str, bytes, imagestore.Store]:
    """Add ``img`` and flip a bit of its table object; returns the object's name, its good bytes,
    and a second process's store (no table cached)."""
    info = store.add("img", data)
    assert info.block_table is not None
    name = tables.companion("img", info.block_table)
    images = store._driver._ns.images
    table, meta, written = images[name]
    images[name] = (bytes([table[0] ^ 1]) + table[1:], meta, written)
    return name, table, imagestore.open_store({"driver": "memory", "namespace": store._driver.namespace}, "other")


def test_a_damaged_table_object_is_replaced(store: imagestore.Store) -> None:
    data = payload(3 * MIB, seed=8)
    name, table, other = _damaged_table(store, data)
    with pytest.raises(imagestore.ChecksumMismatch):  # a process without the table cached refuses ranges
        other.get("img", 5, 5)
    seen: list[imagestore.Scrubbed] = []
    other.scrub(on_image=seen.append)
    assert [(s.status, s.backfilled) for s in seen] == [("ok", ("table object",))]
    assert store._driver._ns.images[name][0] == table
    third = imagestore.open_store({"driver": "memory", "namespace": store._driver.namespace}, "third")
    assert third.get("img", 2 * MIB - 1, 2) == data[2 * MIB - 1:2 * MIB + 1]


def test_a_damaged_table_object_that_cannot_be_removed_is_not_reported_restored(
        store: imagestore.Store, monkeypatch: pytest.MonkeyPatch) -> None:
    name, table, other = _damaged_table(store, payload(3 * MIB, seed=9))
    real_delete = other._driver.delete

    def delete(location: Any) -> Any:
        if location.image == name:
            raise imagestore.BackendError("the backend refused", store="other")
        return real_delete(location)

    monkeypatch.setattr(other._driver, "delete", delete)
    seen: list[imagestore.Scrubbed] = []
    report = other.scrub(on_image=seen.append)
    assert [(s.status, s.backfilled) for s in seen] == [("failed", ())]
    assert "could not be removed, so it was not written again" in (seen[0].detail or "")
    assert report.failed == ("img",) and report.backfilled == ()
    assert store._driver._ns.images[name][0] != table  # still the damaged one: nothing claimed otherwise
