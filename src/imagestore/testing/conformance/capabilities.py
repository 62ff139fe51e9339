"""Capabilities: the probe gives exactly what the backend declares."""

from __future__ import annotations

from dataclasses import fields


import imagestore
from imagestore import Store

from ..backends.base import SERVER_LIMIT, Backend
from .base import SuiteBase


class CapabilityTests(SuiteBase):
    """The probe against the declaration."""

    def test_native_clone_claims_match_the_mode_used(self, backend: Backend, store: Store) -> None:
        caps = store.capabilities
        assert caps.cow_clone is (backend.native_clone_mode == "cow")
        if backend.native_clone_mode == "server_copy":
            assert caps.server_copy
    def test_capabilities_are_the_declared_ones(self, backend: Backend, store: Store) -> None:
        """The probe gives exactly what the backend declares, field by field: a store that starts
        claiming less (or more) fails here, not silently in the tests its claims select."""
        names = [f.name for f in fields(imagestore.Capabilities)]
        assert sorted(backend.capabilities) == sorted(names), "the backend must declare every capability"
        for name in names:
            want, got = backend.capabilities[name], getattr(store.capabilities, name)
            if want == SERVER_LIMIT:
                assert isinstance(got, int) and got > 0, (name, got)
            else:
                assert got == want, f"{name}: probed {got!r}, declared {want!r}"
