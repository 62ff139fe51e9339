"""The RBD driver's reader: a snapshot read with object-sized aio reads kept ``concurrency``
deep ahead (through :class:`~imagestore.spi.parts.ReadAhead`) while the caller hashes or sends data."""

from __future__ import annotations

from ...spi.parts import Pending, ReadAhead
from .aio import AioPending
from .core import RbdStore

__all__ = ["RbdReader"]


class RbdReader(ReadAhead):
    """Reads a snapshot with object-sized aio reads kept ``concurrency`` deep ahead."""

    def __init__(self, driver: RbdStore, pool: str, name: str, snap: str, offset: int, length: int) -> None:
        img = driver.cluster.open(pool, name, snap=snap, read_only=True)
        try:
            size = img.size()
            start = min(offset, size)
            end = min(size, start + length)

            def read_at(at: int, n: int, buf: bytearray) -> Pending[int]:
                return AioPending(img.aio_read(at, buf, n), "rbd_aio_read", driver.name, name)

            super().__init__(read_at, start, end - start, piece=driver.chunk, depth=driver.write_concurrency,
                             on_close=img.close)
        except BaseException:
            img.close()
            raise
