"""In-process store for unit tests and examples; images vanish with the process.

Stores with the same ``namespace`` share their images (like one backend seen by
two stores), which lets tests exercise same-backend clones (mode ``server_copy``).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import ClassVar

from ..spi.capabilities import Capabilities
from ..spi.contract import ClonePlan, CloneRequest, DeleteOutcome, DriverContext, Option, Stored
from ..errors import AlreadyExists, NotFound, PermissionDenied
from ..location import Location
from ..results import CloneRefusal
from ..spi.driver import Driver

__all__ = ["MemoryDriver"]


@dataclass
class _Namespace:
    lock: threading.Lock = field(default_factory=threading.Lock)
    images: dict[str, tuple[bytes, dict[str, str], float]] = field(default_factory=dict)
    """id -> (bytes, metadata, when written)"""


_NAMESPACES: dict[str, _Namespace] = {}
_NS_LOCK = threading.Lock()


def _namespace(name: str) -> _Namespace:
    with _NS_LOCK:
        return _NAMESPACES.setdefault(name, _Namespace())


class _MemoryWriter:
    def __init__(self, driver: MemoryDriver, image_id: str) -> None:
        self.driver = driver
        self.image_id = image_id
        self.buf = bytearray()

    def write(self, data: memoryview) -> None:
        self.buf += data

    def commit(self, metadata: Mapping[str, str]) -> Location:
        self.driver._publish(self.image_id, bytes(self.buf), dict(metadata))
        self.buf = bytearray()
        return self.driver.location_for(self.image_id)

    def abort(self) -> None:
        self.buf = bytearray()


class _MemoryReader:
    def __init__(self, data: bytes, offset: int, length: int) -> None:
        self.view = memoryview(data)[offset:offset + length]

    def read(self, n: int) -> bytes:
        out, self.view = self.view[:n], self.view[n:]
        return bytes(out)

    def close(self) -> None:
        self.view = memoryview(b"")


class MemoryDriver(Driver):
    """Images in a dict shared per ``namespace``; server-side copy within a namespace."""

    scheme = "memory"
    OPTIONS: ClassVar[Mapping[str, Option]] = {
        "namespace": Option(str, help="stores with the same namespace see the same images"),
        "max_object_size": Option(int, help="largest image accepted, in bytes (tests)"),
        "read_only": Option(bool, default=False, help="refuse adds and deletes (a read-only view)"),
    }

    def __init__(self, name: str, namespace: str | None = None, max_object_size: int | None = None,
                 read_only: bool = False) -> None:
        super().__init__(name)
        # a named namespace is shared by the stores that name it; otherwise private
        self.namespace = namespace or f"{name}-{id(self):x}"
        self._ns = _namespace(namespace) if namespace else _Namespace()
        self.read_only = read_only
        self._caps = Capabilities(write=not read_only, server_copy=True, persistent=False,
                                  metadata_update=not read_only, max_object_size=max_object_size)

    def open(self, context: DriverContext) -> Capabilities:
        return self._caps

    def describe(self) -> dict[str, str]:
        return {"namespace": self.namespace}

    def location_for(self, image_id: str) -> Location:
        return Location("memory", self.namespace, (image_id,), self.name)

    def owns(self, location: Location) -> bool:
        return location.scheme == "memory" and location.host == self.namespace and len(location.path) == 1

    def _publish(self, image_id: str, data: bytes, metadata: dict[str, str]) -> None:
        with self._ns.lock:
            if image_id in self._ns.images:
                raise AlreadyExists("an image with this id exists", store=self.name, image=image_id)
            self._ns.images[image_id] = (data, metadata, time.time())

    def _get(self, location: Location) -> tuple[bytes, dict[str, str], float]:
        with self._ns.lock:
            found = self._ns.images.get(location.image)
        if found is None:
            raise NotFound("no such image", store=self.name, image=location.image)
        return found

    def open_writer(self, image_id: str, size: int | None) -> _MemoryWriter:
        if self.read_only:
            raise PermissionDenied("this memory store is read-only", store=self.name, image=image_id)
        with self._ns.lock:
            if image_id in self._ns.images:
                raise AlreadyExists("an image with this id exists", store=self.name, image=image_id)
        return _MemoryWriter(self, image_id)

    def open_reader(self, location: Location, offset: int, length: int) -> _MemoryReader:
        data, _, _ = self._get(location)
        return _MemoryReader(data, offset, length)

    def list_images(self) -> list[str]:
        with self._ns.lock:
            return list(self._ns.images)

    def stat(self, location: Location) -> Stored:
        data, meta, written = self._get(location)
        return Stored(len(data), dict(meta), written=written)

    def update_metadata(self, location: Location, changes: Mapping[str, str]) -> None:
        if self.read_only:
            raise PermissionDenied("this memory store is read-only", store=self.name, image=location.image)
        with self._ns.lock:
            found = self._ns.images.get(location.image)
            if found is None:
                raise NotFound("no such image", store=self.name, image=location.image)
            data, meta, written = found
            self._ns.images[location.image] = (data, {**meta, **changes}, written)

    def delete(self, location: Location) -> DeleteOutcome:
        if self.read_only:
            raise PermissionDenied("this memory store is read-only", store=self.name, image=location.image)
        with self._ns.lock:
            if self._ns.images.pop(location.image, None) is None:
                raise NotFound("no such image", store=self.name, image=location.image)
        return DeleteOutcome.DELETED

    def plan_clone(self, location: Location, target: Driver) -> ClonePlan:
        if isinstance(target, MemoryDriver) and target.namespace == self.namespace and not target.read_only:
            return ClonePlan("server_copy", "same memory namespace")
        if not isinstance(target, MemoryDriver):
            return ClonePlan(None, f"target store {target.name!r} is not a memory store",
                             CloneRefusal.DIFFERENT_BACKEND)
        return ClonePlan(None, "target is not in the same memory namespace")

    def clone(self, location: Location, target: Driver, request: CloneRequest) -> Location:
        data, _, _ = self._get(location)
        if not isinstance(target, MemoryDriver):
            raise NotFound("the clone target is not a memory store", store=target.name)
        target._publish(request.name, data, dict(request.metadata))
        return target.location_for(request.name)
