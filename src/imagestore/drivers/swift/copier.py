"""The server-side copy of the Swift driver: a clone within the account copies every piece
of the source inside Swift into segments of its own (``concurrency`` at a time, each
retried) and publishes them like an upload (:mod:`.publisher`).
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping, Sequence

from ...location import Location
from ...spi.parts import Pending, ThreadParts, run_parts
from .claims import segment_name
from .core import Piece, SwiftCore
from .publisher import Inline, Publisher, Segment

__all__ = ["SwiftCopy"]


class SwiftCopy(Publisher):
    """A server-side copy into a new image: each piece copied inside Swift into a segment of
    its own, ``concurrency`` at a time and each retried, then published as the image's SLO."""

    def __init__(self, driver: SwiftCore, image_id: str) -> None:
        super().__init__(driver, image_id)
        self.claim.start()

    def run(self, pieces: Sequence[Piece], metadata: Mapping[str, str]) -> Location:
        """Copy every piece into a segment of this image and publish them as its SLO."""
        try:
            parts: Sequence[Segment | Inline] = self._copy_all([p for p in pieces if p.size])
        except BaseException:
            self.abort()
            raise
        return self._finish(parts or [Inline(memoryview(b""))], metadata)

    def _copy_one(self, index: int, piece: Piece) -> Segment:
        op = f"copy segment {index} into {self._id!r}"
        resp = self._d.http.request("PUT", self._segment_path(index), op=op,
                                    headers={"X-Copy-From": f"/{piece.path}", "Content-Length": "0"}, data=b"")
        if resp.status_code != 201:
            raise self._d.http.error(resp, op, image=self._id)
        resp.close()
        return Segment(segment_name(self._id, self.token, index), resp.headers.get("Etag", "").strip('"'),
                        piece.size)

    def _copy_all(self, pieces: Sequence[Piece]) -> list[Segment]:
        """Every piece copied, ``concurrency`` in flight, each resent on Transient up to ``retries``."""
        self._written = len(pieces)
        pool = ThreadParts(self._d.concurrency, name="imagestore-swift-copy")
        try:
            starts: list[Callable[[], Pending[Segment]]] = [
                functools.partial(pool.run, self._copy_one, i, piece) for i, piece in enumerate(pieces)]
            return run_parts(starts, concurrency=self._d.concurrency, policy=self._d.retry,
                             label=f"store {self._d.name!r}: copy into {self._id!r}")
        finally:
            pool.close()
