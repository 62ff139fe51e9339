"""What the compute and volume services rely on: adopt (where declared), verified clone sources, clone depth and flatten."""

from __future__ import annotations

import hashlib
from typing import Any

import pytest

from imagestore import (
    AlreadyExists,
    ChecksumMismatch,
    DeleteOutcome,
    ImageStoreError,
    InvalidLocation,
    Store,
    UnsafeImage,
    Unsupported,
)

from ..backends.base import Backend
from ..payloads import payload
from ..spy import record_reads
from .base import MiB, SuiteBase


class ConsumerTests(SuiteBase):
    """adopt, verify_source, depth and flatten."""

    def test_adopt_registers_native_bits(self, backend: Backend, store: Store, image_id: str) -> None:
        data = payload(3 * MiB + 5, seed=40)
        if not backend.has("adopt"):
            with pytest.raises(Unsupported):
                store.adopt(store.location(image_id))
        else:
            self._adopt_registers(backend, store, image_id, data)
    def _adopt_registers(self, backend: Backend, store: Store, image_id: str, data: bytes) -> None:
        ref = backend.place_native(image_id, data)
        calls: list[int] = []
        info = store.adopt(ref, progress=lambda done, total: calls.append(done))
        assert info.size == len(data) and info.format == "raw" and info.location.store == store.name
        assert info.checksums == {"md5": hashlib.md5(data).hexdigest(), "sha512": hashlib.sha512(data).hexdigest()}
        assert calls and calls[-1] == len(data)
        assert store.stat(info.location) == info
        assert store.get(info.location) == data  # verified against the checksum adopt computed
        with pytest.raises(AlreadyExists):
            store.adopt(ref)
        clone = store.clone(info.location, name=image_id + "-c", verify_source=True)
        assert store.get(clone.location) == data
    def test_adopt_refusal_leaves_the_bits_untouched(self, backend: Backend, store: Store, image_id: str,
                                                     qcow2_with_backing: bytes) -> None:
        if not backend.has("adopt"):
            with pytest.raises(Unsupported):
                store.adopt(store.location(image_id))
        else:
            self._adopt_refusals(backend, store, image_id, qcow2_with_backing)
    def _adopt_refusals(self, backend: Backend, store: Store, image_id: str, qcow2_with_backing: bytes) -> None:
        raw = payload(MiB, seed=41)
        cases: list[tuple[str, bytes, dict[str, Any], type[ImageStoreError]]] = [
            ("-evil", qcow2_with_backing, {}, UnsafeImage),
            ("-declared", raw, {"format": "qcow2"}, UnsafeImage),
            ("-expected", raw, {"expected": {"sha512": "0" * 128}}, ChecksumMismatch),
        ]
        for suffix, data, kwargs, error in cases:
            ref = backend.place_native(image_id + suffix, data)
            before = backend.native_state(image_id + suffix)
            with pytest.raises(error):
                store.adopt(ref, **kwargs)
            assert backend.native_state(image_id + suffix) == before, suffix
            assert store.stat(ref).checksums == {}
        assert store.adopt(backend.place_native(image_id, raw)).size == MiB  # a good one is adopted
    def test_adopt_refuses_foreign_refs(self, store: Store) -> None:
        for ref in ("/etc/passwd", "file:///etc/passwd", "rbd://0000/pool/image/snap"):
            with pytest.raises(InvalidLocation):
                store.adopt(ref)
    def test_verify_source_once_per_version(self, backend: Backend, store: Store, image_id: str) -> None:
        """OSSN-0090: a clone can check its source's bits, once per immutable version."""
        sibling = backend.make("sibling", sibling=True)
        data = payload(2 * MiB, seed=42)
        info = store.add(image_id, data, len(data))
        reads = record_reads(store)
        first = store.clone(info.location, sibling, name=image_id + "-v1", verify_source=True)
        second = store.clone(info.location, sibling, name=image_id + "-v2", verify_source=True)
        version = store._driver.stat(info.location).version
        if first.mode == "stream":
            assert len(reads) == 2  # each stream is verified as it goes
        else:
            assert len(reads) == (1 if version is not None else 2), reads
        assert sibling.get(second.location) == data
        reads.clear()
        assert store.verify_source(info.location) is (version is None)
        assert len(reads) == (0 if version is not None else 1)
    def test_clone_depth_and_flatten(self, backend: Backend, store: Store, image_id: str) -> None:
        sibling = backend.make("sibling", sibling=True)
        data = payload(3 * MiB, seed=43)
        info = store.add(image_id, data, len(data))
        clone = store.clone(info.location, sibling, name=image_id + "-child")
        depends = clone.mode == "cow" and backend.clones_depend_on_source
        assert clone.depth == sibling.depth(clone.location) == (1 if depends else 0)
        assert store.depth(info.location) == 0
        assert sibling.flatten(clone.location) == 0
        assert sibling.depth(clone.location) == 0
        assert sibling.get(clone.location) == data
        assert store.delete(info.location) is DeleteOutcome.DELETED  # nothing depends on it any more
        assert sibling.get(clone.location) == data
