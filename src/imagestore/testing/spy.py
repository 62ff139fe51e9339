"""Watching what a store asks of its driver: tests count the backend reads an operation makes."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from imagestore import Location, Store
from imagestore.store.tables import is_companion

__all__ = ["ReadCall", "record_reads"]


@dataclass(frozen=True)
class ReadCall:
    """One driver reader opened: which image, from which byte, for how many."""

    image: str
    offset: int
    length: int


def record_reads(store: Store) -> list[ReadCall]:
    """From now on, record every driver reader ``store`` opens on an image (one per backend read, or
    resume); the reads of block tables, which the store keeps beside its images, are not recorded."""
    calls: list[ReadCall] = []
    real = store._driver.open_reader

    def recording(loc: Location, offset: int, length: int) -> Any:
        if not is_companion(loc.image):
            calls.append(ReadCall(loc.image, offset, length))
        return real(loc, offset, length)

    store._driver.open_reader = recording  # type: ignore[method-assign,assignment]
    return calls
