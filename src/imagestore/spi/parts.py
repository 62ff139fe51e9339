"""Driver-side plumbing for backends that store an image as parts: RBD objects, S3
multipart parts, Swift segments. Written once, used by every such driver.

:class:`ChunkedUploader` cuts the stream into parts and keeps up to
``concurrency`` of them in flight, each in a buffer of its own (so memory is
bounded by the parts in flight, whatever the image size), with back-pressure:
``write`` blocks while every buffer is busy, so the source is never read further
ahead than the buffers allow. A part that fails with ``Transient`` is sent again
by the store's :class:`~.retry.RetryPolicy` (site ``part``), then the whole upload fails; ``abort``
cancels what has not started and waits for what has. :class:`PartSizes` makes
parts grow as an upload of unknown size grows, so a part-count limit (S3's
10,000) still reaches the backend's largest object. :func:`retry_part` is that
one retry of a part, also used by :func:`call_retrying` (one request inside a
streaming operation, e.g. completing an upload) and :func:`run_parts` (parts
that carry no bytes of ours, e.g. server-side copies of ranges).

:class:`ReadAhead` keeps ``depth`` ranged reads in flight ahead of the caller.
It does not retry: a failed piece raises, and the facade resumes the stream
from the byte where it stopped.

Neither hashes, inspects nor knows about policy: that is the facade's.
"""

from __future__ import annotations

import contextvars
import logging
import threading
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Generic, Protocol, TypeVar

from ..errors import ImageTooLarge, Transient
from .retry import RetryPolicy
from .trace import PhaseSpan, begin
from .zeros import is_known_zero, zeros

__all__ = ["ChunkedUploader", "Pending", "PartSizes", "ReadAhead", "ThreadParts", "call_retrying", "done",
           "policy_of", "retry_part", "run_parts"]

log = logging.getLogger("imagestore")
T = TypeVar("T")
T_co = TypeVar("T_co", covariant=True)


class Pending(Protocol[T_co]):
    """An operation in flight: ``wait`` (called once: it may release the operation) returns its result or raises its error."""

    def wait(self) -> T_co: ...


class _Done(Generic[T]):
    def __init__(self, value: T) -> None:
        self.value = value

    def wait(self) -> T:
        return self.value


def done(value: T) -> Pending[T]:
    """A Pending that has already finished with ``value`` (e.g. a skipped all-zero part)."""
    return _Done(value)


class _FuturePending(Generic[T]):
    def __init__(self, future: Future[T]) -> None:
        self.future = future

    def wait(self) -> T:
        return self.future.result()

    def cancel(self) -> bool:
        return self.future.cancel()


class ThreadParts:
    """Runs blocking part calls (an HTTP PUT of a part, a ranged GET) on a small thread pool."""

    def __init__(self, workers: int, name: str = "imagestore-part") -> None:
        self._pool = ThreadPoolExecutor(max_workers=max(1, workers), thread_name_prefix=name)

    def run(self, fn: Callable[..., T], *args: object) -> Pending[T]:
        """Start ``fn(*args)`` in a worker thread, in the caller's context (its retry listener, its span)."""
        return _FuturePending(self._pool.submit(contextvars.copy_context().run, fn, *args))

    def close(self) -> None:
        """Stop the workers once the calls already started return."""
        self._pool.shutdown(wait=True, cancel_futures=True)


