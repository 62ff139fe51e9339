"""Two file stores, ``BASE/images`` and ``BASE/vms``, on one filesystem."""

from __future__ import annotations

import fcntl
import hashlib
import os
import secrets
import time
from pathlib import Path
from typing import Any

from imagestore.location import Location

from .base import STORES, Backend, BackendObject

__all__ = ["FileBackend"]


class FileBackend(Backend):
    """Two file stores under ``base``; ``reflink``: the filesystem clones by FICLONE (XFS
    reflink=1), so clones are ``cow``; every filesystem copies in the kernel (``server_copy``)."""

    kind = "file"

    def __init__(self, base: str | os.PathLike[str], *, reflink: bool = False) -> None:
        self.base = Path(base)
        self.native_clone_mode = "cow" if reflink else "server_copy"
        self.capabilities = {"write": True, "range_read": True, "cow_clone": reflink, "server_copy": True,
                             "direct_access": True, "presign": False, "atomic_create": True, "unknown_size": True,
                             "deferred_delete": False, "persistent": True, "adopt": True, "metadata_update": True,
                             "max_object_size": None}

    def root(self, store: str) -> Path:
        return self.base / store

    def table(self, store: str) -> dict[str, Any]:
        return {"driver": "file", "root": str(self.root(store))}

    def objects(self, prefix: str) -> list[BackendObject]:
        found = []
        for store in STORES:
            root = self.root(store)
            if not root.is_dir():
                continue
            for entry in sorted(os.listdir(root)):
                if prefix in entry and entry != ".tmp":
                    found.append(BackendObject(store, "image", entry))
            tmp = root / ".tmp"
            if tmp.is_dir():
                found += [BackendObject(store, "temporary", e) for e in sorted(os.listdir(tmp)) if prefix in e]
        return found

    def leftovers(self) -> list[str]:
        return self.temporaries()

    def held(self, prefix: str) -> list[str] | None:
        """Temporaries whose writer's flock is still held, or younger than the driver's 10 s."""
        found = []
        for obj in self.objects(prefix):
            if obj.kind != "temporary":
                continue
            path = self.root(obj.store) / ".tmp" / obj.name
            try:
                fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
            except FileNotFoundError:
                continue
            try:
                young = time.time() - os.fstat(fd).st_mtime < 10.0
                fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
            except BlockingIOError:
                young = True
            finally:
                os.close(fd)
            if young:
                found.append(str(obj))
        return found

    def plant_dead_temporary(self, store: str, image_id: str, size: int) -> str:
        tmp = self.root(store) / ".tmp"
        tmp.mkdir(mode=0o700, parents=True, exist_ok=True)
        name = f"{image_id}.{os.getpid()}.{secrets.token_hex(6)}"
        path = tmp / name
        path.write_bytes(os.urandom(min(size, 1 << 20)))
        old = time.time() - 7200
        os.utime(path, (old, old))
        return name

    def place_native(self, name: str, data: bytes) -> str:
        """A consumer writing a file straight into the store's root."""
        root = self.root(STORES[0])
        root.mkdir(parents=True, exist_ok=True)
        path = root / name
        path.write_bytes(data)
        return f"file://{path}"  # glance_store's form of a file location

    def native_state(self, name: str) -> object:
        path = self.root(STORES[0]) / name
        st = path.stat()
        xattrs = sorted((k, os.getxattr(path, k)) for k in os.listxattr(path))
        return hashlib.sha256(path.read_bytes()).hexdigest(), st.st_mode, st.st_mtime_ns, st.st_ctime_ns, xattrs

    def corrupt(self, location: Location, offset: int) -> None:
        """Write the flipped byte into the image file in place (as root may, whatever its mode)."""
        path = "/" + "/".join(location.path)
        mode = os.stat(path).st_mode
        os.chmod(path, mode | 0o200)
        try:
            with open(path, "r+b") as fh:
                fh.seek(offset)
                byte = fh.read(1)
                fh.seek(offset)
                fh.write(bytes([byte[0] ^ 0xFF]))
        finally:
            os.chmod(path, mode)

    def describe(self) -> dict[str, Any]:
        return {"kind": self.kind, "base": str(self.base)}
