"""The format policy: unsafe images refused, allowed formats, a declared format, and clones that honour the target's policy."""

from __future__ import annotations

import pytest

from imagestore import NotFound, Store, UnsafeImage

from ..backends.base import Backend
from .base import MiB, SuiteBase


class FormatTests(SuiteBase):
    """The format policy on add and clone."""

    def test_unsafe_image_rejected_leaves_nothing(self, backend: Backend, store: Store, image_id: str,
                                                  qcow2_with_backing: bytes) -> None:
        with pytest.raises(UnsafeImage) as err:
            store.add(image_id, qcow2_with_backing, len(qcow2_with_backing))
        assert err.value.reasons
        with pytest.raises(NotFound):
            store.stat(image_id)
        assert backend.leftovers() == []
    def test_allowed_formats_and_declared_format(self, backend: Backend, image_id: str,
                                                 qcow2_plain: bytes) -> None:
        only_raw = backend.make(allowed_formats=["raw"])
        with pytest.raises(UnsafeImage):
            only_raw.add(image_id, qcow2_plain, len(qcow2_plain))
        store = backend.make()
        with pytest.raises(UnsafeImage):
            store.add(image_id, qcow2_plain, len(qcow2_plain), format="raw")
        info = store.add(image_id, qcow2_plain, len(qcow2_plain), format="qcow2")
        assert info.format == "qcow2" and info.virtual_size == 64 * MiB
        assert store.stat(info.location).format == "qcow2"
        assert backend.leftovers() == []
    def test_clone_honours_target_format_policy(self, backend: Backend, store: Store, image_id: str,
                                                qcow2_plain: bytes) -> None:
        """A clone never brings a format into a store that does not allow it, in any mode."""
        info = store.add(image_id, qcow2_plain, len(qcow2_plain))
        raw_only = backend.make("sibling", sibling=True, allowed_formats=["raw"])
        for mode in ("auto", "stream"):
            with pytest.raises(UnsafeImage):
                store.clone(info.location, raw_only, name=f"{image_id}-{mode}", mode=mode)
            with pytest.raises(NotFound):
                raw_only.stat(f"{image_id}-{mode}")
        assert backend.leftovers() == []
        if backend.native_clone_mode == "cow":
            no_cow = backend.make("sibling", sibling=True, cow_requires_raw=True)
            with pytest.raises(UnsafeImage):
                store.clone(info.location, no_cow, name=image_id + "-cow", mode="cow")
            assert store.clone(info.location, no_cow, name=image_id + "-s", mode="stream").mode == "stream"
