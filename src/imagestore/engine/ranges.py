"""Reads of any range of a stored image served from whole blocks verified against its block
table when they were fetched: a converter's input, read mostly in order and its metadata again
and again, so a run of blocks is fetched at a time, the next run is fetched ahead on a thread
while this one is read, and the last few runs are kept."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor

__all__ = ["VerifiedBlocks"]


class VerifiedBlocks:
    """``size`` bytes in blocks of ``block_size``; ``fetch(first, count)`` returns ``count`` blocks
    from index ``first``, each verified (it raises when one is not what the table records).
    While the reads go in order (from the start, or on from the last run), ``window`` blocks are
    fetched at once and the run after them fetched ahead (its failure raised only if it is read);
    a jump fetches the blocks the read needs. ``capacity`` blocks are kept. :meth:`close` stops the
    fetching thread."""

    def __init__(self, fetch: Callable[[int, int], Sequence[bytes | memoryview]], block_size: int, size: int, *,
                 window: int = 8, capacity: int = 32) -> None:
        if block_size <= 0 or window <= 0 or capacity < window:
            raise ValueError("block_size and window must be positive, capacity at least window")
        self._fetch = fetch
        self.block_size = block_size
        self.size = size
        self._count = -(-size // block_size)
        self._window = window
        self._capacity = capacity
        self._cache: OrderedDict[int, bytes | memoryview] = OrderedDict()
        self._pool: ThreadPoolExecutor | None = None
        self._ahead: tuple[int, Future[Sequence[bytes | memoryview]]] | None = None
        self._next = 0  # the block after the last run fetched: a run from there reads in order
        self.fetched = 0
        """Blocks fetched (and verified) so far, refetches included."""

    def close(self) -> None:
        """Stop fetching ahead (idempotent)."""
        self._ahead = None
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None

    def __enter__(self) -> VerifiedBlocks:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _run(self, index: int, last: int) -> Sequence[bytes | memoryview]:
        """The run from ``index``: the one fetched ahead if it starts there, else fetched now; and,
        reading in order, the next run is started ahead. A jump (an inspector's table, the tail)
        fetches the blocks up to ``last`` that the read needs, nothing more."""
        sequential = index in (0, self._next)
        count = min(self._window if sequential else last - index + 1, self._window, self._count - index)
        ahead, self._ahead = self._ahead, None
        if ahead is not None and ahead[0] == index:
            got = ahead[1].result()  # asked for min(window, rest) from here: the count of a run in order
        else:
            if ahead is not None:
                ahead[1].cancel()  # a jump: the run fetched ahead is not wanted now
            got = self._fetch(index, count)
        if len(got) != count:
            raise ValueError(f"fetch({index}, {count}) returned {len(got)} blocks")
        following = self._next = index + count
        if sequential and following < self._count and following not in self._cache:
            if self._pool is None:
                self._pool = ThreadPoolExecutor(1, thread_name_prefix="imagestore-ranges")
            self._ahead = following, self._pool.submit(
                self._fetch, following, min(self._window, self._count - following))
        return got

    def _block(self, index: int, last: int) -> bytes | memoryview:
        block = self._cache.get(index)
        if block is not None:
            self._cache.move_to_end(index)
            return block
        got = self._run(index, last)
        count = len(got)
        self.fetched += count
        for i, data in enumerate(got, index):
            self._cache[i] = data
            self._cache.move_to_end(i)
        while len(self._cache) > self._capacity:
            self._cache.popitem(last=False)
        return got[0]

    def pread(self, offset: int, length: int) -> bytes | memoryview:
        """``length`` bytes from ``offset`` (fewer past the end), every one from a verified block."""
        end = min(offset + length, self.size)
        bs = self.block_size
        parts: list[bytes | memoryview] = []
        at = offset
        last = (end - 1) // bs
        while at < end:
            index = at // bs
            block = self._block(index, last)
            lo = at - index * bs
            hi = min(len(block), end - index * bs)
            parts.append(memoryview(block)[lo:hi])
            at = index * bs + hi
        if len(parts) == 1:
            return parts[0]
        return b"".join(parts)
