"""A Store's resources: a driver whose probe fails is closed, and the memo of verified clone sources
stays bounded in a long-lived process."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

import imagestore
from imagestore.store import memo
from imagestore.config import StoreSettings
from imagestore.spi.contract import DriverContext
from imagestore.drivers.memory import MemoryDriver
from imagestore.errors import Transient
from imagestore.testing.spy import record_reads


class ProbeFails(MemoryDriver):
    """A driver double whose capability probe fails (an endpoint that refuses); records close()."""

    def __init__(self, error: Exception) -> None:
        super().__init__("probe", namespace=f"probe-{uuid.uuid4().hex[:8]}")
        self.error = error
        self.closed = 0
        self.opens = 0

    def open(self, context: DriverContext) -> imagestore.Capabilities:
        self.opens += 1
        raise self.error

    def close(self) -> None:
        self.closed += 1


@pytest.mark.parametrize("error", [Transient("connection refused"), OSError(5, "I/O error"),
                                   imagestore.PermissionDenied("no"), RuntimeError("driver bug")])
def test_a_store_whose_probe_fails_closes_its_driver(error: Exception) -> None:
    driver = ProbeFails(error)
    settings = StoreSettings(retries=1, retry_backoff=0)
    with pytest.raises(imagestore.ImageStoreError):
        imagestore.Store(driver, settings)
    assert driver.opens == (2 if isinstance(error, Transient) else 1)
    assert driver.closed == 1


def test_a_failing_close_does_not_hide_the_probe_failure() -> None:
    driver = ProbeFails(Transient("refused"))

    def broken_close() -> None:
        driver.closed += 1
        raise RuntimeError("close failed too")

    driver.close = broken_close  # type: ignore[method-assign]
    with pytest.raises(imagestore.BackendUnavailable):
        imagestore.Store(driver, StoreSettings(retries=0))
    assert driver.closed == 1


def test_verify_source_memo_is_a_bounded_lru(tmp_path: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """The file driver has version tokens (inode, change time): a remembered version is not read
    again, and beyond VERIFIED_MEMO_SIZE the least recently used one is forgotten."""
    assert memo.VERIFIED_MEMO_SIZE == 4096  # the documented default
    monkeypatch.setattr(memo, "VERIFIED_MEMO_SIZE", 3)
    store = imagestore.open_store({"driver": "file", "root": str(tmp_path / "images")}, "files")
    for i in range(5):
        store.add(f"img{i}", f"image {i}".encode(), 7)
    reads = record_reads(store)
    for i in range(3):
        assert store.verify_source(f"img{i}") is True
    assert store.verify_source("img0") is False  # remembered; now the most recently used
    assert store.verify_source("img3") is True  # evicts img1, the least recently used
    assert store.verify_source("img4") is True  # evicts img2
    assert len(store._state.memo) == 3
    reads.clear()
    assert [store.verify_source(f"img{i}") for i in (0, 3, 4)] == [False, False, False]
    assert reads == []
    assert store.verify_source("img1") is True  # forgotten: read (and verified) again
    assert [r.image for r in reads] == ["img1"]
    assert len(store._state.memo) == 3
