"""A write-only NBD export that turns ``qemu-img convert``'s output into a stream.

``qemu-img convert -n --target-is-zero`` (without ``-W``) writes the raw disk in order and skips
its zero runs; served here on a unix socket, each write comes out as the next chunk of the
stream and each jump ahead as zeros, so the raw disk goes into the add pipeline (and from there
into any backend) without ever being written to a local file. Only what that client needs is
spoken: the fixed newstyle handshake (``NBD_OPT_GO`` or ``NBD_OPT_EXPORT_NAME``), simple
replies, ``WRITE``, ``WRITE_ZEROES`` ahead of the stream, ``FLUSH`` and ``DISC``; anything else,
and a write behind the stream, is refused and ends the export with :class:`NbdError`."""

from __future__ import annotations

import socket
import struct
import time
from collections.abc import Callable, Iterator

from ..spi.zeros import zeros
from .slots import Slots

__all__ = ["NbdError", "NbdSink"]

_NBDMAGIC = 0x4E42444D41474943
_IHAVEOPT = 0x49484156454F5054
_REPLY_MAGIC = 0x3E889045565A9
_REQUEST_MAGIC = 0x25609513
_SIMPLE_REPLY = 0x67446698
_FLAG_FIXED_NEWSTYLE, _FLAG_NO_ZEROES = 1, 2
_OPT_EXPORT_NAME, _OPT_ABORT, _OPT_INFO, _OPT_GO = 1, 2, 6, 7
_REP_ACK, _REP_INFO, _REP_ERR_UNSUP = 1, 3, (1 << 31) + 1
_INFO_EXPORT = 0
# transmission flags: has flags, flush, write zeroes
_EXPORT_FLAGS = 1 | 4 | 64
_CMD_READ, _CMD_WRITE, _CMD_DISC, _CMD_FLUSH, _CMD_WRITE_ZEROES = 0, 1, 2, 3, 6
_EINVAL, _ENOTSUP = 22, 95
_MAX_WRITE = 32 << 20
"""The largest write taken (the protocol's customary payload limit)."""
_REQUEST = struct.Struct(">IHHQQI")


class NbdError(Exception):
    """The client broke the protocol, wrote out of order, went away or timed out."""


