"""Adding an image (known size, unknown size, bytes, paths, empty) and stat-ing it back: checksums, progress, the backend's object limit."""

from __future__ import annotations

import hashlib
import io
from typing import Any

import pytest

import imagestore
from imagestore import ImageTooLarge, NotFound, Store, Unsupported

from ..backends.base import Backend
from ..payloads import chunks, payload
from .base import MiB, SuiteBase


class AddTests(SuiteBase):
    """Adding and stat-ing images."""

    def test_add_known_size_roundtrip(self, store: Store, image_id: str) -> None:
        data = payload(3 * MiB + 17)
        info = store.add(image_id, io.BytesIO(data), len(data))
        assert info.size == len(data)
        assert info.checksums == {"md5": hashlib.md5(data).hexdigest(), "sha512": hashlib.sha512(data).hexdigest()}
        assert info.location.store == store.name
        assert imagestore.Location.parse(str(info.location)) == info.location
        assert store.stat(info.location) == info
        assert store.stat(str(info.location)) == info
        assert store.get(info.location) == data
    def test_add_unknown_size_from_iterator(self, backend: Backend, store: Store, image_id: str) -> None:
        data = payload(2 * MiB + 5, seed=2)
        if not backend.has("unknown_size"):
            with pytest.raises(Unsupported):
                store.add(image_id, chunks(data))
            with pytest.raises(NotFound):
                store.stat(image_id)
        else:
            info = store.add(image_id, chunks(data, 65_537))
            assert info.size == len(data)
            assert store.get(info.location) == data
            assert store.stat(image_id).checksums["sha512"] == hashlib.sha512(data).hexdigest()
    def test_add_from_bytes_and_path(self, store: Store, image_id: str, tmp_path: Any) -> None:
        data = payload(MiB + 3, seed=3)
        a = store.add(image_id + "-b", data, len(data))
        path = tmp_path / "img"
        path.write_bytes(data)
        b = store.add(image_id + "-p", str(path), len(data))
        assert a.checksums == b.checksums
        assert store.get(b.location) == data
    def test_empty_image(self, store: Store, image_id: str) -> None:
        info = store.add(image_id, b"", 0)
        assert info.size == 0
        assert store.get(info.location) == b""
        assert info.checksums["md5"] == hashlib.md5(b"").hexdigest()
    def test_configured_checksums(self, backend: Backend, image_id: str) -> None:
        store = backend.make(checksums=["sha256"])
        data = payload(MiB, seed=4)
        info = store.add(image_id, data, len(data))
        assert info.checksums == {"sha256": hashlib.sha256(data).hexdigest()}
        assert store.get(info.location) == data  # verified against sha256
    def test_progress_callback(self, store: Store, image_id: str) -> None:
        data = payload(5 * MiB, seed=5)
        calls: list[tuple[int, int | None]] = []
        info = store.add(image_id, data, len(data), progress=lambda d, t: calls.append((d, t)))
        assert calls[-1] == (len(data), len(data))
        reads: list[tuple[int, int | None]] = []
        with store.open(info.location, progress=lambda d, t: reads.append((d, t))) as r:
            assert b"".join(r) == data
        assert reads[-1] == (len(data), len(data))
    def test_backend_object_limit_is_enforced(self, backend: Backend, store: Store, image_id: str) -> None:
        limit = store.capabilities.max_object_size
        if backend.capabilities["max_object_size"] is None:
            assert limit is None
            assert store.limit().size == store.settings.max_image_size
        else:
            assert limit is not None
            with pytest.raises(ImageTooLarge):
                store.add(image_id, b"", limit + 1)  # declared: refused before any byte
            assert store.limit().size == limit
        with pytest.raises(NotFound):
            store.stat(image_id)
    def test_payload_larger_than_one_backend_object(self, store: Store, image_id: str) -> None:
        """20 MiB + 1 byte spans several RBD objects, S3 parts or Swift segments."""
        data = payload(20 * MiB + 1, seed=19)
        info = store.add(image_id, chunks(data, 3 * MiB + 7))
        assert info.size == len(data) and info.checksums["sha512"] == hashlib.sha512(data).hexdigest()
        assert store.get(info.location) == data
        if store.capabilities.range_read:
            for offset, length in ((8 * MiB - 3, 6), (16 * MiB - 1, 2), (20 * MiB, 1), (4 * MiB, 9 * MiB)):
                assert store.get(info.location, offset, length) == data[offset:offset + length]
