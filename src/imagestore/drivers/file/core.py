"""What every part of the file driver shares: the on-disk naming (``ROOT/.tmp``, the
``user.imagestore.*`` xattrs), open flags, image versions,
and the :class:`Root` the writer and adoption work in (the driver is one).
"""

from __future__ import annotations

import errno
import os
from typing import Protocol

from ...location import Location
from ...spi.localfile import FICLONE

__all__ = ["FICLONE", "GONE", "OPEN_FLAGS", "TMP", "XATTR", "Root", "tmpfile", "version_of", "write_all"]

XATTR = "user.imagestore."
TMP = ".tmp"
OPEN_FLAGS = os.O_NOFOLLOW | os.O_CLOEXEC
GONE = (errno.ENOENT, errno.ELOOP, errno.ENOTDIR)


class Root(Protocol):
    """An opened store root, as a writer or an adoption uses it (:class:`FileDriver` is one)."""

    name: str
    root: str
    root_fd: int
    file_mode: int

    def check_root(self, image: str | None = None) -> None:
        """Raise BackendError when ROOT is gone or replaced since it was opened."""

    def tmp_dir(self) -> int:
        """Descriptor of ``ROOT/.tmp``, made on the first write."""

    def location_for(self, image_id: str) -> Location:
        """The location of image ``image_id`` in this root."""


def version_of(st: os.stat_result) -> str:
    """An image file's version: device, inode, size and change time (any write, truncate,
    chmod or xattr change moves the change time, which no caller can set back)."""
    return f"{st.st_dev}:{st.st_ino}:{st.st_size}:{st.st_ctime_ns}"


def write_all(fd: int, data: memoryview) -> None:
    """``os.write`` until all of ``data`` is written."""
    while data:
        n = os.write(fd, data)
        data = data[n:]


def tmpfile(dir_fd: int) -> int:
    """An unnamed file in the directory (gone when closed)."""
    return os.open(".", os.O_TMPFILE | os.O_RDWR | os.O_CLOEXEC, 0o600, dir_fd=dir_fd)
