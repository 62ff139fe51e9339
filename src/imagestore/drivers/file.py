"""Images as files under one root directory, confined to it.

Layout: ``ROOT/<id>`` is the image, its metadata (checksums, format) is kept in
``user.imagestore.*`` extended attributes of the same inode, so it is published
atomically with the bytes. Uploads go to ``ROOT/.tmp/`` (held by an ``flock``
while the writer lives), are fsynced, then published with ``link()``, which
never overwrites. Every access is relative to a directory descriptor of ROOT
with ``O_NOFOLLOW``, so no id, location or symlink reaches outside ROOT.
Clones use ``FICLONE`` (reflink, O(1)) when both roots share a reflink
filesystem, else ``copy_file_range`` within one filesystem.
"""

from __future__ import annotations

import errno
import fcntl
import os
import secrets
import stat
import threading
import time
from collections.abc import Mapping
from typing import ClassVar

from ..capabilities import Capabilities
from ..errors import AlreadyExists, ConfigError, InvalidLocation, NotFound, PermissionDenied
from ..location import DirectAccess, Location
from .base import ClonePlan, CloneRequest, DeleteResult, Driver, Option, Stored

__all__ = ["FileDriver"]

FICLONE = 0x40049409  # _IOW(0x94, 9, int)
_XATTR = "user.imagestore."
_TMP = ".tmp"
_STALE_AFTER = 10.0  # seconds: a temp this old whose lock is free belongs to a dead writer
_OPEN_FLAGS = os.O_NOFOLLOW | os.O_CLOEXEC


def _write_all(fd: int, data: memoryview) -> None:
    while data:
        n = os.write(fd, data)
        data = data[n:]


class _FileWriter:
    """An upload into ``ROOT/.tmp/<random>``; published by ``link`` in :meth:`commit`."""

    def __init__(self, driver: FileDriver, image_id: str) -> None:
        self.driver = driver
        self.image_id = image_id
        self.tmp_name = f"{image_id}.{os.getpid()}.{secrets.token_hex(6)}"
        self.fd = os.open(self.tmp_name, os.O_RDWR | os.O_CREAT | os.O_EXCL | _OPEN_FLAGS,
                          driver.file_mode, dir_fd=driver.tmp_fd)
        fcntl.flock(self.fd, fcntl.LOCK_EX | fcntl.LOCK_NB)  # tells sweep() we are alive
        self.done = False

    def write(self, data: memoryview) -> None:
        _write_all(self.fd, data)

    def commit(self, metadata: Mapping[str, str]) -> Location:
        driver = self.driver
        try:
            for key, value in metadata.items():
                os.setxattr(self.fd, _XATTR + key, value.encode())
            os.fchmod(self.fd, driver.file_mode)
            os.fsync(self.fd)
            os.link(self.tmp_name, self.image_id, src_dir_fd=driver.tmp_fd, dst_dir_fd=driver.root_fd,
                    follow_symlinks=False)
        except FileExistsError:
            self.abort()
            raise AlreadyExists("an image with this id exists", store=driver.name, image=self.image_id) from None
        except OSError as exc:
            self.abort()
            raise driver.os_error(exc, self.image_id, "publish") from exc
        self.abort()  # drops the temporary name; the published link stays
        os.fsync(driver.root_fd)
        return driver.location_for(self.image_id)

    def abort(self) -> None:
        if self.done:
            return
        self.done = True
        try:
            os.unlink(self.tmp_name, dir_fd=self.driver.tmp_fd)
        except FileNotFoundError:
            pass
        finally:
            os.close(self.fd)


class _FileReader:
    """``pread`` over an open image file, from ``offset`` for ``length`` bytes."""

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


