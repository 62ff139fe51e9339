"""An upload into a file store: a flocked temporary under ``ROOT/.tmp``, fsynced, its
metadata in xattrs, published under the image's name by ``link()`` (which never overwrites)."""

from __future__ import annotations

import errno
import fcntl
import os
import secrets
from collections.abc import Mapping

from ...errors import AlreadyExists, ConfigError
from ...location import Location
from .core import OPEN_FLAGS, XATTR, Root, write_all

__all__ = ["FileWriter"]


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

    def write(self, data: memoryview) -> None:
        write_all(self.fd, data)

    def commit(self, metadata: Mapping[str, str]) -> Location:
        driver = self.driver
        try:
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
