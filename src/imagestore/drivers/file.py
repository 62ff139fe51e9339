"""Images as files under one root directory, confined to it.

Layout: ``ROOT/<id>`` is the image, its metadata (checksums, format) is kept in
``user.imagestore.*`` extended attributes of the same inode, so it is published
atomically with the bytes. Uploads go to ``ROOT/.tmp/`` (made on the first
write, held by an ``flock`` while the writer lives), are fsynced, then
published with ``link()``, which never overwrites. Every access is relative to
a directory descriptor of ROOT with ``O_NOFOLLOW``, so no id, location or
symlink reaches outside ROOT.

ROOT is made when the store is opened and never again: if it vanishes or is
replaced later (an unmounted volume), writes fail naming ROOT instead of
filling the filesystem underneath. Clones use ``FICLONE`` (reflink, O(1)) when
both roots share a reflink filesystem, else ``copy_file_range`` within one
filesystem.
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
from ..contract import ClonePlan, CloneRequest, DeleteOutcome, DriverContext, Option, Stored, SweepReport
from ..errors import AlreadyExists, BackendError, ConfigError, InvalidLocation, NotFound, PermissionDenied
from ..location import DirectAccess, Location
from .base import Driver
from .file_adopt import FileAdoption

__all__ = ["FICLONE", "FileDriver", "RangeReader"]

FICLONE = 0x40049409  # _IOW(0x94, 9, int)
_XATTR = "user.imagestore."
_TMP = ".tmp"
_MIN_AGE = 10.0  # seconds: a temporary younger than this may not hold its writer's lock yet
_OPEN_FLAGS = os.O_NOFOLLOW | os.O_CLOEXEC
_GONE = (errno.ENOENT, errno.ELOOP, errno.ENOTDIR)


def version_of(st: os.stat_result) -> str:
    """An image file's version: device, inode, size and change time (any write, truncate,
    chmod or xattr change moves the change time, which no caller can set back)."""
    return f"{st.st_dev}:{st.st_ino}:{st.st_size}:{st.st_ctime_ns}"


def _write_all(fd: int, data: memoryview) -> None:
    while data:
        n = os.write(fd, data)
        data = data[n:]


class _FileWriter:
    """An upload into ``ROOT/.tmp/<id>.<pid>.<random>``; published by ``link`` in :meth:`commit`."""

    def __init__(self, driver: FileDriver, image_id: str) -> None:
        self.driver = driver
        self.image_id = image_id
        self.tmp_fd = driver.tmp_dir()
        self.tmp_name = f"{image_id}.{os.getpid()}.{secrets.token_hex(6)}"
        self.fd = os.open(self.tmp_name, os.O_RDWR | os.O_CREAT | os.O_EXCL | _OPEN_FLAGS,
                          driver.file_mode, dir_fd=self.tmp_fd)
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


def _tmpfile(dir_fd: int) -> int:
    """An unnamed file in the directory (gone when closed)."""
    return os.open(".", os.O_TMPFILE | os.O_RDWR | os.O_CLOEXEC, 0o600, dir_fd=dir_fd)


def _native_mode(src_dir: int, dst_dir: int) -> str | None:
    """Which in-kernel copy works from files of one root to files of another (mounts included):
    ``cow`` (FICLONE), ``server_copy`` (copy_file_range) or None; tried on unnamed files."""
    a = b = -1
    try:
        a, b = _tmpfile(src_dir), _tmpfile(dst_dir)
        os.write(a, b"imagestore clone probe\n")
        try:
            fcntl.ioctl(b, FICLONE, a)
            return "cow"
        except OSError:
            pass
        os.lseek(a, 0, os.SEEK_SET)
        return "server_copy" if os.copy_file_range(a, b, 1, 0, 0) == 1 else None
    except OSError:
        return None
    finally:
        for fd in (a, b):
            if fd >= 0:
                os.close(fd)


def _probe(root_fd: int) -> tuple[bool, bool]:
    """``(writable, reflink)`` of the directory: two unnamed O_TMPFILE files, removed on close."""
    a = b = -1
    try:
        try:
            a = os.open(".", os.O_TMPFILE | os.O_RDWR | os.O_CLOEXEC, 0o600, dir_fd=root_fd)
        except OSError as exc:
            if exc.errno in (errno.EROFS, errno.EACCES, errno.EPERM):
                return False, False
            return True, False  # no O_TMPFILE here: assume writable, no reflink
        b = os.open(".", os.O_TMPFILE | os.O_RDWR | os.O_CLOEXEC, 0o600, dir_fd=root_fd)
        os.write(a, b"imagestore reflink probe\n")
        try:
            fcntl.ioctl(b, FICLONE, a)
        except OSError:
            return True, False
        return True, True
    finally:
        for fd in (a, b):
            if fd >= 0:
                os.close(fd)


class FileDriver(Driver):
    """A directory of image files: root-confined, atomic publish, reflink clones."""

    scheme = "file"
    OPTIONS: ClassVar[Mapping[str, Option]] = {
        "root": Option(str, required=True, help="directory that holds the images (made when the store opens)"),
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
        self.root_fd = -1
        self._root_id = (0, 0)
        self._tmp_fd = -1
        self.reflink = False
        self._modes: dict[str, str | None] = {}

    # ---------------------------------------------------------------- lifecycle
    def open(self, context: DriverContext) -> Capabilities:
        """Make ROOT if needed, hold a descriptor of it, probe writability and reflink once."""
        try:
            os.makedirs(self.root, mode=self.dir_mode, exist_ok=True)
            fd = os.open(self.root, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        except PermissionError as exc:
            raise PermissionDenied(f"cannot use root {self.root}: {exc.strerror}", store=self.name) from exc
        except OSError as exc:
            raise ConfigError(f"cannot use root {self.root}: {exc.strerror}", key=f"stores.{self.name}.root") from exc
        st = os.fstat(fd)
        self.root_fd, self._root_id = fd, (st.st_dev, st.st_ino)
        writable, self.reflink = _probe(fd)
        return Capabilities(write=writable, cow_clone=self.reflink, server_copy=writable, direct_access=True,
                            adopt=writable)

    def close(self) -> None:
        with self._lock:
            for fd in (self._tmp_fd, self.root_fd):
                if fd >= 0:
                    os.close(fd)
            self.root_fd = self._tmp_fd = -1

    def check_root(self, image: str | None = None) -> None:
        """Refuse to write when ROOT is gone or is no longer the directory opened (unmounted)."""
        try:
            st = os.stat(self.root)
            same = (st.st_dev, st.st_ino) == self._root_id
        except OSError:
            same = False
        if not same:
            raise BackendError(f"root {self.root} is gone or was replaced since the store was opened "
                               "(unmounted or removed?); refusing to write", store=self.name, image=image)

    def tmp_dir(self) -> int:
        """Descriptor of ``ROOT/.tmp``, made on the first write."""
        if self._tmp_fd >= 0:
            return self._tmp_fd
        with self._lock:
            if self._tmp_fd < 0:
                try:
                    os.mkdir(_TMP, 0o700, dir_fd=self.root_fd)
                except FileExistsError:
                    pass
                self._tmp_fd = os.open(_TMP, os.O_RDONLY | os.O_DIRECTORY | _OPEN_FLAGS, dir_fd=self.root_fd)
        return self._tmp_fd

    # ---------------------------------------------------------------- description
    def describe(self) -> dict[str, object]:
        return {"root": self.root, "reflink": self.reflink}

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
            if exc.errno in _GONE:
                raise NotFound("no such image", store=self.name, image=name) from None
            raise
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            os.close(fd)
            raise NotFound("not a regular file", store=self.name, image=name)
        return fd, st

    # ---------------------------------------------------------------- data
    def open_writer(self, image_id: str, size: int | None) -> _FileWriter:
        self.check_root(image_id)
        try:
            os.stat(image_id, dir_fd=self.root_fd, follow_symlinks=False)
        except FileNotFoundError:
            pass
        else:
            raise AlreadyExists("an image with this id exists", store=self.name, image=image_id)
        return _FileWriter(self, image_id)

    def open_reader(self, location: Location, offset: int, length: int) -> RangeReader:
        fd, _ = self._open_image(location)
        return RangeReader(fd, offset, length)

    def stat(self, location: Location) -> Stored:
        fd, st = self._open_image(location)
        try:
            meta = {}
            for key in os.listxattr(fd):
                if key.startswith(_XATTR):
                    meta[key[len(_XATTR):]] = os.getxattr(fd, key).decode()
        finally:
            os.close(fd)
        return Stored(st.st_size, meta, version_of(st))

    def delete(self, location: Location) -> DeleteOutcome:
        name = self._name(location)
        try:
            st = os.stat(name, dir_fd=self.root_fd, follow_symlinks=False)
            if not stat.S_ISREG(st.st_mode):
                raise NotFound("not a regular file", store=self.name, image=name)
            os.unlink(name, dir_fd=self.root_fd)
        except OSError as exc:
            if exc.errno in _GONE:
                raise NotFound("no such image", store=self.name, image=name) from None
            raise
        os.fsync(self.root_fd)
        return DeleteOutcome.DELETED

    def free_space(self) -> int:
        """What statvfs says an unprivileged writer may still use on ROOT's filesystem."""
        st = os.fstatvfs(self.root_fd)
        return st.f_bavail * st.f_frsize

    def sweep(self, older_than: float, deadline: float | None = None) -> SweepReport:
        """Remove ``.tmp`` files whose writer is dead (no flock held) and older than ``older_than``."""
        report = SweepReport()
        try:
            tmp_fd = os.open(_TMP, os.O_RDONLY | os.O_DIRECTORY | _OPEN_FLAGS, dir_fd=self.root_fd)
        except FileNotFoundError:
            return report  # nothing was ever written
        try:
            now = time.time()
            for entry in os.scandir(tmp_fd):
                if deadline is not None and time.monotonic() > deadline:
                    break
                try:
                    st = entry.stat(follow_symlinks=False)
                    if now - st.st_mtime < max(older_than, _MIN_AGE):
                        continue
                    fd = os.open(entry.name, os.O_RDONLY | _OPEN_FLAGS | os.O_NONBLOCK, dir_fd=tmp_fd)
                except OSError:
                    continue
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    os.unlink(entry.name, dir_fd=tmp_fd)  # while locked: no writer can be using it
                except (BlockingIOError, FileNotFoundError):
                    continue  # a live writer holds it, or another sweep removed it
                finally:
                    os.close(fd)
                report += SweepReport(1, st.st_blocks * 512)
        finally:
            os.close(tmp_fd)
        return report

    # ---------------------------------------------------------------- clone / locate
    def plan_clone(self, location: Location, target: Driver) -> ClonePlan:
        if not isinstance(target, FileDriver):
            return ClonePlan(None, f"target store is a {target.scheme!r} store, not a file store", "different_backend")
        same_fs = os.fstat(self.root_fd).st_dev == os.fstat(target.root_fd).st_dev
        if not same_fs:
            return ClonePlan(None, f"{self.root} and {target.root} are on different filesystems",
                             "different_filesystem")
        if target.root not in self._modes:  # probed once per target, on unnamed files
            self._modes[target.root] = _native_mode(self.root_fd, target.root_fd)
        mode = self._modes[target.root]
        if mode == "cow":
            return ClonePlan("cow", "same filesystem with reflink (FICLONE)")
        if mode == "server_copy":
            return ClonePlan("server_copy", "same filesystem without reflink (copy_file_range)")
        return ClonePlan(None, f"no in-kernel copy from {self.root} to {target.root} (read-only or another mount)",
                         "different_filesystem")

    def clone(self, location: Location, target: Driver, request: CloneRequest) -> Location:
        if not isinstance(target, FileDriver):
            raise InvalidLocation(f"target store {target.name!r} is not a file store", store=self.name)
        src, st = self._open_image(location)
        try:
            writer = target.open_writer(request.name, st.st_size)
            try:
                if request.mode == "cow":
                    fcntl.ioctl(writer.fd, FICLONE, src)
                    if request.size is not None and request.size > st.st_size:
                        os.ftruncate(writer.fd, request.size)  # grown: a hole, reads zeros
                else:
                    left = st.st_size
                    while left > 0:
                        n = os.copy_file_range(src, writer.fd, min(left, 1 << 30))
                        if n == 0:
                            break
                        left -= n
                return writer.commit(request.metadata)
            except BaseException:
                writer.abort()
                raise
        finally:
            os.close(src)

    def adopt(self, location: Location) -> FileAdoption:
        """A file a consumer placed in ROOT: held open, checked unchanged when committed."""
        fd, st = self._open_image(location)
        return FileAdoption(self, fd, st, self._name(location))

    def locate(self, location: Location, ttl: float | None = None) -> DirectAccess:
        name = self._name(location)
        fd, _ = self._open_image(location)
        os.close(fd)
        return DirectAccess(kind="path", path=os.path.join(self.root, name))
