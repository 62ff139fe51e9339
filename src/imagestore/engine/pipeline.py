"""The one add pipeline every driver shares.

One pass over the source: each chunk is handed to the hash threads, to the
format inspector and to the driver's writer, while the size cap and the
declared size are checked. Any failure aborts the writer, so a failed, refused
or interrupted add leaves nothing published.
"""

from __future__ import annotations

import io
import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import IO, Any, Union

from ..config import StoreSettings
from ..spi.contract import Writer
from ..errors import ImageTooLarge, InvalidArgument, SizeMismatch
from ..formats import FormatVerdict, StreamInspector
from .extents import local_file, read_extents
from .slots import SlotSource
from .hashing import BLOCK_SIZE, BLOCKS, INTEGRITY, BufferRing, ParallelHasher
from .limits import IdleWatch
from .progress import Progress, Throttled

__all__ = ["Limit", "Source", "WriteOutcome", "write_stream"]

Source = Union[bytes, bytearray, memoryview, str, "os.PathLike[str]", IO[bytes], Iterable[bytes], SlotSource]
"""What ``add`` accepts: bytes, a path, a binary file object or an iterable of byte chunks."""


@dataclass(frozen=True)
class Limit:
    """The largest image a store takes, and which setting says so (for the error message)."""

    size: int | None
    name: str = "max_image_size"

    def check(self, size: int, what: str, *, store: str, image: str) -> None:
        """Raise ImageTooLarge if ``size`` bytes exceed the limit."""
        if self.size is not None and size > self.size:
            raise ImageTooLarge(f"{what} of {size} bytes exceeds {self.name} of {self.size} bytes",
                                store=store, image=image)


@dataclass(frozen=True)
class WriteOutcome:
    """What the pipeline learned while writing: size, checksums, the BLAKE3 integrity digest,
    the block table (None for an image of at most one block) and the format verdict."""

    size: int
    checksums: dict[str, str]
    verdict: FormatVerdict | None
    integrity: str | None = None
    blocks: bytes | None = None


def _fill(readinto: Any, view: memoryview) -> int:
    """Fill ``view`` from a ``readinto`` callable; short only at end of stream."""
    got = 0
    while got < len(view):
        n = readinto(view[got:])
        if not n:
            break
        got += n
    return got


def _chunks(source: Any, ring: BufferRing, store: str, image: str) -> Iterator[tuple[int, memoryview]]:
    """Yield ``(slot, view)`` pairs; ``slot`` is the ring slot that keeps ``view`` alive."""
    if isinstance(source, (bytes, bytearray, memoryview)):
        whole = memoryview(source).cast("B")
        size = ring.chunk_size
        for start in range(0, len(whole), size):
            yield ring.next(), whole[start:start + size]
        return
    if isinstance(source, SlotSource):  # fills the ring's buffers itself
        yield from source.chunks_into(ring)
        return
    read = getattr(source, "read", None)
    fd = local_file(source)
    if fd is not None:  # a local file: by its extent map, holes without a read
        end = start = source.tell()
        try:
            for slot, view in read_extents(fd, start, ring):
                end += len(view)
                yield slot, view
        finally:
            source.seek(end)  # where a read of it would have left the file
        return
    if read is not None:
        readinto = getattr(source, "readinto", None)
        if readinto is None:
            def readinto(view: memoryview) -> int:
                data = read(len(view))
                view[: len(data)] = data
                return len(data)
        while True:
            slot = ring.next()
            buf = ring.buffer(slot)
            n = _fill(readinto, buf)
            if n == 0:
                return
            yield slot, buf[:n]
        return
    for chunk in source:
        if not isinstance(chunk, (bytes, bytearray, memoryview)):
            raise InvalidArgument(f"add() data chunks must be bytes, not {type(chunk).__name__}", store=store,
                                  image=image)
        if len(chunk):
            yield ring.next(), memoryview(chunk).cast("B")


def check_source(source: object, *, store: str, image: str) -> None:
    """InvalidArgument for data ``add`` cannot read: bytes, a path, a binary file or an iterable of bytes."""
    if isinstance(source, io.TextIOBase):
        raise InvalidArgument("add() needs a binary file object, not a text one", store=store, image=image)
    if isinstance(source, (bytes, bytearray, memoryview, str, os.PathLike)) or hasattr(source, "read"):
        return
    if not hasattr(source, "__iter__"):
        raise InvalidArgument(f"add() data must be bytes, a path, a binary file or an iterable of bytes, not "
                              f"{type(source).__name__}", store=store, image=image)


def check_options(*, store: str, image: str | None, format: object = None, progress: object = None) -> None:
    """InvalidArgument for a declared ``format`` that is not a string or a ``progress`` that is not callable."""
    if format is not None and not isinstance(format, str):
        raise InvalidArgument(f"format must be a format name, not {format!r}", store=store, image=image)
    if progress is not None and not callable(progress):
        raise InvalidArgument(f"progress must be callable(done, total), not {type(progress).__name__}", store=store,
                              image=image)


def open_source(source: Source) -> tuple[Any, IO[bytes] | None]:
    """The object to read from, and a file to close afterwards when we opened one."""
    if isinstance(source, (str, os.PathLike)):
        handle = open(source, "rb", buffering=0)  # noqa: SIM115 - closed by the caller
        return handle, handle
    if isinstance(source, io.TextIOBase):
        raise TypeError("add() needs a binary file object, not a text one")
    return source, None


def write_stream(
    writer: Writer,
    source: Source,
    *,
    settings: StoreSettings,
    size: int | None,
    limit: Limit,
    progress: Progress | None,
    store: str,
    image: str,
    watch: IdleWatch | None = None,
) -> WriteOutcome:
    """Stream ``source`` into ``writer`` through the hashers, inspector and ``limit``.

    Does not commit or abort: the caller decides, so that publication and policy
    stay in one place (``Store.add``).
    """
    cap = limit.size
    # BLAKE3 alone (a raw base records no glance checksums) may spread a chunk over the cores: no
    # md5 or sha512 thread needs them
    hasher = ParallelHasher((*settings.checksums, INTEGRITY, BLOCKS), parallel=not settings.checksums)
    inspector = StreamInspector() if settings.inspect else None
    ticker = Throttled(progress, size)
    total = 0
    data, opened = open_source(source)
    try:
        ring = BufferRing(hasher, settings.chunk_size)
        pieces = _chunks(data, ring, store, image)
        while True:
            if watch is None:
                item = next(pieces, None)
            else:
                with watch.reading():
                    item = next(pieces, None)
                watch.check(store=store, image=image)
            if item is None:
                break
            slot, view = item
            total += len(view)
            if cap is not None and total > cap:
                raise ImageTooLarge(f"upload exceeds {limit.name} of {cap} bytes", store=store, image=image)
            if size is not None and total > size:
                raise SizeMismatch(f"upload is longer than the declared {size} bytes", store=store, image=image)
            ring.hash(slot, view)
            if inspector is not None:
                inspector.feed(view)
            writer.write(view)
            ticker.advance(len(view))
        if size is not None and total != size:
            raise SizeMismatch(
                f"upload ended at {total} bytes, {size} were declared", store=store, image=image
            )
        checksums = hasher.digests()
        integrity = checksums.pop(INTEGRITY)
        table = bytes.fromhex(checksums.pop(BLOCKS))
    finally:
        hasher.close()
        if opened is not None:
            opened.close()
    ticker.finish()
    return WriteOutcome(total, checksums, inspector.finish() if inspector is not None else None, integrity,
                        table if total > BLOCK_SIZE else None)
