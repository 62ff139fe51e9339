"""What every per-format parser shares: findings, guarded callbacks, table walks."""

from __future__ import annotations

import struct
import sys
from array import array
from collections.abc import Callable
from typing import Any, ClassVar

from .stream import ByteStream
from .verdict import MAX_VIRTUAL_SIZE

__all__ = ["FormatParser", "TABLE_PIECE", "printable", "table_entries", "unpack"]

#: Large tables (L1, BAT, grain directories) are read in pieces of this size.
TABLE_PIECE = 1024 * 1024
#: Reasons kept per parser; a badly broken image does not need a thousand.
MAX_REASONS = 16


def unpack(fmt: str, data: bytes, offset: int = 0) -> tuple[Any, ...]:
    """``struct.unpack_from`` that reports a short buffer as ``ValueError``."""
    size = struct.calcsize(fmt)
    if offset < 0 or offset + size > len(data):
        raise ValueError(f"header truncated at byte {offset + size}")
    return struct.unpack_from(fmt, data, offset)


class FormatParser:
    """Inspects one disk format from the head, requested regions and the tail.

    Subclasses set ``name``, implement ``probe`` (does the head carry this
    format's signature?), ``start`` (parse the head, request regions) and
    optionally ``finish`` (checks that need the total size or the tail).
    Any exception they raise becomes a reason, never a crash.
    """

    name: ClassVar[str] = ""

    def __init__(self, stream: ByteStream) -> None:
        self.stream = stream
        self.reasons: list[str] = []
        self.virtual_size: int | None = None
        self.partition_table: str | None = None
        self.overflowed = False

    # -- to override ---------------------------------------------------------

    @classmethod
    def probe(cls, head: bytes) -> bool:
        """True when ``head`` (the first bytes of the stream) carries the signature."""
        raise NotImplementedError

    def start(self, head: bytes) -> None:
        """Parse what the head holds and request the regions still needed."""

    def finish(self, size: int, tail: bytes) -> None:
        """Run the checks that need the stream size (``size``) or its last bytes."""

    # -- helpers -------------------------------------------------------------

    @property
    def safe(self) -> bool:
        """True when no check failed."""
        return not self.reasons

    def fail(self, reason: str) -> None:
        """Record why the image is unsafe (deduplicated, bounded)."""
        if reason not in self.reasons and len(self.reasons) < MAX_REASONS:
            self.reasons.append(reason)

    def claim_table(self, offset: int, seen: set[int], what: str, align: int = 1) -> bool:
        """Record a table at ``offset``; False (with a reason) if misaligned or already claimed.

        A table referenced twice lets one region be read as two: a crafted image.
        """
        if offset % align or offset == 0:
            self.fail(f"{what} at {offset:#x} is not aligned to {align:#x}")
            return False
        if offset in seen:
            self.fail(f"{what} {offset:#x} is referenced twice")
            return False
        seen.add(offset)
        return True

    def guard(self, fn: Callable[..., None], *args: Any) -> None:
        """Run ``fn``; a parsing error becomes a "malformed" reason."""
        try:
            fn(*args)
        except Exception as exc:  # noqa: BLE001 - malformed input must never escape
            detail = str(exc) or type(exc).__name__
            self.fail(f"malformed {self.name} metadata: {detail}")

    def want(
        self,
        offset: int,
        length: int,
        fn: Callable[[int, bytes], None],
        what: str,
        *,
        missing_ok: bool = False,
        partial_ok: bool = False,
    ) -> None:
        """Ask for ``length`` bytes at ``offset``; ``fn(offset, data)`` gets them whole.

        A region cut short by the end of the stream is a "truncated" reason; one
        the stream already went past is a reason too unless ``missing_ok``;
        with ``partial_ok`` a short region is handed to ``fn`` as it is.
        """

        def deliver(off: int, data: bytes | None) -> None:
            if data is None:
                if not missing_ok:
                    self.fail(f"{what} at offset {off} precedes the structure that locates it")
            elif len(data) < length and not partial_ok:
                self.fail(f"{what} at offset {off} extends past the end of the image (truncated)")
            else:
                self.guard(fn, off, data)

        self.stream.request(offset, length, deliver, self._overflow)

    def _overflow(self, reason: str) -> None:
        self.overflowed = True
        self.fail(reason)

    def want_table(
        self,
        offset: int,
        length: int,
        fn: Callable[[int, bytes], None],
        what: str,
        piece: int = TABLE_PIECE,
        *,
        missing_ok: bool = False,
    ) -> None:
        """Ask for a table in ``piece``-sized parts, each delivered on its own."""
        end = offset + length
        while offset < end:
            size = min(piece, end - offset)
            self.want(offset, size, fn, what, missing_ok=missing_ok)
            offset += size

    def check_virtual_size(self, size: int) -> None:
        """Record ``size`` as the virtual size, failing if it is absurd."""
        if size < 0 or size > MAX_VIRTUAL_SIZE:
            self.fail(f"virtual size {size} is out of range")
            self.virtual_size = None
        else:
            self.virtual_size = size


def printable(data: bytes, limit: int = 80) -> str:
    """Quote untrusted header text for a reason string (ASCII, bounded)."""
    text = data.split(b"\x00", 1)[0][:limit].decode("ascii", "replace")
    text = "".join(ch if ch.isprintable() else "?" for ch in text)
    return repr(text + ("..." if len(data) > limit and b"\x00" not in data[:limit] else ""))


def table_entries(data: bytes, width: int, big_endian: bool) -> array[int]:
    """Decode a table of unsigned ``width``-byte (4 or 8) integers, fast."""
    table = array("I" if width == 4 else "Q")
    if table.itemsize != width:  # pragma: no cover - exotic platforms
        fmt = (">" if big_endian else "<") + ("I" if width == 4 else "Q")
        table = array("Q", (v for (v,) in struct.iter_unpack(fmt, data[: len(data) // width * width])))
        return table
    table.frombytes(data[: len(data) // width * width])
    if big_endian != (sys.byteorder == "big"):
        table.byteswap()
    return table
