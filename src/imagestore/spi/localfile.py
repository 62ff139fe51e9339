"""Local-file primitives a driver may share with the compute-node cache: the reflink ioctl
number and a ``pread`` range reader. Here, on the driver side of the line, so that the cache
does not reach into the file driver for them."""

from __future__ import annotations

import ctypes
import ctypes.util
import errno
import os

__all__ = ["FICLONE", "RangeReader", "punch_hole"]

FICLONE = 0x40049409  # _IOW(0x94, 9, int)
_PUNCH = 0x02 | 0x01  # FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE
_libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
_libc.fallocate.argtypes = (ctypes.c_int, ctypes.c_int, ctypes.c_int64, ctypes.c_int64)


def punch_hole(fd: int, offset: int, length: int) -> bool:
    """Deallocate ``length`` bytes from ``offset`` (they read as zeros); False where the filesystem
    cannot (the range then stays as it is). Frees what a filesystem preallocated in a range that
    was skipped with ``lseek`` (XFS's speculative preallocation)."""
    if _libc.fallocate(fd, _PUNCH, offset, length) == 0:
        return True
    err = ctypes.get_errno()
    if err in (errno.EOPNOTSUPP, errno.ENOSYS):
        return False
    raise OSError(err, os.strerror(err))


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
