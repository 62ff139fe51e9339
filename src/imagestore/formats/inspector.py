"""The streaming inspector: feed it the chunks being stored, get a verdict at the end.

One pass, no seeking: every known format's signature is probed on the first
64 KiB, the matching parsers ask for the regions they need, and the fixed-VHD
footer is looked for in the last bytes. Memory stays at a few MiB whatever the
image size, and a chunk nobody asked for costs a few comparisons.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import BinaryIO

from .base import FormatParser
from .iso import IsoParser
from .luks import LuksParser
from .partitions import PartitionParser
from .polyglot import decide
from .qcow2 import Qcow2Parser
from .qed import QedParser
from .stream import TAIL_SIZE, ByteStream
from .vdi import VdiParser
from .verdict import FormatVerdict
from .vhd import VhdParser
from .vhdx import VhdxParser
from .vmdk import VmdkParser

__all__ = ["PARSERS", "StreamInspector", "inspect", "inspect_at"]

#: Every format recognised from the head of the stream.
PARSERS: tuple[type[FormatParser], ...] = (
    Qcow2Parser, QedParser, VmdkParser, VhdxParser, LuksParser, VhdParser, VdiParser, IsoParser,
)


class StreamInspector:
    """Inspect an image while it streams past; ``finish()`` returns the verdict.

    ``feed`` accepts consecutive chunks of any size and keeps no reference to
    them. ``finish`` may be called once the stream ended (calling it again
    returns the same verdict).
    """

    def __init__(self) -> None:
        self._stream = ByteStream(self._on_head)
        self._matches: list[FormatParser] = []
        self._table: PartitionParser | None = None
        self._verdict: FormatVerdict | None = None

    @property
    def bytes_seen(self) -> int:
        """Total number of bytes fed so far."""
        return self._stream.pos

    def feed(self, chunk: bytes | bytearray | memoryview) -> None:
        """Inspect the next chunk of the stream."""
        if self._verdict is not None:
            raise RuntimeError("feed() after finish()")
        self._stream.feed(chunk)

    def finish(self) -> FormatVerdict:
        """End of stream: run the remaining checks and return the verdict."""
        if self._verdict is not None:
            return self._verdict
        tail = self._stream.finish()
        size = self._stream.pos
        if not any(p.name == "vhd" for p in self._matches) and VhdParser.probe_footer(tail):
            self._matches.append(VhdParser(self._stream, fixed=True))
        for parser in [*self._matches, *([self._table] if self._table else [])]:
            parser.guard(parser.finish, size, tail)
        self._verdict = decide(self._matches, self._table, size)
        return self._verdict

    def wanted(self) -> int | None:
        """The next offset a parser needs (the stream's position while the head is incomplete);
        None when nothing before the tail is waited for."""
        return self._stream.wanted()

    def skip(self, to: int) -> None:
        """Pass over bytes nobody needs, up to :meth:`wanted` (for a source read at random)."""
        self._stream.skip(to)

    def _on_head(self) -> None:
        head = bytes(self._stream.head)
        for cls in PARSERS:
            try:
                matched = cls.probe(head)
            except Exception:  # noqa: BLE001 - a probe must never break the stream
                matched = False
            if matched:
                parser = cls(self._stream)
                self._matches.append(parser)
                parser.guard(parser.start, head)
        if PartitionParser.probe(head):
            self._table = PartitionParser(self._stream)
            self._table.guard(self._table.start, head)


def inspect(
    source: str | os.PathLike[str] | BinaryIO, chunk_size: int = 4 << 20
) -> FormatVerdict:
    """Inspect a file (path) or a binary file object read to its end; nothing is stored.

    A file object is read from its current position and left open.
    """
    if chunk_size <= 0:
        raise ValueError("chunk_size must be positive")
    if isinstance(source, (str, os.PathLike)):
        with open(source, "rb") as fileobj:
            return _inspect_file(fileobj, chunk_size)
    return _inspect_file(source, chunk_size)


def _inspect_file(fileobj: BinaryIO, chunk_size: int) -> FormatVerdict:
    inspector = StreamInspector()
    readinto = getattr(fileobj, "readinto", None)
    if readinto is not None:
        buf = bytearray(chunk_size)
        view = memoryview(buf)
        while True:
            n = readinto(view)
            if not n:
                break
            inspector.feed(view[:n])
    else:
        while True:
            data = fileobj.read(chunk_size)
            if not data:
                break
            inspector.feed(data)
    return inspector.finish()


def inspect_at(read_at: Callable[[int, int], bytes | memoryview], size: int, chunk_size: int = 1 << 20) -> FormatVerdict:
    """Inspect an image of ``size`` bytes that can be read at any offset (``read_at(offset,
    length)``), reading only what the parsers ask for: the head, the regions their headers and
    tables point at, and the tail. The verdict is the one a full pass gives (the parsers never see
    a byte nobody asked for); a converter's source costs its metadata, not its data."""
    if chunk_size < TAIL_SIZE:
        raise ValueError(f"chunk_size must be at least {TAIL_SIZE}")
    inspector = StreamInspector()
    tail = max(size - TAIL_SIZE, 0)
    pos = 0
    while pos < size:
        want = inspector.wanted()
        to = tail if want is None else min(want, tail)
        if to > pos:
            inspector.skip(to)
            pos = to
        data = read_at(pos, min(chunk_size, size - pos))
        if not data:
            raise EOFError(f"the image ended at byte {pos} of {size}")
        inspector.feed(data)
        pos += len(data)
    return inspector.finish()
