"""Filling one cache entry: a verified, inspected download written sparsely, or a reflink or
hard link of the store's own file (then hashed and inspected in one local read).

Both write under ``tmp/`` in a file flocked by its writer, so a killed fetch leaves only
a temporary that the next fetch of the key (or an eviction) removes.
"""

from __future__ import annotations

import errno
import fcntl
import os
import secrets
from collections.abc import Mapping
from pathlib import Path

from ..spi.contract import Reader
from ..spi.localfile import FICLONE, RangeReader
from ..formats import FormatVerdict, StreamInspector
from ..engine.progress import Progress
from ..engine.reader import ImageReader

__all__ = ["FICLONE", "SparseFile", "hash_and_inspect", "link_into", "new_temp", "stream_into"]

BLOCK = 64 << 10  # zero runs of at least this many (aligned) bytes become holes
_ZERO_BLOCK = bytes(BLOCK)
_ZEROS: dict[int, bytes] = {}


def _zeros(n: int) -> bytes:
    z = _ZEROS.get(n)
    if z is None:
        if len(_ZEROS) > 8:
            _ZEROS.clear()
        z = _ZEROS[n] = bytes(n)
    return z


class SparseFile:
    """Writes a stream at increasing offsets, leaving holes where whole aligned blocks are zero."""

    def __init__(self, fd: int) -> None:
        self.fd = fd
        self.pos = 0
        self.written = 0

    def _pwrite(self, data: memoryview, at: int) -> None:
        while data:
            n = os.pwrite(self.fd, data, at)
            data, at = data[n:], at + n

    def write(self, chunk: bytes) -> None:
        """Append ``chunk``; zero blocks are skipped (the file is sized in :meth:`finish`)."""
        n = len(chunk)
        start = self.pos
        self.pos += n
        if n == 0 or chunk == _zeros(n):
            return
        view = memoryview(chunk)
        if chunk.find(_ZERO_BLOCK) < 0:  # no zero run long enough anywhere: one write
            self._pwrite(view, start)
            self.written += n
            return
        run = -1  # start (in the chunk) of the pending run of data blocks
        i = 0
        while i < n:
            nxt = min(n, (start + i) // BLOCK * BLOCK + BLOCK - start)  # next block boundary
            if nxt - i == BLOCK and chunk[i:nxt] == _ZERO_BLOCK:
                if run >= 0:
                    self._pwrite(view[run:i], start + run)
                    self.written += i - run
                    run = -1
            elif run < 0:
                run = i
            i = nxt
        if run >= 0:
            self._pwrite(view[run:n], start + run)
            self.written += n - run

    def finish(self) -> None:
        """Give the file its full size (trailing holes included) and make it durable."""
        os.ftruncate(self.fd, self.pos)
        os.fsync(self.fd)


def new_temp(tmp_dir: Path, key: str, mode: int = 0o600) -> tuple[Path, int]:
    """A fresh temporary for ``key``, flocked by this process (so sweeps know it is live)."""
    path = tmp_dir / f"{key}.{os.getpid()}.{secrets.token_hex(4)}"
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC | os.O_NOFOLLOW, mode)
    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    return path, fd


def stream_into(reader: ImageReader, fd: int) -> tuple[FormatVerdict, int]:
    """Copy a (verifying) reader into ``fd`` sparsely, inspecting the format on the way;
    returns the verdict and the bytes actually written. ChecksumMismatch at the end if the
    bytes are not the expected ones."""
    out = SparseFile(fd)
    inspector = StreamInspector()
    for chunk in reader:
        data = chunk if isinstance(chunk, bytes) else bytes(chunk)
        inspector.feed(data)
        out.write(data)
    out.finish()
    return inspector.finish(), out.written


def link_into(src: str, tmp_dir: Path, key: str, *, reflink_only: bool) -> tuple[Path, str] | None:
    """Put the store's file ``src`` at a new temporary without copying: a reflink (its own
    inode, shared extents) or else a hard link (the same inode); None if neither works."""
    try:
        sfd = os.open(src, os.O_RDONLY | os.O_CLOEXEC | os.O_NOFOLLOW)
    except OSError:
        return None
    try:
        path, fd = new_temp(tmp_dir, key)
        try:
            fcntl.ioctl(fd, FICLONE, sfd)
            os.fsync(fd)
            os.close(fd)
            return path, "reflink"
        except OSError as exc:
            os.close(fd)
            os.unlink(path)
            if exc.errno not in (errno.EOPNOTSUPP, errno.ENOTTY, errno.EXDEV, errno.EINVAL, errno.EPERM,
                                 errno.ENOSYS):
                raise
        if reflink_only:
            return None
        path = tmp_dir / f"{key}.{os.getpid()}.{secrets.token_hex(4)}.link"
        try:
            os.link(src, path, follow_symlinks=False)
        except OSError:
            return None
        mine, linked = os.fstat(sfd), os.stat(path, follow_symlinks=False)
        if (mine.st_dev, mine.st_ino) != (linked.st_dev, linked.st_ino):  # replaced meanwhile
            os.unlink(path)
            return None
        return path, "hardlink"
    finally:
        os.close(sfd)


def hash_and_inspect(path: Path, expected: Mapping[str, str], *, chunk_size: int, progress: Progress | None,
                     label: str) -> FormatVerdict:
    """Read a local file once: verify it against ``expected`` (ChecksumMismatch) and inspect it."""
    size = os.stat(path).st_size

    def opener(at: int, n: int) -> Reader:
        return RangeReader(os.open(path, os.O_RDONLY | os.O_CLOEXEC), at, n)

    inspector = StreamInspector()
    with ImageReader(opener, offset=0, size=size, chunk_size=chunk_size, expected=expected, progress=progress,
                     store="cache", image=label) as reader:
        for chunk in reader:
            inspector.feed(chunk)
    return inspector.finish()
