"""Sources that fill the add pipeline's own buffers: a reader of a local file by its extents, a
converter's NBD export. Each chunk is read straight into a slot of the pipeline's buffer ring
(no buffer allocated per chunk, one copy from the kernel) or is a view of the shared zeros."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from typing import Protocol

__all__ = ["SlotSource", "Slots"]


class Slots(Protocol):
    """The buffers chunks are read into (``engine.hashing.BufferRing``)."""

    chunk_size: int

    def next(self) -> int: ...

    def buffer(self, slot: int) -> memoryview: ...


class SlotSource:
    """A stream whose chunks are read into the slots it is given (:meth:`chunks_into`); iterated
    directly, each chunk gets a buffer of its own."""

    chunk_size = 4 << 20

    def chunks_into(self, slots: Slots) -> Iterator[tuple[int, memoryview]]:
        """``(slot, view)`` pairs: ``view`` is in the slot's buffer, or of the shared zeros."""
        raise NotImplementedError

    def __iter__(self) -> Iterator[memoryview]:
        for _, view in self.chunks_into(_Fresh(self.chunk_size)):
            yield view


class _Fresh:
    """Slots that are new buffers each time (for a consumer without a ring)."""

    def __init__(self, chunk_size: int) -> None:
        self.chunk_size = chunk_size
        self._count = itertools.count()

    def next(self) -> int:
        return next(self._count)

    def buffer(self, slot: int) -> memoryview:
        return memoryview(bytearray(self.chunk_size))
