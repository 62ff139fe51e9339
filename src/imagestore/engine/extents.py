"""Reading a local file by its extent map: holes (``SEEK_HOLE``) come out as zeros without a read.

A sparse raw disk of 4 GiB holding 1 GiB of data costs a read of 1 GiB, not of 4: the kernel
fills every page of a hole it is asked to read (about 0.5 GB/s here, slower than the data), and
the consumers of the zeros (hashers, a sparse writer) need no page of them. A filesystem without
extent maps reports the whole file as data, which is read as before."""

from __future__ import annotations

import errno
import io
import os
import stat
from collections.abc import Iterator
from typing import Any

from ..spi.zeros import zeros
from .slots import Slots

__all__ = ["local_file", "read_extents"]


def local_file(source: Any) -> int | None:
    """The descriptor of ``source`` when it is a plain local file object of the standard library
    (its bytes are exactly the file's, so reading them by offset is reading it); else None."""
    if type(source) is io.BufferedReader:
        source = source.raw
    if type(source) is not io.FileIO or source.closed or not source.readable():
        return None
    try:
        fd = source.fileno()
        return fd if stat.S_ISREG(os.fstat(fd).st_mode) else None
    except OSError:
        return None


def _next_data(fd: int, pos: int) -> int:
    """Where the next data at or after ``pos`` starts: the file's size when only a hole is left
    (``pos`` itself where the filesystem has no extent map to ask)."""
    try:
        return os.lseek(fd, pos, os.SEEK_DATA)
    except OSError as exc:
        if exc.errno != errno.ENXIO:
            return pos
        return max(pos, os.fstat(fd).st_size)


def _hole_after(fd: int, pos: int) -> int:
    """Where the data at ``pos`` ends: the next hole, else the file's end."""
    try:
        return os.lseek(fd, pos, os.SEEK_HOLE)
    except OSError:
        return os.fstat(fd).st_size


def read_extents(fd: int, start: int, slots: Slots) -> Iterator[tuple[int, memoryview]]:
    """``(slot, view)`` chunks of the file from ``start`` to its end: data read into the slot's
    buffer, holes as views of the shared zero buffer (known zeros: no check, copy or hash looks
    at them)."""
    hole_chunk = zeros(slots.chunk_size)
    pos = start
    while True:
        data = _next_data(fd, pos)
        while pos < data:
            n = min(slots.chunk_size, data - pos)
            yield slots.next(), hole_chunk[:n]
            pos += n
        if pos >= os.fstat(fd).st_size:
            return
        hole = _hole_after(fd, pos)
        while pos < hole:
            slot = slots.next()
            buf = slots.buffer(slot)
            n = os.preadv(fd, [buf[:min(len(buf), hole - pos)]], pos)
            if n == 0:
                return  # the file shrank under the read
            yield slot, buf[:n]
            pos += n
