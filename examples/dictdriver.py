"""A complete imagestore driver keeping images in a dict (the README's "Write your own driver")."""

import threading
from collections.abc import Mapping
from typing import ClassVar

import imagestore
from imagestore import AlreadyExists, NotFound
from imagestore.drivers import Capabilities, DeleteOutcome, Driver, DriverContext, Location, Option, Stored


class Upload:
    """A writer: invisible until commit, which never overwrites."""

    def __init__(self, driver: "DictDriver", image_id: str) -> None:
        self.driver, self.image_id, self.parts = driver, image_id, []

    def write(self, data: memoryview) -> None:
        self.parts.append(bytes(data))  # the view is reused once write returns

    def commit(self, metadata: Mapping[str, str]) -> Location:
        with self.driver.lock:
            if self.image_id in self.driver.images:
                raise AlreadyExists("an image with this id exists", store=self.driver.name, image=self.image_id)
            self.driver.images[self.image_id] = (b"".join(self.parts), dict(metadata))
        return self.driver.location_for(self.image_id)

    def abort(self) -> None:
        self.parts = []


class Range:
    """A reader over bytes already cut to the requested range."""

    def __init__(self, data: bytes) -> None:
        self.data = data

    def read(self, n: int) -> bytes:
        out, self.data = self.data[:n], self.data[n:]
        return out

    def close(self) -> None:
        self.data = b""


class DictDriver(Driver):
    """Images in a dict of this process, shared by the stores of one label."""

    IMAGES: ClassVar[dict[str, dict[str, tuple[bytes, dict[str, str]]]]] = {}
    LOCK: ClassVar[threading.Lock] = threading.Lock()

    scheme = "dict"
    OPTIONS: ClassVar[Mapping[str, Option]] = {"label": Option(str, default="demo", help="location host")}

    def __init__(self, name: str, label: str = "demo") -> None:
        super().__init__(name)
        self.label, self.lock = label, self.LOCK
        with self.lock:
            self.images = self.IMAGES.setdefault(label, {})

    def open(self, context: DriverContext) -> Capabilities:
        return Capabilities(persistent=False)  # probed once; the facade reads it

    def location_for(self, image_id: str) -> Location:
        return Location("dict", self.label, (image_id,), self.name)

    def owns(self, location: Location) -> bool:
        return location.scheme == "dict" and location.host == self.label and len(location.path) == 1

    def open_writer(self, image_id: str, size: int | None) -> Upload:
        return Upload(self, image_id)

    def _get(self, location: Location) -> tuple[bytes, dict[str, str]]:
        try:
            return self.images[location.image]
        except KeyError:
            raise NotFound("no such image", store=self.name, image=location.image) from None

    def open_reader(self, location: Location, offset: int, length: int) -> Range:
        return Range(self._get(location)[0][offset:offset + length])

    def stat(self, location: Location) -> Stored:
        data, metadata = self._get(location)
        return Stored(len(data), metadata)

    def delete(self, location: Location) -> DeleteOutcome:
        with self.lock:
            self._get(location)
            del self.images[location.image]
        return DeleteOutcome.DELETED

    def list_images(self) -> list[str]:  # what scrub walks
        with self.lock:
            return list(self.images)


if __name__ == "__main__":
    store = imagestore.Store(DictDriver("demo"))
    info = store.add("hello", b"hello, world\n" * 100_000)          # hashed, inspected, limited
    assert info.format == "raw" and store.get(info.location, 0, 5, verify=False) == b"hello"
    assert store.get(info.location) == b"hello, world\n" * 100_000  # verified against its BLAKE3
    assert store.clone(info.location, name="copy").mode == "stream"  # no native clone: verified copy
