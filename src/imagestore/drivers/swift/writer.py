"""The upload writer of the Swift driver: segments through the shared part uploader, then
the claimed publish of :mod:`.publisher`.

Segment PUTs go through :mod:`imagestore.spi.parts`: the store's ``concurrency`` in flight, each
from a buffer of its own and resent on a transient failure, segment sizes growing so
that the SLO's segment limit still reaches the cluster's largest object. A stream that
ends within its first segment (and fits ``large_object_threshold``) is one plain PUT
instead; any failure or abort deletes the segments written.
"""

from __future__ import annotations

from collections.abc import Mapping

from ...location import Location
from ...spi.parts import ChunkedUploader, PartSizes, Pending, ThreadParts
from .core import SwiftCore
from .publisher import Inline, Publisher, Segment

__all__ = ["SwiftWriter"]


class SwiftWriter(Publisher):
    """An upload of one image: segments (or one buffer), then a claimed, non-overwriting publish."""

    def __init__(self, driver: SwiftCore, image_id: str, size: int | None) -> None:
        super().__init__(driver, image_id)
        # a known size within the threshold never fills its one buffer: finish() makes it one PUT
        sizes = PartSizes(size + 1) if size is not None and size <= driver.threshold else driver.part_sizes(image_id)
        workers = driver.concurrency
        self._pool = ThreadParts(workers, name="imagestore-swift-put")
        self._parts: ChunkedUploader[Segment | Inline] = ChunkedUploader(
            self._start, sizes, concurrency=workers, policy=driver.retry,
            memory_budget=workers * sizes.first, single=Inline,
            label=f"store {driver.name!r}: upload of {image_id!r}")
        try:
            self.claim.start()
        except BaseException:
            self._pool.close()
            self.claim.release()
            raise

    def _start(self, index: int, offset: int, data: memoryview) -> Pending[Segment | Inline]:
        self._written = max(self._written, index + 1)
        return self._pool.run(self._put_segment, index, data)

    def write(self, data: memoryview | bytes | bytearray) -> None:
        """Append ``data`` (copied into segment buffers; blocks while every buffer is in flight)."""
        if self._state != "open":
            raise ValueError(f"write on a {self._state} upload")
        self.claim.check_alive()
        self._parts.write(data)

    def commit(self, metadata: Mapping[str, str]) -> Location:
        """Finish the segments, wait for the claim, publish without overwriting, release."""
        if self._state != "open":
            raise ValueError(f"commit on a {self._state} upload")
        self._state = "committing"
        try:
            parts = self._parts.finish()
        except BaseException:
            self.abort()
            raise
        return self._finish(parts, metadata)

    def _stop_parts(self) -> None:
        self._parts.abort()

    def _closed(self) -> None:
        self._pool.close()
