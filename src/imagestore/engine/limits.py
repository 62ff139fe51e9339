"""Denial-of-service limits of the add pipeline: concurrent uploads per store, and an
idle timeout that ends an upload whose source stops sending (a slow-loris client).

When the idle timeout fires, the upload's writer is aborted at once from the
watch thread, so the backend keeps nothing of it even while the caller's
source is still blocked; the add then fails with :class:`UploadTimeout` as soon
as the source returns.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from ..errors import Busy, UploadTimeout

__all__ = ["AddGate", "IdleWatch"]


class AddGate:
    """At most ``limit`` adds at once in one store (None: no limit); the next one is refused."""

    def __init__(self, limit: int | None) -> None:
        self.limit = limit
        self._sem = threading.BoundedSemaphore(limit) if limit else None

    @contextmanager
    def slot(self, *, store: str, image: str) -> Iterator[None]:
        """Hold one upload slot for the duration of the block; Busy when all are taken."""
        if self._sem is None:
            yield
            return
        if not self._sem.acquire(blocking=False):
            raise Busy(f"the store already runs max_concurrent_adds={self.limit} uploads; try again later",
                       store=store, image=image)
        try:
            yield
        finally:
            self._sem.release()


class IdleWatch:
    """Calls ``on_idle`` once if a source read lasts longer than ``timeout`` seconds."""

    def __init__(self, timeout: float | None, on_idle: Callable[[], None]) -> None:
        self.timeout = timeout
        self._on_idle = on_idle
        self._since: float | None = None  # when the pending source read began
        self._cond = threading.Condition()
        self._stop = False
        self.fired = False
        self._thread: threading.Thread | None = None
        if timeout:
            self._thread = threading.Thread(target=self._run, name="imagestore-idle-watch", daemon=True)
            self._thread.start()

    def _run(self) -> None:
        assert self.timeout is not None
        with self._cond:
            while not self._stop:
                if self._since is None:
                    self._cond.wait()
                    continue
                left = self._since + self.timeout - time.monotonic()
                if left > 0:
                    self._cond.wait(left)
                    continue
                self.fired = True
                break
        if self.fired:
            self._on_idle()

    @contextmanager
    def reading(self) -> Iterator[None]:
        """Around one read of the caller's source: the time the watch measures."""
        if self._thread is None:
            yield
            return
        with self._cond:
            self._since = time.monotonic()
            self._cond.notify()
        try:
            yield
        finally:
            with self._cond:
                self._since = None
                self._cond.notify()

    def check(self, *, store: str, image: str) -> None:
        """Raise UploadTimeout if the watch fired (the writer was already aborted)."""
        if self.fired:
            if self._thread is not None:
                self._thread.join()  # the abort it runs is complete before the caller cleans up
            raise UploadTimeout(f"the upload sent nothing for {self.timeout:g} s (idle_timeout); nothing was kept",
                                store=store, image=image)

    def close(self) -> None:
        """Stop the watch thread."""
        if self._thread is None:
            return
        with self._cond:
            self._stop = True
            self._cond.notify()
        if self._thread is not threading.current_thread():
            self._thread.join(5)
