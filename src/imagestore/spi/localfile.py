"""Local-file primitives a driver may share with the compute-node cache: the reflink ioctl
number and a ``pread`` range reader. Here, on the driver side of the line, so that the cache
does not reach into the file driver for them."""

from __future__ import annotations

import os

__all__ = ["FICLONE", "RangeReader"]

FICLONE = 0x40049409  # _IOW(0x94, 9, int)


class RangeReader:
    """``pread`` over an open file, from ``offset`` for ``length`` bytes; closes the descriptor."""

    def __init__(self, fd: int, offset: int, length: int) -> None:
        self.fd = fd
        self.pos = offset
        self.left = length
        os.posix_fadvise(fd, offset, length, os.POSIX_FADV_SEQUENTIAL)

    def read(self, n: int) -> bytes:
        if self.left <= 0 or self.fd < 0:
            return b""
        data = os.pread(self.fd, min(n, self.left), self.pos)
        self.pos += len(data)
        self.left -= len(data)
        return data

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1