class FileDriver(Driver):
    """A directory of image files: root-confined, atomic publish, reflink clones."""

    scheme = "file"
    OPTIONS: ClassVar[Mapping[str, Option]] = {
        "root": Option(str, required=True, help="directory that holds the images"),
        "file_mode": Option(int, default=0o640, help="permission bits of image files"),
        "dir_mode": Option(int, default=0o750, help="permission bits of ROOT when it is created"),
    }

    def __init__(self, name: str, root: str, file_mode: int = 0o640, dir_mode: int = 0o750) -> None:
        super().__init__(name)
        if not os.path.isabs(root):
            raise ConfigError(f"root must be an absolute path, got {root!r}", key=f"stores.{name}.root")
        self.root = os.path.normpath(root)
        self.file_mode = file_mode
        self.dir_mode = dir_mode
        self._segments = tuple(p for p in self.root.split("/") if p)
        self._lock = threading.Lock()
        self._root_fd = -1
        self._tmp_fd = -1
        self._reflink: bool | None = None

    # ---------------------------------------------------------------- setup
    def _open_dirs(self) -> None:
        with self._lock:
            if self._root_fd >= 0:
                return
            try:
                os.makedirs(self.root, mode=self.dir_mode, exist_ok=True)
                root_fd = os.open(self.root, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
                try:
                    os.mkdir(_TMP, 0o700, dir_fd=root_fd)
                except FileExistsError:
                    pass
                tmp_fd = os.open(_TMP, os.O_RDONLY | os.O_DIRECTORY | _OPEN_FLAGS, dir_fd=root_fd)
            except PermissionError as exc:
                raise PermissionDenied(f"cannot use root {self.root}: {exc.strerror}", store=self.name) from exc
            except OSError as exc:
                raise ConfigError(f"cannot use root {self.root}: {exc.strerror}",
                                  key=f"stores.{self.name}.root") from exc
            self._root_fd, self._tmp_fd = root_fd, tmp_fd

    @property
    def root_fd(self) -> int:
        """Descriptor of ROOT, opened on first use."""
        if self._root_fd < 0:
            self._open_dirs()
        return self._root_fd

    @property
    def tmp_fd(self) -> int:
        """Descriptor of ``ROOT/.tmp``, opened on first use."""
        if self._tmp_fd < 0:
            self._open_dirs()
        return self._tmp_fd

    def os_error(self, exc: OSError, image: str | None, op: str) -> Exception:
        """The imagestore error for an OSError (the message holds no path outside ROOT)."""
        if exc.errno in (errno.ENOENT, errno.ELOOP, errno.ENOTDIR):
            return NotFound("no such image", store=self.name, image=image)
        if exc.errno in (errno.EACCES, errno.EPERM):
            return PermissionDenied(f"{op}: permission denied", store=self.name, image=image)
        if exc.errno in (errno.ENOTSUP, errno.EOPNOTSUPP) and op == "publish":
            return ConfigError(f"the filesystem of {self.root} has no user extended attributes",
                               key=f"stores.{self.name}.root")
        return OSError(exc.errno, f"{op} in store {self.name!r}: {exc.strerror}")

    def reflink_capable(self) -> bool:
        """Whether ROOT's filesystem supports FICLONE (probed once with two temp files)."""
        if self._reflink is None:
            a = b = -1
            names = [f"probe.{secrets.token_hex(6)}" for _ in range(2)]
            try:
                a = os.open(names[0], os.O_RDWR | os.O_CREAT | os.O_EXCL | _OPEN_FLAGS, 0o600, dir_fd=self.tmp_fd)
                b = os.open(names[1], os.O_RDWR | os.O_CREAT | os.O_EXCL | _OPEN_FLAGS, 0o600, dir_fd=self.tmp_fd)
                os.write(a, b"imagestore reflink probe\n")
                fcntl.ioctl(b, FICLONE, a)
                self._reflink = True
            except OSError:
                self._reflink = False
            finally:
                for fd in (a, b):
                    if fd >= 0:
                        os.close(fd)
                for n in names:
                    try:
                        os.unlink(n, dir_fd=self.tmp_fd)
                    except FileNotFoundError:
                        pass
        return self._reflink

    # ---------------------------------------------------------------- description
    @property
    def capabilities(self) -> Capabilities:
        return Capabilities(cow_clone=self.reflink_capable(), server_copy=True, direct_access=True)

    def describe(self) -> dict[str, object]:
        return {"root": self.root, "reflink": self.reflink_capable()}

    def location_for(self, image_id: str) -> Location:
        return Location("file", "", (*self._segments, image_id), self.name)

    def owns(self, location: Location) -> bool:
        return (location.scheme == "file" and location.host == ""
                and location.path[:-1] == self._segments and len(location.path) == len(self._segments) + 1)

    def _name(self, location: Location) -> str:
        if not self.owns(location):
            raise InvalidLocation(f"{location} is not under root {self.root}", store=self.name)
        name = location.path[-1]
        if name.startswith(".") or "/" in name:
            raise InvalidLocation(f"bad image name {name!r}", store=self.name)
        return name

    def _open_image(self, location: Location) -> tuple[int, os.stat_result]:
        name = self._name(location)
        try:
            fd = os.open(name, os.O_RDONLY | _OPEN_FLAGS | os.O_NONBLOCK, dir_fd=self.root_fd)
        except OSError as exc:
            raise self.os_error(exc, name, "open") from exc
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            os.close(fd)
            raise NotFound("not a regular file", store=self.name, image=name)
        return fd, st

    # ---------------------------------------------------------------- data
    def open_writer(self, image_id: str, size: int | None) -> _FileWriter:
        self.sweep()
        try:
            os.stat(image_id, dir_fd=self.root_fd, follow_symlinks=False)
        except FileNotFoundError:
            pass
        else:
            raise AlreadyExists("an image with this id exists", store=self.name, image=image_id)
        try:
            return _FileWriter(self, image_id)
        except OSError as exc:
            raise self.os_error(exc, image_id, "create") from exc

    def open_reader(self, location: Location, offset: int = 0, length: int | None = None) -> _FileReader:
        fd, st = self._open_image(location)
        return _FileReader(fd, offset, st.st_size - offset if length is None else length)

    def stat(self, location: Location) -> Stored:
        fd, st = self._open_image(location)
        try:
            meta = {}
            for key in os.listxattr(fd):
                if key.startswith(_XATTR):
                    meta[key[len(_XATTR):]] = os.getxattr(fd, key).decode()
        finally:
            os.close(fd)
        return Stored(st.st_size, meta)

    def delete(self, location: Location) -> DeleteResult:
        name = self._name(location)
        try:
            st = os.stat(name, dir_fd=self.root_fd, follow_symlinks=False)
            if not stat.S_ISREG(st.st_mode):
                raise NotFound("not a regular file", store=self.name, image=name)
            os.unlink(name, dir_fd=self.root_fd)
        except OSError as exc:
            raise self.os_error(exc, name, "delete") from exc
        os.fsync(self.root_fd)
        return "deleted"

    def sweep(self) -> int:
        """Remove ``.tmp`` files of dead writers: older than a few seconds and not flock-ed."""
        removed = 0
        now = time.time()
        for entry in os.scandir(self.tmp_fd):
            try:
                if now - entry.stat(follow_symlinks=False).st_mtime < _STALE_AFTER:
                    continue
                fd = os.open(entry.name, os.O_RDONLY | _OPEN_FLAGS | os.O_NONBLOCK, dir_fd=self.tmp_fd)
            except OSError:
                continue
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                continue  # a live writer holds it
            finally:
                os.close(fd)
            try:
                os.unlink(entry.name, dir_fd=self.tmp_fd)
                removed += 1
            except FileNotFoundError:
                pass
        return removed

    # ---------------------------------------------------------------- clone / locate
    def plan_clone(self, location: Location, target: Driver) -> ClonePlan:
        if not isinstance(target, FileDriver):
            return ClonePlan(None, f"target store is a {target.scheme!r} store, not a file store")
        same_fs = os.fstat(self.root_fd).st_dev == os.fstat(target.root_fd).st_dev
        if not same_fs:
            return ClonePlan(None, f"{self.root} and {target.root} are on different filesystems")
        if self.reflink_capable():
            return ClonePlan("cow", "same filesystem with reflink (FICLONE)")
        return ClonePlan("server_copy", "same filesystem without reflink (copy_file_range)")

    def clone(self, location: Location, target: Driver, request: CloneRequest) -> Location:
        assert isinstance(target, FileDriver)
        src, st = self._open_image(location)
        try:
            writer = target.open_writer(request.name, st.st_size)
            try:
                if request.mode == "cow":
                    fcntl.ioctl(writer.fd, FICLONE, src)
                else:
                    left = st.st_size
                    while left > 0:
                        n = os.copy_file_range(src, writer.fd, min(left, 1 << 30))
                        if n == 0:
                            break
                        left -= n
            except BaseException:
                writer.abort()
                raise
            return writer.commit(request.metadata)
        finally:
            os.close(src)

    def locate(self, location: Location) -> DirectAccess:
        name = self._name(location)
        fd, _ = self._open_image(location)
        os.close(fd)
        return DirectAccess(kind="path", path=os.path.join(self.root, name))

    def close(self) -> None:
        with self._lock:
            for fd in (self._tmp_fd, self._root_fd):
                if fd >= 0:
                    os.close(fd)
            self._root_fd = self._tmp_fd = -1
