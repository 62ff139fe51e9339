"""Locate: direct access to the stored bits (a path, an RBD snapshot, a URL) and presigned URLs."""

from __future__ import annotations

import urllib.request
from datetime import UTC, datetime

import pytest

import imagestore
from imagestore import Store, Unsupported

from ..backends.base import Backend
from ..payloads import payload
from .base import MiB, SuiteBase, assert_expires


class LocateTests(SuiteBase):
    """Direct access and presigned URLs."""

    def test_locate(self, backend: Backend, store: Store, image_id: str) -> None:
        data = payload(MiB, seed=16)
        info = store.add(image_id, data, len(data))
        if not backend.has("direct_access"):
            with pytest.raises(Unsupported):
                store.locate(info.location)
        else:
            self._check_locate(store, image_id, info.location, data)
    @staticmethod
    def _check_locate(store: Store, image_id: str, location: imagestore.Location, data: bytes) -> None:
        access = store.locate(location)
        assert access.kind in ("path", "rbd", "url")
        if access.kind == "path":
            assert access.path is not None
            with open(access.path, "rb") as fh:
                assert fh.read() == data
        if access.kind == "rbd":
            assert access.image == image_id and access.pool and access.fsid and access.snapshot
            assert access.mon_hosts
        if access.kind == "url":
            assert access.url is not None and access.expires_at is not None
            with urllib.request.urlopen(access.url, timeout=30) as resp:  # noqa: S310 - a test server
                assert resp.read() == data
    def test_presign(self, backend: Backend, store: Store, image_id: str) -> None:
        data = payload(MiB + 11, seed=17)
        info = store.add(image_id, data, len(data))
        if not backend.has("presign"):
            with pytest.raises(Unsupported):
                store.locate(info.location, ttl=60)
        else:
            self._check_presign(store, info.location, data)
    @staticmethod
    def _check_presign(store: Store, location: imagestore.Location, data: bytes) -> None:
        assert store.capabilities.direct_access
        before = datetime.now(UTC)
        access = store.locate(location, ttl=120)
        after = datetime.now(UTC)
        assert access.kind == "url" and access.url and access.expires_at is not None
        assert_expires(access, before, after, 120)
        assert "hidden" in repr(access) and access.url not in repr(access)
        with urllib.request.urlopen(access.url, timeout=30) as resp:  # noqa: S310 - a test server
            assert resp.read() == data
        ranged = urllib.request.Request(access.url, headers={"Range": "bytes=1000-1999"})
        with urllib.request.urlopen(ranged, timeout=30) as resp:  # noqa: S310
            assert resp.status == 206 and resp.read() == data[1000:2000]
