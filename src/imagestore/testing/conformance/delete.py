"""Delete: a deleted image is gone, and deleting a clone's source never breaks the clone."""

from __future__ import annotations

import pytest

import imagestore
from imagestore import DeleteOutcome, InUse, NotFound, Store

from ..backends.base import Backend
from ..payloads import payload
from .base import MiB, SuiteBase


class DeleteTests(SuiteBase):
    """Deleting images and clone sources."""

    def test_delete_semantics(self, store: Store, image_id: str) -> None:
        info = store.add(image_id, b"to be deleted", 13)
        assert store.delete(info.location) is imagestore.DeleteOutcome.DELETED
        for op in (store.stat, store.get, store.delete):
            with pytest.raises(NotFound):
                op(info.location)
    def test_delete_the_source_of_a_clone(self, backend: Backend, store: Store, image_id: str) -> None:
        """Deleting a cloned image never breaks the clone: refused, deferred or independent."""
        sibling = backend.make("sibling", sibling=True)
        data = payload(3 * MiB, seed=18)
        info = store.add(image_id, data, len(data))
        clone = store.clone(info.location, sibling, name=image_id + "-child")
        depends = clone.mode == "cow" and backend.clones_depend_on_source
        if depends and store.capabilities.deferred_delete:
            assert store.delete(info.location) is DeleteOutcome.DEFERRED
            with pytest.raises(NotFound):
                store.stat(info.location)
        elif depends:
            with pytest.raises(InUse):
                store.delete(info.location)
            assert store.get(info.location) == data
        else:
            assert store.delete(info.location) is DeleteOutcome.DELETED
        assert sibling.get(clone.location) == data  # verified against the carried checksum
        assert sibling.delete(clone.location) is DeleteOutcome.DELETED
        if depends and not store.capabilities.deferred_delete:
            assert store.delete(info.location) is DeleteOutcome.DELETED
        with pytest.raises(NotFound):
            store.stat(info.location)
        store.add(image_id, b"the id is free again", 20)
