"""Verifying block by block: the reader reads the whole blocks around a range (or the whole
image), each is checked against its digest before any of its bytes leave, and only the asked-for
bytes come out."""

from __future__ import annotations

from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass

from ..errors import ChecksumMismatch
from .hashing import INTEGRITY, new_hash

__all__ = ["BlockCheck", "BlockSpan"]


@dataclass(frozen=True)
class BlockSpan:
    """The whole blocks a range ``[start, end)`` of an image of ``size`` bytes touches."""

    block_size: int
    size: int
    start: int
    end: int

    @property
    def first(self) -> int:
        """The index of the first block read."""
        return self.start // self.block_size

    @property
    def offset(self) -> int:
        """Where the read starts: the first block's offset."""
        return self.first * self.block_size

    @property
    def stop(self) -> int:
        """Where the read ends: the end of the last block touched (the image's end at most)."""
        if self.end <= self.start:
            return self.offset
        return min(self.size, -(-self.end // self.block_size) * self.block_size)


class BlockCheck:
    """Feed it the bytes of :class:`BlockSpan` in order; each block, once whole, is hashed and
    compared with its table entry (ChecksumMismatch naming the block and its offset) when it is
    taken, and only then is the part of it inside the range handed out.

    A span of more than ``window`` blocks is hashed ahead on a thread of its own while the next
    blocks are read (at most ``window`` blocks held); a shorter one is hashed in line."""

    def __init__(self, span: BlockSpan, digests: bytes, entry: int, *, store: str, image: str,
                 window: int = 3) -> None:
        self.span = span
        self._digests = digests
        self._entry = entry
        self._store = store
        self._image = image
        self._index = span.first  # the index of the block being filled
        self._at = span.offset  # its image offset
        self._buf = bytearray()
        blocks = -(-(span.stop - span.offset) // span.block_size)
        self._window = window if blocks > window else 1
        self._pool = ThreadPoolExecutor(1, thread_name_prefix="imagestore-blocks") if self._window > 1 else None
        self._pending: deque[tuple[int, int, bytes | bytearray, Future[bytes] | None]] = deque()

    def need(self) -> int:
        """How many bytes the current block still lacks (0 once the span is read)."""
        if self._at >= self.span.stop:
            return 0
        return min(self.span.block_size, self.span.stop - self._at) - len(self._buf)

    def ready(self) -> bool:
        """Whether :meth:`take` has a block to check: the window is full, or the span is read."""
        return bool(self._pending) and (len(self._pending) >= self._window or not self.need())

    def finished(self) -> bool:
        """Whether every block of the span was read and taken."""
        return not self.need() and not self._pending

    def feed(self, data: bytes) -> None:
        """Take the next bytes (at most :meth:`need`); a block once whole is queued (and hashed
        ahead when the span is long)."""
        if self._buf or len(data) < self.need():
            self._buf += data
            if self.need():
                return
            block: bytes | bytearray = self._buf
            self._buf = bytearray()
        else:
            block = data
        future = self._pool.submit(self._digest, block) if self._pool is not None else None
        self._pending.append((self._index, self._at, block, future))
        self._at += len(block)
        self._index += 1

    def take(self) -> bytes:
        """The verified part of the range of the oldest queued block; ChecksumMismatch if it is not
        the block the table records."""
        index, at, block, future = self._pending.popleft()
        got = future.result() if future is not None else self._digest(block)
        want = self._digests[index * self._entry:(index + 1) * self._entry]
        if got != want:
            self.close()
            raise ChecksumMismatch(
                f"block {index} (bytes {at}-{at + len(block) - 1}) does not match the block table",
                algorithm=INTEGRITY, expected=want.hex(), actual=got.hex(), store=self._store, image=self._image)
        lo = max(self.span.start - at, 0)
        hi = min(self.span.end - at, len(block))
        return block if lo == 0 and hi == len(block) and isinstance(block, bytes) else bytes(block[lo:hi])

    def _digest(self, block: bytes | bytearray) -> bytes:
        h = new_hash(INTEGRITY, parallel=len(block) >= 1 << 20)
        h.update(block)
        return bytes(h.digest(self._entry))

    def close(self) -> None:
        """Drop the queued blocks and stop the hashing thread (idempotent)."""
        self._pending.clear()
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None
