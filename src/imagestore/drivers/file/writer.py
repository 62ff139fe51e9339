"""An upload into a file store: a flocked temporary under ``ROOT/.tmp``, fsynced, its
metadata in xattrs, published under the image's name by ``link()`` (which never overwrites).
Chunks of zeros become holes (the file stays sparse, as ``qemu-img`` and ``cp`` make it)."""

from __future__ import annotations

import errno
import fcntl
import os
import secrets
from collections.abc import Mapping

from ...errors import AlreadyExists, ConfigError
from ...location import Location
from ...spi.localfile import punch_hole
from ...spi.zeros import is_zero
from .core import OPEN_FLAGS, XATTR, Root, write_all

__all__ = ["FileWriter"]

_HOLE_MIN = 64 * 1024
"""Zero chunks this long or longer are left as holes (shorter ones are written: not worth a seek)."""


class FileWriter:
    """An upload into ``ROOT/.tmp/<id>.<pid>.<random>``; published by ``link`` in :meth:`commit`."""

    def __init__(self, driver: Root, image_id: str) -> None:
        self.driver = driver
        self.image_id = image_id
        self.tmp_fd = driver.tmp_dir()
        self.tmp_name = f"{image_id}.{os.getpid()}.{secrets.token_hex(6)}"
        self.fd = os.open(self.tmp_name, os.O_RDWR | os.O_CREAT | os.O_EXCL | OPEN_FLAGS,
                          driver.file_mode, dir_fd=self.tmp_fd)
        fcntl.flock(self.fd, fcntl.LOCK_EX | fcntl.LOCK_NB)  # tells sweep() we are alive
        self.done = False
        self.size = 0
        self.hole = False  # the file ends in a hole not yet sized by ftruncate
        self.holes: list[list[int]] = []  # [offset, length] of the runs skipped, adjacent ones merged

    def write(self, data: memoryview) -> None:
        """Append ``data``: its runs of zeros of :data:`_HOLE_MIN` bytes or more (aligned) as holes."""
        view = memoryview(data).cast("B")
        if len(view) < _HOLE_MIN or not is_zero(view[:_HOLE_MIN]) and not is_zero(view[-_HOLE_MIN:]):
            self._data(view)  # the common case (no zeros at either end): one write, no scan
            return
        start = 0  # the run of data not yet written
        for at in range(0, len(view) - _HOLE_MIN + 1, _HOLE_MIN):
            if is_zero(view[at:at + _HOLE_MIN]):
                if start < at:
                    self._data(view[start:at])
                self._skip(_HOLE_MIN)
                start = at + _HOLE_MIN
        if start < len(view):
            self._data(view[start:])

    def _data(self, view: memoryview) -> None:
        write_all(self.fd, view)
        self.size += len(view)
        self.hole = False

    def _skip(self, n: int) -> None:
        os.lseek(self.fd, n, os.SEEK_CUR)
        if self.holes and sum(self.holes[-1]) == self.size:
            self.holes[-1][1] += n
        else:
            self.holes.append([self.size, n])
        self.size += n
        self.hole = True

    def _punch(self) -> None:
        """Free what the filesystem preallocated inside the skipped runs (they stay holes)."""
        for offset, length in self.holes:
            if not punch_hole(self.fd, offset, length):
                return

    def commit(self, metadata: Mapping[str, str]) -> Location:
        driver = self.driver
        try:
            if self.hole:
                os.ftruncate(self.fd, self.size)
            self._punch()
            for key, value in metadata.items():
                os.setxattr(self.fd, XATTR + key, value.encode())
            os.fchmod(self.fd, driver.file_mode)
            os.fsync(self.fd)
            driver.check_root(self.image_id)
            os.link(self.tmp_name, self.image_id, src_dir_fd=self.tmp_fd, dst_dir_fd=driver.root_fd,
                    follow_symlinks=False)
        except FileExistsError:
            self.abort()
            raise AlreadyExists("an image with this id exists", store=driver.name, image=self.image_id) from None
        except OSError as exc:
            self.abort()
            if exc.errno in (errno.ENOTSUP, errno.EOPNOTSUPP):
                raise ConfigError(f"the filesystem of {driver.root} has no user extended attributes",
                                  key=f"stores.{driver.name}.root") from exc
            raise
        except BaseException:
            self.abort()
            raise
        self.abort()  # drops the temporary name; the published link stays
        os.fsync(driver.root_fd)
        return driver.location_for(self.image_id)

    def abort(self) -> None:
        if self.done:
            return
        self.done = True
        try:
            os.unlink(self.tmp_name, dir_fd=self.tmp_fd)
        except FileNotFoundError:
            pass
        finally:
            os.close(self.fd)
