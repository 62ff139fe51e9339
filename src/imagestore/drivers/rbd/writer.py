"""The RBD driver's upload writer: object-sized aio writes into a hidden temporary image,
the store's ``concurrency`` in flight with per-part retries (:mod:`imagestore.spi.parts`), renamed into place."""

from __future__ import annotations

from collections.abc import Mapping

from ...errors import AlreadyExists, NotFound
from ...location import Location
from ...spi.parts import ChunkedUploader, PartSizes, Pending, done
from ...spi.zeros import is_zero
from .aio import AioPending
from .core import META_PREFIX, RbdStore, publish, remove_fully, tmp_name
from .lib import Image

__all__ = ["RbdWriter"]


class RbdWriter:
    """An upload into a temporary image: object-sized aio writes through the shared uploader."""

    def __init__(self, driver: RbdStore, image_id: str, size: int | None) -> None:
        self._d = driver
        self._id = image_id
        self._tmp = tmp_name(image_id)
        self._cap = size or 0
        self._state = "open"
        self._parts = ChunkedUploader(self._start, PartSizes(driver.chunk), concurrency=driver.write_concurrency,
                                      policy=driver.retry,
                                      label=f"store {driver.name!r}: upload of {image_id!r}")
        driver.cluster.create(driver.pool, self._tmp, self._cap, order=driver.order)
        try:
            self._img: Image | None = driver.cluster.open(driver.pool, self._tmp)
        except BaseException:
            driver.cluster.remove(driver.pool, self._tmp)
            raise

    def _start(self, index: int, offset: int, data: memoryview) -> Pending[int]:
        img = self._img
        assert img is not None
        end = offset + len(data)
        if end > self._cap:  # unknown (or exceeded) size: grow by doubling, trimmed at commit
            self._cap = max(end, self._cap * 2, 64 << 20)
            img.resize(self._cap)
        if is_zero(data):
            return done(0)  # a fresh image reads zeros there already
        return AioPending(img.aio_write(offset, data, len(data)), "rbd_aio_write", self._d.name, self._id)  # type: ignore[arg-type]

    def write(self, data: memoryview | bytes | bytearray) -> None:
        """Append ``data`` (copied into object-sized buffers, written asynchronously)."""
        if self._state != "open":
            raise ValueError(f"write on a {self._state} upload")
        self._parts.write(data)

    def commit(self, metadata: Mapping[str, str]) -> Location:
        """Finish the writes, store metadata, snapshot+protect, and rename into place."""
        if self._state != "open":
            raise ValueError(f"commit on a {self._state} upload")
        d = self._d
        try:
            self._parts.finish()
            written = self._parts.size
            img = self._img
            assert img is not None
            if self._cap != written:
                img.resize(written)
            img.flush()
            for key, value in metadata.items():
                img.metadata_set(META_PREFIX + key, value)
            img.snap_create(d.snapshot)
            img.snap_protect(d.snapshot)
            mine = img.image_id()
            self._img = None
            img.close()
            publish(d, self._tmp, self._id, mine)
        except AlreadyExists:
            self.abort()
            raise AlreadyExists("another upload published this id first", store=d.name, image=self._id) from None
        except BaseException:
            self.abort()
            raise
        self._state = "committed"
        return d.location_for(self._id)

    def abort(self) -> None:
        """Stop the writes and remove the temporary image; safe to call twice."""
        if self._state in ("aborted", "committed"):
            return
        self._state = "aborted"
        self._parts.abort()
        img, self._img = self._img, None
        if img is not None:
            try:
                img.close()
            except Exception:  # noqa: BLE001
                pass
        try:
            remove_fully(self._d.cluster, self._d.pool, self._tmp)
        except NotFound:
            pass