class PartSizes:
    """Part ``i``'s size: ``first``, multiplied by ``factor`` every ``grow_every`` parts
    (0: never), capped at ``largest``; at most ``max_parts`` parts."""

    def __init__(self, first: int, *, grow_every: int = 0, factor: int = 2, largest: int | None = None,
                 max_parts: int | None = None) -> None:
        if first < 1 or factor < 1 or grow_every < 0:
            raise ValueError("part sizes must be positive")
        self.first = first
        self.grow_every = grow_every
        self.factor = factor
        self.largest = largest or first
        self.max_parts = max_parts

    def size_of(self, index: int) -> int:
        """The size of part ``index`` (0-based)."""
        if not self.grow_every:
            return self.first
        size: int = self.first * self.factor ** (index // self.grow_every)
        return min(size, max(self.largest, self.first))

    def capacity(self) -> int | None:
        """The most bytes an upload can hold within ``max_parts`` (None: no part limit)."""
        if self.max_parts is None:
            return None
        if not self.grow_every or self.factor == 1:
            return self.max_parts * self.size_of(0)
        total, index = 0, 0
        while index < self.max_parts:
            size = self.size_of(index)
            run = self.max_parts - index if size >= self.largest else min(
                self.grow_every - index % self.grow_every, self.max_parts - index)
            total += run * size
            index += run
        return total


def policy_of(policy: RetryPolicy | None, retries: int | None, backoff: float | None) -> RetryPolicy:
    """``policy``, else the default one with the legacy ``retries``/``backoff`` arguments applied."""
    base = policy or RetryPolicy()
    return RetryPolicy(retries=base.retries if retries is None else retries,
                       backoff=base.backoff if backoff is None else backoff, cap=base.cap, jitter=base.jitter)


def retry_part(start: Callable[[], Pending[T]], *, policy: RetryPolicy | None = None, what: str,
               first: Pending[T] | None = None, stop: Callable[[], bool] | None = None,
               retries: int | None = None, backoff: float | None = None) -> T:
    """Wait for one part (``first``, else ``start()``); on Transient start it again as ``policy``
    allows (never once ``stop()`` is true). ``retries``/``backoff`` override the policy's."""
    pending: list[Pending[T] | None] = [first]

    def attempt() -> T:
        current = pending[0]
        if current is None:  # the first attempt without ``first``, or a retry after the wait
            current = pending[0] = start()
        return current.wait()

    def forget(exc: BaseException, attempt: int, delay: float) -> None:
        pending[0] = None

    rule = policy_of(policy, retries, backoff)
    return rule.run(attempt, site="part", what=what,
                    retry_if=None if stop is None else (lambda exc: not stop()), on_retry=forget)


class _Call(Generic[T]):
    """A blocking call run when waited for (so :func:`retry_part` can retry it)."""

    def __init__(self, fn: Callable[[], T]) -> None:
        self.fn = fn

    def wait(self) -> T:
        return self.fn()


def call_retrying(fn: Callable[[], T], *, policy: RetryPolicy | None = None, what: str,
                  retries: int | None = None, backoff: float | None = None) -> T:
    """``fn()`` in this thread, retried on Transient like a part (see :func:`retry_part`)."""
    return retry_part(lambda: _Call(fn), policy=policy, retries=retries, backoff=backoff, what=what)


def run_parts(starts: list[Callable[[], Pending[T]]], *, concurrency: int, policy: RetryPolicy | None = None,
              label: str = "", retries: int | None = None, backoff: float | None = None) -> list[T]:
    """Run independent parts (``starts[i]()`` begins part ``i``), ``concurrency`` in flight,
    each retried on Transient; their results in order. On the first part that fails for
    good, the parts not started are skipped, those in flight waited for, and its error raised."""
    rule = policy_of(policy, retries, backoff)
    results: list[T] = []
    inflight: deque[tuple[int, Pending[T]]] = deque()
    failed = False
    try:
        for index, start in enumerate(starts):
            while len(inflight) >= max(1, concurrency):
                i, pending = inflight.popleft()
                results.append(retry_part(starts[i], first=pending, policy=rule,
                                          what=f"{label}: part {i}"))
            inflight.append((index, start()))
        while inflight:
            i, pending = inflight.popleft()
            results.append(retry_part(starts[i], first=pending, policy=rule,
                                      what=f"{label}: part {i}"))
    except BaseException:
        failed = True
        raise
    finally:
        if failed:
            for _, pending in inflight:
                cancel = getattr(pending, "cancel", None)
                if cancel is None or not cancel():
                    try:
                        pending.wait()
                    except BaseException:  # noqa: BLE001 - the first failure is the one raised
                        pass
    return results


_ABORTED = Transient("the upload was aborted")
"""What ends the span of a part still in flight when its upload is aborted."""

StartPart = Callable[[int, int, memoryview], Pending[T]]
"""``start(index, offset, data)``: begin sending one part; ``data`` stays valid until it is waited for."""


class ChunkedUploader(Generic[T]):
    """Streams writes into parts with bounded buffers, ``concurrency`` in flight, per-part retries.

    ``start`` begins one part; ``single`` (optional) is called instead, with all
    the bytes, when the stream ends before its first part filled (one PUT for a
    small object). ``memory_budget`` lowers the parts in flight as parts grow,
    so buffers never hold more than about that many bytes.
    """

    def __init__(
        self,
        start: StartPart[T],
        sizes: PartSizes,
        *,
        concurrency: int,
        policy: RetryPolicy | None = None,
        retries: int | None = None,
        backoff: float | None = None,
        memory_budget: int | None = None,
        single: Callable[[memoryview], T] | None = None,
        label: str = "",
    ) -> None:
        self._start = start
        self._sizes = sizes
        self._concurrency = max(1, concurrency)
        self._policy = policy_of(policy, retries, backoff)
        self._budget = memory_budget
        self._single = single
        self._label = label
        self._index = 0
        self._offset = 0  # bytes handed to parts so far
        self._buf = bytearray(sizes.size_of(0))
        self._fill = 0
        self._lazy = 0  # known zeros at the start of the part, not copied into ``_buf`` (0 or ``_fill``)
        self._free: list[bytearray] = []
        self._inflight: deque[tuple[int, int, memoryview, bytearray | None, Pending[T], PhaseSpan]] = deque()
        self._results: list[T] = []
        self._state = "open"
        self.retried = 0
        """How many part sends were retried after a Transient failure."""

    @property
    def size(self) -> int:
        """Bytes written so far."""
        return self._offset + self._fill

    @property
    def parts(self) -> int:
        """Parts started so far."""
        return self._index

    def _window(self, part_size: int) -> int:
        if self._budget is None:
            return self._concurrency
        return max(1, min(self._concurrency, self._budget // max(part_size, 1)))

    def write(self, data: memoryview | bytes | bytearray) -> None:
        """Append ``data`` (copied into part buffers); blocks while every buffer is in flight.
        Known zeros (:func:`~imagestore.spi.zeros.zeros`) are not copied: a part of nothing
        else is sent as a view of the shared zero buffer."""
        if self._state != "open":
            raise ValueError(f"write on a {self._state} upload")
        view = memoryview(data).cast("B")
        known = is_known_zero(view)
        pos, total = 0, len(view)
        while pos < total:
            room = len(self._buf) - self._fill
            n = min(room, total - pos)
            if known and self._lazy == self._fill:
                self._lazy += n  # the part is only known zeros so far: nothing to copy yet
            else:
                if self._lazy:
                    self._buf[:self._lazy] = zeros(self._lazy)
                    self._lazy = 0
                self._buf[self._fill:self._fill + n] = view[pos:pos + n]
            self._fill += n
            pos += n
            if self._fill == len(self._buf):
                self._submit()

    def _part(self) -> tuple[memoryview, bytearray | None]:
        """The part filled so far, and its buffer (None when it is a view of the shared zeros)."""
        if self._lazy and self._lazy == self._fill:
            return zeros(self._fill), None
        return memoryview(self._buf)[:self._fill], self._buf

    def _submit(self) -> None:
        """Send the filled buffer as the next part and set up the buffer of the one after."""
        if self._sizes.max_parts is not None and self._index >= self._sizes.max_parts:
            raise ImageTooLarge(f"{self._label}: the upload needs more than {self._sizes.max_parts} parts")
        part, buf = self._part()
        while len(self._inflight) >= self._window(len(self._buf)):
            self._reap()
        span = begin("part", part=self._index, size=len(part))  # from hand-over to reaping: queueing shows
        try:
            pending = self._start(self._index, self._offset, part)
        except BaseException as exc:
            span.end(exc)
            raise
        self._inflight.append((self._index, self._offset, part, buf, pending, span))
        self._index += 1
        self._offset += len(part)
        self._fill = self._lazy = 0
        if buf is None:
            self._free.append(self._buf)  # not sent: free for the next part
        want = self._sizes.size_of(self._index)
        self._free = [b for b in self._free if len(b) == want]
        self._buf = self._free.pop() if self._free else bytearray(want)

    def _reap(self) -> None:
        """Wait for the oldest part; resend it on Transient while retries remain."""
        index, offset, part, buf, pending, span = self._inflight[0]

        def again() -> Pending[T]:
            self.retried += 1
            return self._start(index, offset, part)

        try:
            result = retry_part(again, first=pending, policy=self._policy,
                                what=f"{self._label}: part {index}", stop=lambda: self._state == "aborted")
        except BaseException as exc:
            self._inflight.popleft()  # waited for already: abort must not wait for it again
            span.end(exc)
            raise
        span.end()
        self._inflight.popleft()
        self._results.append(result)
        if buf is not None and len(buf) == self._sizes.size_of(self._index):
            self._free.append(buf)

    def finish(self) -> list[T]:
        """Send the last part and wait for all; the parts' results in order."""
        if self._state != "open":
            raise ValueError(f"finish on a {self._state} upload")
        self._state = "finishing"
        if self._index == 0 and self._single is not None:
            span = begin("part", part=0, size=self._fill)
            try:
                result = self._single(self._part()[0])
            except BaseException as exc:
                span.end(exc)
                raise
            span.end()
            self._offset, self._fill = self._fill, 0
            self._results = [result]
        else:
            if self._fill or self._index == 0:
                self._submit()
            while self._inflight:
                self._reap()
        self._state = "finished"
        self._release()
        return self._results

    def abort(self) -> None:
        """Stop: cancel parts not yet started, wait for those that did (their errors ignored)."""
        if self._state in ("aborted", "finished"):
            return
        self._state = "aborted"
        for *_, pending, _ in self._inflight:
            cancel = getattr(pending, "cancel", None)
            if cancel is not None:
                cancel()
        while self._inflight:
            *_, pending, span = self._inflight.popleft()
            try:
                pending.wait()
            except BaseException:  # noqa: BLE001 - the upload is being thrown away
                pass
            span.end(_ABORTED)
        self._release()

    def _release(self) -> None:
        self._buf = bytearray()
        self._free.clear()


StartRead = Callable[[int, int, bytearray], Pending[int]]
"""``start(offset, n, buffer)``: begin reading ``n`` bytes at ``offset`` into ``buffer``; waits to the count."""


class ReadAhead:
    """Reads ``[offset, offset + length)`` in ``piece``-sized reads kept ``depth`` deep ahead."""

    def __init__(self, start: StartRead, offset: int, length: int, *, piece: int, depth: int,
                 on_close: Callable[[], None] | None = None) -> None:
        self._start = start
        self._next = offset
        self._end = offset + length
        self._piece = piece
        self._depth = max(1, depth)
        self._on_close = on_close
        self._pending: deque[tuple[Pending[int], bytearray, int]] = deque()
        self._free: list[bytearray] = []
        self._cur = memoryview(b"")
        self._cur_buf: bytearray | None = None
        self._closed = False
        self._lock = threading.Lock()
        self._fill()

    def _fill(self) -> None:
        while len(self._pending) < self._depth and self._next < self._end:
            n = min(self._piece, self._end - self._next)
            buf = self._free.pop() if self._free else bytearray(self._piece)
            self._pending.append((self._start(self._next, n, buf), buf, n))
            self._next += n

    def _advance(self) -> bool:
        if self._cur_buf is not None:
            self._cur.release()
            self._free.append(self._cur_buf)
            self._cur_buf = None
        if not self._pending:
            return False
        pending, buf, n = self._pending.popleft()
        got = pending.wait()
        if got < n:
            raise Transient(f"short read: {got} of {n} bytes")
        self._cur_buf = buf
        self._cur = memoryview(buf)[:n]
        self._fill()
        return True

    def read(self, n: int) -> bytes:
        """Up to ``n`` bytes; ``b""`` at the end."""
        if self._closed:
            return b""
        while not len(self._cur):
            if not self._advance():
                return b""
        out = bytes(self._cur[:n])
        self._cur = self._cur[len(out):]
        return out

    def close(self) -> None:
        """Wait for the reads in flight (their errors ignored) and release the source."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
        while self._pending:
            pending, _, _ = self._pending.popleft()
            cancel = getattr(pending, "cancel", None)
            if cancel is None or not cancel():
                try:
                    pending.wait()
                except BaseException:  # noqa: BLE001 - closing
                    pass
        self._cur.release()
        if self._on_close is not None:
            self._on_close()
