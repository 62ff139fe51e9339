"""Forward-only byte capture: a retained head, offset requests and a rolling tail.

Format parsers never see the whole stream. They ask :class:`ByteStream` for
the byte ranges they need (``request``) and get them through a callback once
the stream has gone past them, so memory stays bounded by the regions asked
for and the cost of a chunk nobody asked for is a couple of comparisons.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable

__all__ = [
    "HEAD_SIZE",
    "MAX_BUFFERED",
    "MAX_REQUEST",
    "TAIL_SIZE",
    "ByteStream",
    "Delivery",
]

#: Bytes kept from the start of every stream (holds every format's signature).
HEAD_SIZE = 64 * 1024
#: Bytes kept from the end of the stream (VHD footer, VMDK stream footer).
TAIL_SIZE = 1536
#: Largest single request; parsers split larger tables into pieces.
MAX_REQUEST = 2 * 1024 * 1024
#: Most bytes held at once by requests still being filled.
MAX_BUFFERED = 8 * 1024 * 1024
#: Most requests waiting at once (each costs a few hundred bytes), and ever
#: made, by one stream. An image needing more (e.g. a qcow2 with 4 KiB
#: clusters and over 32 GiB of data) is refused rather than half-checked.
MAX_PENDING = 16384
MAX_REQUESTS_TOTAL = 1 << 20

#: ``callback(offset, data)``: ``data`` is None when the range was already
#: streamed past (and not in the head), shorter than asked when the stream
#: ended first.
Delivery = Callable[[int, "bytes | None"], None]
#: Called when a request cannot be honoured within the memory bounds.
Overflow = Callable[[str], None]


class _Request:
    """One pending capture: the range, what was gathered so far, who to tell."""

    __slots__ = ("offset", "end", "buf", "counted", "deliver", "overflow")

    def __init__(self, offset: int, end: int, deliver: Delivery, overflow: Overflow) -> None:
        self.offset = offset
        self.end = end
        self.buf: bytes | bytearray = b""  # a bytearray once data arrives
        self.counted = 0  # bytes copied from the stream (not the head)
        self.deliver = deliver
        self.overflow = overflow


class ByteStream:
    """Tracks position, head, tail and pending requests of one inspected stream."""

    def __init__(self, on_head: Callable[[], None]) -> None:
        self.head = bytearray()
        self.head_done = False
        self.pos = 0
        self.finished = False
        self._on_head = on_head
        self._avail = 0  # earliest stream offset still readable (current chunk start)
        self._heap: list[tuple[int, int, _Request]] = []
        self._ready: list[tuple[_Request, bytes | None]] = []
        self._seq = 0
        self._made = 0
        self._buffered = 0
        self._tail = bytearray()

    # -- parser side ---------------------------------------------------------

    def request(self, offset: int, length: int, deliver: Delivery, overflow: Overflow) -> None:
        """Deliver bytes ``[offset, offset + length)`` to ``deliver`` when available."""
        if offset < 0 or length < 0:
            raise ValueError("negative offset or length")
        if length > MAX_REQUEST:
            overflow(f"a {length}-byte metadata region exceeds the inspection bound")
            return
        self._made += 1
        if self._made > MAX_REQUESTS_TOTAL or len(self._heap) >= MAX_PENDING:
            overflow("too many metadata regions to verify within the inspection bound")
            return
        req = _Request(offset, offset + length, deliver, overflow)
        if offset < len(self.head):
            req.buf = bytearray(self.head[offset : req.end])
        nxt = offset + len(req.buf)
        if nxt >= req.end:
            self._ready.append((req, bytes(req.buf)))
        elif nxt < self._avail:
            self._ready.append((req, None))
        else:
            self._push(nxt, req)

    # -- inspector side ------------------------------------------------------

    def feed(self, chunk: bytes | bytearray | memoryview) -> None:
        """Consume the next chunk; copies only the bytes somebody asked for."""
        mv = memoryview(chunk)
        if mv.ndim != 1 or mv.itemsize != 1:
            mv = mv.cast("B")
        n = len(mv)
        if n == 0:
            return
        start = self.pos
        end = start + n
        try:
            self._avail = start
            if not self.head_done:
                take = min(HEAD_SIZE - len(self.head), n)
                self.head += mv[:take]
                if len(self.head) >= HEAD_SIZE:
                    self.head_done = True
                    self._on_head()
                    self._drain()
            heap = self._heap
            if heap and heap[0][0] < end:
                self._serve(mv, start, end)
            tail = self._tail
            if n >= TAIL_SIZE:
                tail[:] = mv[n - TAIL_SIZE :]
            else:
                tail += mv
                if len(tail) > 4 * TAIL_SIZE:
                    del tail[:-TAIL_SIZE]
        finally:
            self.pos = end
            self._avail = end

    def wanted(self) -> int | None:
        """The first offset from :attr:`pos` on that somebody needs: :attr:`pos` until the head is
        whole, else the earliest pending request (None: no parser waits for a byte before the tail)."""
        if not self.head_done:
            return self.pos
        self._drain()
        return max(self._heap[0][0], self.pos) if self._heap else None

    def skip(self, to: int) -> None:
        """Go past the bytes up to ``to`` without reading them, as if fed: allowed only up to
        :meth:`wanted` (nobody asked for them), so the parsers see what a full pass shows them.
        The tail restarts with the next fed bytes."""
        want = self.wanted()
        if to < self.pos or (want is not None and to > want):
            raise ValueError(f"cannot skip from {self.pos} to {to}: bytes from {want} are wanted")
        if to > self.pos:
            self._tail.clear()
            self.pos = self._avail = to

    def finish(self) -> bytes:
        """Mark end of stream, deliver every pending request; return the tail."""
        if self.finished:
            return bytes(self._tail[-TAIL_SIZE:])
        self.finished = True
        self._avail = self.pos
        if not self.head_done:
            self.head_done = True
            self._on_head()
        self._drain()
        while self._heap:
            _, _, req = heapq.heappop(self._heap)
            self._buffered -= req.counted
            req.deliver(req.offset, bytes(req.buf))
            self._drain()
        return bytes(self._tail[-TAIL_SIZE:])

    # -- internals -----------------------------------------------------------

    def _serve(self, mv: memoryview, start: int, end: int) -> None:
        heap = self._heap
        while heap and heap[0][0] < end:
            nxt, _, req = heapq.heappop(heap)
            stop = min(req.end, end)
            take = stop - nxt
            if not req.buf:
                req.buf = bytearray()
            req.buf += mv[nxt - start : stop - start]
            req.counted += take
            self._buffered += take
            if self._buffered > MAX_BUFFERED:
                self._buffered -= req.counted
                req.overflow("metadata regions overlap beyond the inspection memory bound")
                continue
            if stop >= req.end:
                self._buffered -= req.counted
                req.deliver(req.offset, bytes(req.buf))
                self._drain()
            else:
                self._push(stop, req)

    def _push(self, nxt: int, req: _Request) -> None:
        self._seq += 1
        heapq.heappush(self._heap, (nxt, self._seq, req))

    def _drain(self) -> None:
        while self._ready:
            ready, self._ready = self._ready, []
            for req, data in ready:
                req.deliver(req.offset, data)