class NbdSink:
    """One client, one export of ``size`` bytes on the unix socket ``path``.

    :meth:`chunks` accepts the client and yields the disk's bytes in order (zeros where the
    client skipped ahead) until it disconnects; :meth:`tail` yields the zeros after its last
    write. ``alive`` is asked whenever the socket is idle for ``poll`` seconds: once it says
    False (the client process ended) the export ends with NbdError; so does a wait longer than
    ``deadline`` (a ``time.monotonic()``)."""

    def __init__(self, path: str, size: int, *, chunk_size: int = 4 << 20, alive: Callable[[], bool],
                 deadline: float, poll: float = 0.5) -> None:
        self.path = path
        self.size = size
        self._chunk = chunk_size
        self._alive = alive
        self.deadline = deadline
        """When a wait for the client gives up (the caller may move it on)."""
        self._listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self._listener.settimeout(poll)
        self._listener.bind(path)
        self._listener.listen(1)
        self._conn: socket.socket | None = None
        self.written = 0
        """Bytes the client wrote (zeros it skipped not counted)."""

    def close(self) -> None:
        """Close the connection and the listening socket (idempotent)."""
        for sock in (self._conn, self._listener):
            if sock is not None:
                sock.close()
        self._conn = None

    def __enter__(self) -> NbdSink:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _waiting(self, what: str) -> None:
        """After an idle ``poll``: NbdError once the client is gone or the deadline has passed."""
        if not self._alive():
            raise NbdError(f"the client ended while the export waited for {what}")
        if time.monotonic() > self.deadline:
            raise NbdError(f"timed out waiting for {what}")

    def _accept(self) -> socket.socket:
        while True:
            try:
                conn, _ = self._listener.accept()
            except socket.timeout:
                self._waiting("a connection")
                continue
            conn.settimeout(self._listener.gettimeout())
            self._conn = conn
            return conn

    def _recv_into(self, view: memoryview, what: str) -> None:
        conn = self._conn
        assert conn is not None
        got = 0
        while got < len(view):
            try:
                n = conn.recv_into(view[got:])
            except socket.timeout:
                self._waiting(what)
                continue
            if n == 0:
                raise NbdError(f"the client closed the connection in the middle of {what}")
            got += n

    def _recv(self, n: int, what: str) -> bytes:
        buf = bytearray(n)
        self._recv_into(memoryview(buf), what)
        return bytes(buf)

    def _send(self, data: bytes) -> None:
        assert self._conn is not None
        self._conn.sendall(data)

    def _option_reply(self, option: int, kind: int, data: bytes = b"") -> None:
        self._send(struct.pack(">QIII", _REPLY_MAGIC, option, kind, len(data)) + data)

    def _handshake(self) -> bool:
        """Negotiate the export; True when the client ended the handshake with NBD_OPT_EXPORT_NAME
        (the older reply), False with NBD_OPT_GO."""
        self._send(struct.pack(">QQH", _NBDMAGIC, _IHAVEOPT, _FLAG_FIXED_NEWSTYLE | _FLAG_NO_ZEROES))
        (flags,) = struct.unpack(">I", self._recv(4, "the client flags"))
        if not flags & _FLAG_FIXED_NEWSTYLE:
            raise NbdError("the client does not speak the fixed newstyle handshake")
        while True:
            magic, option, length = struct.unpack(">QII", self._recv(16, "an option"))
            if magic != _IHAVEOPT or length > 4096:
                raise NbdError("a malformed option")
            self._recv(length, "an option's data")
            if option == _OPT_EXPORT_NAME:
                zeroes = b"" if flags & _FLAG_NO_ZEROES else bytes(124)
                self._send(struct.pack(">QH", self.size, _EXPORT_FLAGS) + zeroes)
                return True
            if option in (_OPT_GO, _OPT_INFO):
                self._option_reply(option, _REP_INFO, struct.pack(">HQH", _INFO_EXPORT, self.size, _EXPORT_FLAGS))
                self._option_reply(option, _REP_ACK)
                if option == _OPT_GO:
                    return False
            elif option == _OPT_ABORT:
                self._option_reply(option, _REP_ACK)
                raise NbdError("the client aborted the handshake")
            else:  # structured replies, metadata contexts, ...: simple replies only
                self._option_reply(option, _REP_ERR_UNSUP)

    def _reply(self, handle: int, error: int = 0) -> None:
        self._send(struct.pack(">IIQ", _SIMPLE_REPLY, error, handle))

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
        self._accept()
        self._handshake()
        header = bytearray(_REQUEST.size)
        while True:
            self._recv_into(memoryview(header), "a request")
            magic, _flags, cmd, handle, offset, length = _REQUEST.unpack(header)
            if magic != _REQUEST_MAGIC:
                raise NbdError("a malformed request")
            if cmd == _CMD_DISC:
                return
            if cmd == _CMD_FLUSH:
                self._reply(handle)
                continue
            if offset + length > self.size or (cmd == _CMD_WRITE and length > _MAX_WRITE):
                if cmd == _CMD_WRITE:
                    self._recv(length, "a refused write") if length <= _MAX_WRITE else None
                self._reply(handle, _EINVAL)
                raise NbdError(f"a request for bytes {offset}-{offset + length} of a {self.size}-byte export")
            if cmd == _CMD_WRITE_ZEROES and offset >= self._pos:
                self._reply(handle)  # ahead of the stream: zeros there already
                continue
            if cmd != _CMD_WRITE:
                self._reply(handle, _ENOTSUP if cmd != _CMD_WRITE_ZEROES else _EINVAL)
                raise NbdError(f"request {cmd} at {offset} (the stream is at {self._pos}) is not served")
            if offset < self._pos:
                self._recv(length, "a refused write")
                self._reply(handle, _EINVAL)
                raise NbdError(f"a write at {offset}, behind the stream at {self._pos} (out of order)")
            yield from self._zeros(offset, slots)
            left = length
            while left:
                slot = slots.next()
                buf = slots.buffer(slot)[:left]
                self._recv_into(buf, "a write's data")
                left -= len(buf)
                if not left:
                    self._reply(handle)  # the bytes are ours now: the client may send the next write
                self._pos += len(buf)
                self.written += len(buf)
                yield slot, buf
            if not length:
                self._reply(handle)

    def tail(self, slots: Slots) -> Iterator[tuple[int, memoryview]]:
        """After :meth:`chunks`: zeros from the last write to the end of the export."""
        return self._zeros(self.size, slots)
