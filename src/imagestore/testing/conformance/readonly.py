"""A read-only store: everything that writes is refused with Unsupported, and reads work."""

from __future__ import annotations

import pytest

from imagestore import Store, Unsupported

from ..payloads import payload
from .base import MiB

__all__ = ["ReadOnlySuite"]


class ReadOnlySuite:
    """Behaviour of a store that claims ``write=False``: everything that writes is refused
    with Unsupported, and reads work. Subclasses provide ``stores``: a writable store and a
    read-only view of the same images."""

    @pytest.fixture
    def stores(self) -> tuple[Store, Store]:  # pragma: no cover - overridden
        raise NotImplementedError

    def test_read_only_view(self, stores: tuple[Store, Store]) -> None:
        writable, view = stores
        assert writable.capabilities.write and not view.capabilities.write
        data = payload(2 * MiB, seed=30)
        info = writable.add("ro-image", data, len(data))
        loc = view.location("ro-image")
        assert view.get(loc) == data and view.stat(loc).checksums == info.checksums
        with pytest.raises(Unsupported):
            view.add("ro-new", b"data", 4)
        with pytest.raises(Unsupported):
            view.delete(loc)
        with pytest.raises(Unsupported):
            writable.clone(info.location, view, name="ro-clone")
        check = writable.can_clone(info.location, view)
        assert not check.possible and "read-only" in check.reason
        copy = view.clone(loc, writable, name="from-ro")  # a read-only store is a fine source
        assert writable.get(copy.location) == data
        assert writable.get(info.location) == data
