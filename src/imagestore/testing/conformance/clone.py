"""Clone: the mode ``auto`` picks, explicit modes, clones to a sibling store and to another backend."""

from __future__ import annotations

import pytest

import imagestore
from imagestore import AlreadyExists, Store, Unsupported

from ..backends.base import Backend
from ..payloads import payload
from .base import MiB, SuiteBase


class CloneTests(SuiteBase):
    """Clones in every mode and between stores."""

    def test_clone_auto_same_store(self, backend: Backend, store: Store, image_id: str) -> None:
        data = payload(2 * MiB, seed=12)
        info = store.add(image_id, data, len(data))
        check = store.can_clone(info.location)
        expected_mode = backend.native_clone_mode or "stream"
        assert check.possible and check.mode == expected_mode, check
        res = store.clone(info.location, name=image_id + "-c")
        assert res.mode == expected_mode
        assert res.location.store == store.name
        clone = store.stat(res.location)
        assert clone.checksums == info.checksums and clone.size == info.size
        assert store.get(res.location) == data
        with pytest.raises(AlreadyExists):
            store.clone(info.location, name=image_id + "-c")
    def test_clone_to_sibling_store(self, backend: Backend, store: Store, image_id: str) -> None:
        sibling = backend.make("sibling", sibling=True)
        data = payload(MiB, seed=13)
        info = store.add(image_id, data, len(data))
        res = store.clone(info.location, sibling, name=image_id + "-s")
        assert res.mode == (backend.native_clone_mode or "stream")
        assert res.location.store == "sibling"
        assert sibling.get(res.location) == data
        assert sibling.stat(res.location).checksums == info.checksums
    def test_clone_explicit_modes(self, backend: Backend, store: Store, image_id: str) -> None:
        info = store.add(image_id, payload(MiB, seed=14), MiB)
        native = backend.native_clone_mode
        for mode in ("cow", "server_copy"):
            if mode == native:
                assert store.can_clone(info.location, mode=mode).possible
                continue
            check = store.can_clone(info.location, mode=mode)
            assert not check.possible and check.reason
            with pytest.raises(Unsupported):
                store.clone(info.location, name=image_id + "-" + mode, mode=mode)
        res = store.clone(info.location, name=image_id + "-stream", mode="stream")
        assert res.mode == "stream" and store.get(res.location) == store.get(info.location)
    def test_clone_to_other_backend_streams_verified(self, store: Store, image_id: str) -> None:
        other = imagestore.open_store("memory://", "scratch")
        data = payload(MiB, seed=15)
        info = store.add(image_id, data, len(data))
        check = store.can_clone(info.location, other)
        assert check.mode == "stream"
        with pytest.raises(Unsupported):
            store.clone(info.location, other, mode="cow")
        res = store.clone(info.location, other)
        assert res.mode == "stream" and other.get(res.location) == data
        assert other.stat(res.location).checksums == info.checksums
