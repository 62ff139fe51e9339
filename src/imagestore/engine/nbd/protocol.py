"""The server side of the NBD protocol that ``qemu-img`` speaks to an export on a unix socket:
the fixed newstyle handshake (``NBD_OPT_GO`` or ``NBD_OPT_EXPORT_NAME``), simple replies only,
one client. What each export serves is its own (:mod:`.sink`, :mod:`.source`)."""

from __future__ import annotations

import contextlib
import os
import socket
import struct
import time
from typing import Self
from collections.abc import Callable, Iterator

__all__ = ["Export", "NbdError"]

_NBDMAGIC = 0x4E42444D41474943
_IHAVEOPT = 0x49484156454F5054
_REPLY_MAGIC = 0x3E889045565A9
REQUEST_MAGIC = 0x25609513
_SIMPLE_REPLY = 0x67446698
_FLAG_FIXED_NEWSTYLE, _FLAG_NO_ZEROES = 1, 2
_OPT_EXPORT_NAME, _OPT_ABORT, _OPT_INFO, _OPT_GO = 1, 2, 6, 7
_REP_ACK, _REP_INFO, _REP_ERR_UNSUP = 1, 3, (1 << 31) + 1
_INFO_EXPORT = 0
HAS_FLAGS, READ_ONLY, SEND_FLUSH, SEND_WRITE_ZEROES = 1, 2, 4, 64
"""Transmission flags an export announces."""
CMD_READ, CMD_WRITE, CMD_DISC, CMD_FLUSH, CMD_WRITE_ZEROES = 0, 1, 2, 3, 6
EIO, EINVAL, ENOTSUP, EPERM = 5, 22, 95, 1
MAX_PAYLOAD = 32 << 20
"""The largest read or write served (the protocol's customary payload limit)."""
REQUEST = struct.Struct(">IHHQQI")
_REPLY = struct.Struct(">IIQ")


class NbdError(Exception):
    """The client broke the protocol, asked for what is not served, went away or timed out."""


class Export:
    """One client, one export of ``size`` bytes on the unix socket ``path``, announced with the
    transmission ``flags``. ``alive`` is asked whenever the socket is idle for ``poll`` seconds:
    once it says False (the client process ended) the export ends with NbdError; so does a wait
    longer than ``deadline`` (a ``time.monotonic()``)."""

    flags = HAS_FLAGS

    def __init__(self, path: str, size: int, *, alive: Callable[[], bool], deadline: float,
                 poll: float = 0.5) -> None:
        self.path = path
        self.size = size
        self._alive = alive
        self.deadline = deadline
        """When a wait for the client gives up (the caller may move it on)."""
        self._listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self._listener.settimeout(poll)
        self._listener.bind(path)
        self._listener.listen(1)
        self._conn: socket.socket | None = None

    def close(self) -> None:
        """Close the connection and the listening socket, and remove the socket file (idempotent)."""
        for sock in (self._conn, self._listener):
            if sock is not None:
                sock.close()
        self._conn = None
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.path)

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _waiting(self, what: str) -> None:
        """After an idle ``poll``: NbdError once the client is gone or the deadline has passed."""
        if not self._alive():
            raise NbdError(f"the client ended while the export waited for {what}")
        if time.monotonic() > self.deadline:
            raise NbdError(f"timed out waiting for {what}")

    def open(self) -> None:
        """Accept the client and negotiate the export."""
        while True:
            try:
                conn, _ = self._listener.accept()
            except socket.timeout:
                self._waiting("a connection")
                continue
            conn.settimeout(self._listener.gettimeout())
            self._conn = conn
            break
        self._handshake()

    def recv_into(self, view: memoryview, what: str) -> None:
        """Fill ``view`` from the client."""
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

    def recv(self, n: int, what: str) -> bytes:
        """The next ``n`` bytes from the client."""
        buf = bytearray(n)
        self.recv_into(memoryview(buf), what)
        return bytes(buf)

    def _send(self, data: bytes | bytearray | memoryview) -> None:
        assert self._conn is not None
        self._conn.sendall(data)

    def requests(self) -> Iterator[tuple[int, int, int, int]]:
        """Accept the client, negotiate, then its requests up to its disconnect: ``(command, handle,
        offset, length)``."""
        self.open()
        header = bytearray(REQUEST.size)
        while True:
            self.recv_into(memoryview(header), "a request")
            magic, _flags, cmd, handle, offset, length = REQUEST.unpack(header)
            if magic != REQUEST_MAGIC:
                raise NbdError("a malformed request")
            if cmd == CMD_DISC:
                return
            yield cmd, handle, offset, length

    def refuse(self, cmd: int, handle: int, length: int, error: int) -> None:
        """Answer a request with ``error``, having taken a write's payload off the socket."""
        if cmd == CMD_WRITE and length <= MAX_PAYLOAD:
            self.recv(length, "a refused write")
        self.reply(handle, error)

    def reply(self, handle: int, error: int = 0, data: bytes | bytearray | memoryview = b"") -> None:
        """A simple reply, with a read's ``data``."""
        self._send(_REPLY.pack(_SIMPLE_REPLY, error, handle))
        if data:
            self._send(data)

    def _option_reply(self, option: int, kind: int, data: bytes = b"") -> None:
        self._send(struct.pack(">QIII", _REPLY_MAGIC, option, kind, len(data)) + data)

    def _handshake(self) -> None:
        """Negotiate the export (NBD_OPT_GO, or the older NBD_OPT_EXPORT_NAME)."""
        self._send(struct.pack(">QQH", _NBDMAGIC, _IHAVEOPT, _FLAG_FIXED_NEWSTYLE | _FLAG_NO_ZEROES))
        (flags,) = struct.unpack(">I", self.recv(4, "the client flags"))
        if not flags & _FLAG_FIXED_NEWSTYLE:
            raise NbdError("the client does not speak the fixed newstyle handshake")
        while True:
            magic, option, length = struct.unpack(">QII", self.recv(16, "an option"))
            if magic != _IHAVEOPT or length > 4096:
                raise NbdError("a malformed option")
            self.recv(length, "an option's data")
            if option == _OPT_EXPORT_NAME:
                zeroes = b"" if flags & _FLAG_NO_ZEROES else bytes(124)
                self._send(struct.pack(">QH", self.size, self.flags) + zeroes)
                return
            if option in (_OPT_GO, _OPT_INFO):
                self._option_reply(option, _REP_INFO, struct.pack(">HQH", _INFO_EXPORT, self.size, self.flags))
                self._option_reply(option, _REP_ACK)
                if option == _OPT_GO:
                    return
            elif option == _OPT_ABORT:
                self._option_reply(option, _REP_ACK)
                raise NbdError("the client aborted the handshake")
            else:  # structured replies, metadata contexts, ...: simple replies only
                self._option_reply(option, _REP_ERR_UNSUP)
