"""A write-only NBD export that turns ``qemu-img convert``'s output into a stream.

``qemu-img convert -n --target-is-zero`` (without ``-W``) writes the raw disk in order and skips
its zero runs; served here, each write comes out as the next chunk of the stream and each jump
ahead as zeros, so the raw disk goes into the add pipeline (and from there into any backend)
without ever being written to a local file. ``WRITE``, ``WRITE_ZEROES`` ahead of the stream,
``FLUSH`` and ``DISC`` are served; anything else, and a write behind the stream, is refused and
ends the export with :class:`NbdError`."""

from __future__ import annotations

from collections.abc import Callable, Iterator

from ...spi.zeros import zeros
from ..slots import Slots
from .protocol import (CMD_FLUSH, CMD_WRITE, CMD_WRITE_ZEROES, EINVAL, ENOTSUP, HAS_FLAGS, MAX_PAYLOAD, SEND_FLUSH,
                       SEND_WRITE_ZEROES, Export, NbdError)

__all__ = ["NbdSink"]


class NbdSink(Export):
    """:meth:`chunks` accepts the client and yields the disk's bytes in order (zeros where the
    client skipped ahead) until it disconnects; :meth:`tail` yields the zeros after its last
    write."""

    flags = HAS_FLAGS | SEND_FLUSH | SEND_WRITE_ZEROES

    def __init__(self, path: str, size: int, *, chunk_size: int = 4 << 20, alive: Callable[[], bool],
                 deadline: float, poll: float = 0.5) -> None:
        super().__init__(path, size, alive=alive, deadline=deadline, poll=poll)
        self._chunk = chunk_size
        self._pos = 0
        self.written = 0
        """Bytes the client wrote (zeros it skipped not counted)."""

    def _zeros(self, upto: int, slots: Slots) -> Iterator[tuple[int, memoryview]]:
        """Zeros from the stream's position to ``upto``."""
        zero = zeros(min(self._chunk, upto - self._pos))
        while self._pos < upto:
            n = min(len(zero), upto - self._pos)
            self._pos += n
            yield slots.next(), zero[:n]

    def chunks(self, slots: Slots) -> Iterator[tuple[int, memoryview]]:
        """The disk's bytes in order up to the client's last write (then :meth:`tail`), each
        write received straight into ``slots``; NbdError if the client breaks off."""
        self._pos = 0
        for cmd, handle, offset, length in self.requests():
            if cmd == CMD_FLUSH:
                self.reply(handle)
                continue
            if offset + length > self.size or (cmd == CMD_WRITE and length > MAX_PAYLOAD):
                self.refuse(cmd, handle, length, EINVAL)
                raise NbdError(f"a request for bytes {offset}-{offset + length} of a {self.size}-byte export")
            if cmd == CMD_WRITE_ZEROES and offset >= self._pos:
                self.reply(handle)  # ahead of the stream: zeros there already
                continue
            if cmd != CMD_WRITE:
                self.reply(handle, ENOTSUP if cmd != CMD_WRITE_ZEROES else EINVAL)
                raise NbdError(f"request {cmd} at {offset} (the stream is at {self._pos}) is not served")
            if offset < self._pos:
                self.refuse(cmd, handle, length, EINVAL)
                raise NbdError(f"a write at {offset}, behind the stream at {self._pos} (out of order)")
            yield from self._zeros(offset, slots)
            left = length
            while left:
                slot = slots.next()
                buf = slots.buffer(slot)[:left]
                self.recv_into(buf, "a write's data")
                left -= len(buf)
                if not left:
                    self.reply(handle)  # the bytes are ours now: the client may send the next write
                self._pos += len(buf)
                self.written += len(buf)
                yield slot, buf
            if not length:
                self.reply(handle)

    def tail(self, slots: Slots) -> Iterator[tuple[int, memoryview]]:
        """After :meth:`chunks`: zeros from the last write to the end of the export."""
        return self._zeros(self.size, slots)
