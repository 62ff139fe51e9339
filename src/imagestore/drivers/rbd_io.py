"""Streaming I/O of the RBD driver: the upload writer and the read-ahead reader.

Both keep ``write_concurrency`` aio requests of one RBD object each in flight,
so a single stream keeps the OSDs busy while the caller hashes or sends data.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping
from typing import TYPE_CHECKING

from ..errors import AlreadyExists, NotFound
from ..location import Location
from . import rbdlib
from .rbdlib import Completion, Image

if TYPE_CHECKING:
    from .rbd import RbdDriver

__all__ = ["META_PREFIX", "RbdReader", "RbdWriter"]

META_PREFIX = "imagestore."  # RBD image-metadata keys of the facade's metadata


class RbdWriter:
    """An upload into a temporary image: object-sized aio writes, ``write_concurrency`` in flight."""

    def __init__(self, driver: RbdDriver, image_id: str, size: int | None) -> None:
        self._d = driver
        self._id = image_id
        self._tmp = driver._tmp_name(image_id)
        self._chunk = driver.chunk
        self._cap = size or 0
        self._written = 0
        self._state = "open"
        self._inflight: deque[tuple[Completion, bytearray]] = deque()
        self._free: list[bytearray] = []
        self._buf = bytearray(self._chunk)
        self._fill = 0
        driver.cluster.create(driver.pool, self._tmp, self._cap, order=driver.order)
        try:
            self._img: Image | None = driver.cluster.open(driver.pool, self._tmp)
        except BaseException:
            driver.cluster.remove(driver.pool, self._tmp)
            raise

    def write(self, data: memoryview | bytes | bytearray) -> None:
        """Append ``data`` (copied into object-sized buffers, written asynchronously)."""
        if self._state != "open":
            raise ValueError(f"write on a {self._state} upload")
        mv = memoryview(data).cast("B")
        pos, total = 0, len(mv)
        while pos < total:
            n = min(total - pos, self._chunk - self._fill)
            self._buf[self._fill : self._fill + n] = mv[pos : pos + n]
            self._fill += n
            pos += n
            if self._fill == self._chunk:
                self._submit()

    def _zero(self, n: int) -> bool:
        """Whether the first ``n`` buffered bytes are all zero (fresh image: no need to write them)."""
        if n == self._chunk:
            return self._buf == _zeros(self._chunk)
        return self._buf[:n] == _zeros(self._chunk)[:n]

    def _submit(self) -> None:
        assert self._img is not None
        n, offset = self._fill, self._written
        if n == 0:
            return
        end = offset + n
        if end > self._cap:  # unknown (or exceeded) size: grow by doubling, trimmed at commit
            self._cap = max(end, self._cap * 2, 64 << 20)
            self._img.resize(self._cap)
        if not self._zero(n):
            while len(self._inflight) >= self._d.write_concurrency:
                self._reap()
            comp = self._img.aio_write(offset, self._buf, n)
            self._inflight.append((comp, self._buf))
            self._buf = self._free.pop() if self._free else bytearray(self._chunk)
        self._fill = 0
        self._written = end

    def _reap(self) -> None:
        comp, buf = self._inflight.popleft()
        ret = comp.wait()
        self._free.append(buf)
        if ret < 0:
            raise rbdlib.error_for(ret, "rbd_aio_write", store=self._d.name, image=self._id)

    def _drain(self) -> None:
        first: BaseException | None = None
        while self._inflight:
            try:
                self._reap()
            except BaseException as exc:  # noqa: BLE001 - wait for every I/O before raising
                first = first or exc
        if first is not None:
            raise first

    def commit(self, metadata: Mapping[str, str]) -> Location:
        """Finish the writes, store metadata, snapshot+protect, and rename into place."""
        if self._state != "open":
            raise ValueError(f"commit on a {self._state} upload")
        d = self._d
        try:
            self._submit()
            self._drain()
            img = self._img
            assert img is not None
            if self._cap != self._written:
                img.resize(self._written)
            img.flush()
            for key, value in metadata.items():
                img.metadata_set(META_PREFIX + key, value)
            img.snap_create(d.snapshot)
            img.snap_protect(d.snapshot)
            mine = img.image_id()
            self._img = None
            img.close()
            d._publish(self._tmp, self._id, mine)
        except AlreadyExists:
            self.abort()
            raise AlreadyExists("another upload published this id first", store=d.name, image=self._id) from None
        except BaseException:
            self.abort()
            raise
        self._state = "committed"
        self._buf = bytearray()
        self._free.clear()
        return d.location_for(self._id)

    def abort(self) -> None:
        """Stop the writes and remove the temporary image; safe to call twice."""
        if self._state in ("aborted", "committed"):
            return
        self._state = "aborted"
        try:
            self._drain()
        except BaseException:  # noqa: BLE001 - the image is removed anyway
            pass
        img, self._img = self._img, None
        if img is not None:
            try:
                img.close()
            except Exception:  # noqa: BLE001
                pass
        try:
            self._d._remove_fully(self._d.pool, self._tmp)
        except NotFound:
            pass
        self._buf = bytearray()
        self._free.clear()


_ZEROS: dict[int, bytes] = {}


def _zeros(n: int) -> bytes:
    z = _ZEROS.get(n)
    if z is None:
        z = _ZEROS[n] = bytes(n)
    return z


class RbdReader:
    """Reads a snapshot with object-sized aio reads kept ``write_concurrency`` deep ahead."""

    def __init__(self, driver: RbdDriver, pool: str, name: str, snap: str, offset: int, length: int | None) -> None:
        self._img: Image | None = driver.cluster.open(pool, name, snap=snap, read_only=True)
        try:
            size = self._img.size()
        except BaseException:
            self._img.close()
            raise
        start = min(offset, size)
        end = size if length is None else min(size, start + length)
        self._store, self._name = driver.name, name
        self._pieces = rbdlib.iter_chunks(start, end, driver.chunk)
        self._depth = driver.write_concurrency
        self._pending: deque[tuple[Completion, bytearray, int]] = deque()
        self._free: list[bytearray] = []
        self._chunk = driver.chunk
        self._cur = memoryview(b"")
        self._cur_buf: bytearray | None = None
        self._fill_pipeline()

    def _fill_pipeline(self) -> None:
        assert self._img is not None
        while len(self._pending) < self._depth:
            piece = next(self._pieces, None)
            if piece is None:
                return
            off, n = piece
            buf = self._free.pop() if self._free else bytearray(self._chunk)
            self._pending.append((self._img.aio_read(off, buf, n), buf, n))

    def _next(self) -> bool:
        if self._cur_buf is not None:
            self._cur.release()
            self._free.append(self._cur_buf)
            self._cur_buf = None
        if not self._pending:
            return False
        comp, buf, n = self._pending.popleft()
        ret = comp.wait()
        if ret < 0:
            self._free.append(buf)
            raise rbdlib.error_for(ret, "rbd_aio_read", store=self._store, image=self._name)
        self._cur_buf = buf
        self._cur = memoryview(buf)[: min(ret, n)]
        self._fill_pipeline()
        return True

    def read(self, n: int = -1) -> bytes:
        """Up to ``n`` bytes (``-1``: everything left); ``b""`` at the end."""
        if self._img is None:  # closed (the facade closes at the end, then may ask once more)
            return b""
        if n is None or n < 0:
            parts: list[bytes] = []
            while True:
                part = self.read(self._chunk)
                if not part:
                    return b"".join(parts)
                parts.append(part)
        while not len(self._cur):
            if not self._next():
                return b""
        out = bytes(self._cur[:n])
        self._cur = self._cur[len(out) :]
        return out

    def close(self) -> None:
        """Wait for the reads in flight and close the image."""
        img, self._img = self._img, None
        if img is None:
            return
        while self._pending:
            comp, _, _ = self._pending.popleft()
            comp.wait()
        self._cur.release()
        img.close()

    def __enter__(self) -> RbdReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
