"""A read-only NBD export of a stored image for ``qemu-img convert`` to read: every read is served
from blocks verified against the image's block table (:mod:`..ranges`), so the converter reads
exactly the bytes the format inspector passed, without a local copy of the image. ``READ`` and
``DISC`` are served; a read the source cannot verify gets ``EIO`` (and the export keeps the
error for the caller to raise); anything else is refused."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Protocol

from .protocol import CMD_READ, EINVAL, EIO, EPERM, HAS_FLAGS, MAX_PAYLOAD, READ_ONLY, Export, NbdError

__all__ = ["NbdSource", "RangeSource"]


class RangeSource(Protocol):
    """What the export serves: ``size`` bytes, read by range."""

    size: int

    def pread(self, offset: int, length: int) -> bytes | bytearray | memoryview: ...


class NbdSource(Export):
    """Serves ``source`` to one client on a thread of its own (:meth:`start`) until the client
    disconnects. :attr:`error` is the first failure: a read the source refused (for example a
    block that does not match its digest) or a broken connection."""

    flags = HAS_FLAGS | READ_ONLY

    def __init__(self, path: str, source: RangeSource, *, alive: Callable[[], bool], deadline: float,
                 poll: float = 0.5) -> None:
        super().__init__(path, source.size, alive=alive, deadline=deadline, poll=poll)
        self._source = source
        self._thread = threading.Thread(target=self._run, name="imagestore-nbd-source", daemon=True)
        self.error: BaseException | None = None
        """The first failure of a read or of the connection (None while all went well)."""
        self.served = 0
        """Bytes the client read."""
        self._closing = False

    def start(self) -> None:
        """Serve on a thread of its own."""
        self._thread.start()

    def close(self) -> None:
        """Close the sockets (which ends the serving thread) and wait for the thread."""
        self._closing = True
        super().close()
        if self._thread.is_alive() and self._thread is not threading.current_thread():
            self._thread.join()

    def _run(self) -> None:
        try:
            self.serve()
        except BaseException as exc:  # noqa: BLE001 - kept for the caller, which raises it in its own thread
            if self.error is None and not self._closing:  # not the sockets closed under it
                self.error = exc
        finally:
            conn = self._conn
            if conn is not None:
                conn.close()  # the client sees the export end

    def serve(self) -> None:
        """Accept the client and answer its reads until it disconnects."""
        for cmd, handle, offset, length in self.requests():
            if cmd != CMD_READ:
                self.refuse(cmd, handle, length, EPERM)
                raise NbdError(f"request {cmd} to a read-only export")
            if offset + length > self.size or length > MAX_PAYLOAD:
                self.reply(handle, EINVAL)
                continue
            try:
                data = self._source.pread(offset, length)
            except Exception as exc:  # noqa: BLE001 - the client learns EIO, the caller the cause
                if self.error is None:
                    self.error = exc
                self.reply(handle, EIO)
                continue
            self.reply(handle, 0, data)
            self.served += length
