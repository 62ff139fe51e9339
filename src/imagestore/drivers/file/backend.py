"""The file driver's class: images as files under one root directory, confined to it.

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

import os
import stat
import threading
from collections.abc import Mapping
from typing import ClassVar

from ...spi.capabilities import Capabilities
from ...spi.contract import ClonePlan, CloneRequest, DeleteOutcome, DriverContext, Option, Stored, SweepReport
from ...errors import AlreadyExists, BackendError, ConfigError, InvalidLocation, NotFound, PermissionDenied
from ...location import DirectAccess, Location
from ...results import CloneRefusal
from ...spi.driver import Driver
from .adopt import FileAdoption
from .copier import copy_in_kernel
from .core import GONE, OPEN_FLAGS, TMP, XATTR, version_of
from .probe import native_mode, probe_root
from ...spi.localfile import RangeReader
from .sweeper import sweep_tmp
from .writer import FileWriter

__all__ = ["FileDriver"]


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
        writable, self.reflink = probe_root(fd)
        return Capabilities(write=writable, cow_clone=self.reflink, server_copy=writable, direct_access=True,
                            adopt=writable, metadata_update=writable)

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
                    os.mkdir(TMP, 0o700, dir_fd=self.root_fd)
                except FileExistsError:
                    pass
                self._tmp_fd = os.open(TMP, os.O_RDONLY | os.O_DIRECTORY | OPEN_FLAGS, dir_fd=self.root_fd)
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
            fd = os.open(name, os.O_RDONLY | OPEN_FLAGS | os.O_NONBLOCK, dir_fd=self.root_fd)
        except OSError as exc:
            if exc.errno in GONE:
                raise NotFound("no such image", store=self.name, image=name) from None
            raise
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            os.close(fd)
            raise NotFound("not a regular file", store=self.name, image=name)
        return fd, st

    # ---------------------------------------------------------------- data
    def open_writer(self, image_id: str, size: int | None) -> FileWriter:
        self.check_root(image_id)
        try:
            os.stat(image_id, dir_fd=self.root_fd, follow_symlinks=False)
        except FileNotFoundError:
            pass
        else:
            raise AlreadyExists("an image with this id exists", store=self.name, image=image_id)
        return FileWriter(self, image_id)

    def open_reader(self, location: Location, offset: int, length: int) -> RangeReader:
        fd, _ = self._open_image(location)
        return RangeReader(fd, offset, length)

    def stat(self, location: Location) -> Stored:
        fd, st = self._open_image(location)
        try:
            meta = {}
            for key in os.listxattr(fd):
                if key.startswith(XATTR):
                    meta[key[len(XATTR):]] = os.getxattr(fd, key).decode()
        finally:
            os.close(fd)
        return Stored(st.st_size, meta, version_of(st), written=st.st_mtime)

    def update_metadata(self, location: Location, changes: Mapping[str, str]) -> None:
        """Set the image's xattrs, then fsync. Its owner may whatever the mode: a file without
        its write bits gets the owner's back for the moment (user xattrs need it)."""
        self.check_root(location.image)
        fd, st = self._open_image(location)
        try:
            mode = stat.S_IMODE(st.st_mode)
            lent = not mode & stat.S_IWUSR
            if lent:
                os.fchmod(fd, mode | stat.S_IWUSR)
            try:
                for key, value in changes.items():
                    os.setxattr(fd, XATTR + key, value.encode())
            finally:
                if lent:
                    os.fchmod(fd, mode)
            os.fsync(fd)
        finally:
            os.close(fd)

    def delete(self, location: Location) -> DeleteOutcome:
        name = self._name(location)
        try:
            st = os.stat(name, dir_fd=self.root_fd, follow_symlinks=False)
            if not stat.S_ISREG(st.st_mode):
                raise NotFound("not a regular file", store=self.name, image=name)
            os.unlink(name, dir_fd=self.root_fd)
        except OSError as exc:
            if exc.errno in GONE:
                raise NotFound("no such image", store=self.name, image=name) from None
            raise
        os.fsync(self.root_fd)
        return DeleteOutcome.DELETED

    def list_images(self) -> list[str]:
        """The regular files directly under ROOT (``.tmp`` and other dot names are not images)."""
        self.check_root()
        with os.scandir(self.root_fd) as entries:
            return [e.name for e in entries if not e.name.startswith(".") and e.is_file(follow_symlinks=False)]

    def free_space(self) -> int:
        """What statvfs says an unprivileged writer may still use on ROOT's filesystem."""
        st = os.fstatvfs(self.root_fd)
        return st.f_bavail * st.f_frsize

    def sweep(self, older_than: float, deadline: float | None = None) -> SweepReport:
        """Remove ``.tmp`` files whose writer is dead (no flock held) and older than ``older_than``."""
        return sweep_tmp(self.root_fd, older_than, deadline)

    # ---------------------------------------------------------------- clone / locate
    def plan_clone(self, location: Location, target: Driver) -> ClonePlan:
        if not isinstance(target, FileDriver):
            return ClonePlan(None, f"target store is a {target.scheme!r} store, not a file store",
                             CloneRefusal.DIFFERENT_BACKEND)
        same_fs = os.fstat(self.root_fd).st_dev == os.fstat(target.root_fd).st_dev
        if not same_fs:
            return ClonePlan(None, f"{self.root} and {target.root} are on different filesystems",
                             CloneRefusal.DIFFERENT_FILESYSTEM)
        if target.root not in self._modes:  # probed once per target, on unnamed files
            self._modes[target.root] = native_mode(self.root_fd, target.root_fd)
        mode = self._modes[target.root]
        if mode == "cow":
            return ClonePlan("cow", "same filesystem with reflink (FICLONE)")
        if mode == "server_copy":
            return ClonePlan("server_copy", "same filesystem without reflink (copy_file_range)")
        return ClonePlan(None, f"no in-kernel copy from {self.root} to {target.root} (read-only or another mount)",
                         CloneRefusal.DIFFERENT_FILESYSTEM)

    def clone(self, location: Location, target: Driver, request: CloneRequest) -> Location:
        if not isinstance(target, FileDriver):
            raise InvalidLocation(f"target store {target.name!r} is not a file store", store=self.name)
        src, st = self._open_image(location)
        try:
            writer = target.open_writer(request.name, st.st_size)
            try:
                copy_in_kernel(src, writer.fd, st.st_size, request.mode, request.size)
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
