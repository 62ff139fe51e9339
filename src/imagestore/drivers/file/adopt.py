"""Adopting a file a consumer placed in a file store's root.

A file has no snapshot, so immutability is what the filesystem can honestly give: the
file is held open from the start, and on commit it must still be the same inode with
the same size and change time (any write, truncate or replacement while it was read
fails the adoption); then the metadata goes into its xattrs and its write bits are
dropped. A process with the right to chmod it back can still change it; every verified
read (checksum) and ``verify_source`` (version) would then notice.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Mapping

from ...errors import AlreadyExists, BackendError
from ...location import Location
from .core import XATTR, Root

__all__ = ["FileAdoption"]


def _same(a: os.stat_result, b: os.stat_result) -> bool:
    return (a.st_dev, a.st_ino, a.st_size, a.st_mtime_ns, a.st_ctime_ns) == \
        (b.st_dev, b.st_ino, b.st_size, b.st_mtime_ns, b.st_ctime_ns)


class FileAdoption:
    """One adoption in progress; owns ``fd`` (the consumer's file, opened read-only)."""

    def __init__(self, driver: Root, fd: int, st: os.stat_result, name: str) -> None:
        self._d, self._fd, self._st, self._name = driver, fd, st, name
        try:
            if any(key.startswith(XATTR) for key in os.listxattr(fd)):
                raise AlreadyExists("the file is registered already", store=driver.name, image=name)
        except BaseException:
            os.close(fd)
            raise
        self.size = st.st_size
        self.location = driver.location_for(name)

    def commit(self, metadata: Mapping[str, str]) -> Location:
        """Check the file is unchanged, store the metadata, drop its write bits, fsync."""
        d, fd = self._d, self._fd
        try:
            by_name = os.stat(self._name, dir_fd=d.root_fd, follow_symlinks=False)
            if not (_same(os.fstat(fd), self._st) and _same(by_name, self._st)):
                raise BackendError("the file changed or was replaced while it was being adopted; "
                                   "nothing was registered", store=d.name, image=self._name)
            for key, value in metadata.items():
                os.setxattr(fd, XATTR + key, value.encode())
            os.fchmod(fd, stat.S_IMODE(self._st.st_mode) & ~0o222)
            os.fsync(fd)
        except BaseException:
            self._undo_xattrs(metadata)
            raise
        finally:
            os.close(fd)
            self._fd = -1
        return self.location

    def _undo_xattrs(self, metadata: Mapping[str, str]) -> None:
        for key in metadata:
            try:
                os.removexattr(self._fd, XATTR + key)
            except OSError:
                pass

    def abort(self) -> None:
        """Release the file; nothing of it was changed."""
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1
