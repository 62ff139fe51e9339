"""The conformance suite on the in-memory driver, and on a read-only view of it."""

from __future__ import annotations

import uuid

import pytest

import imagestore
from imagestore.testing.backends import Backend, MemoryBackend
from imagestore.testing.conformance import ConformanceSuite, ReadOnlySuite


class TestMemory(ConformanceSuite):
    @pytest.fixture
    def backend(self) -> Backend:
        return MemoryBackend()


class TestMemoryReadOnly(ReadOnlySuite):
    @pytest.fixture
    def stores(self) -> tuple[imagestore.Store, imagestore.Store]:
        ns = f"ro-{uuid.uuid4().hex[:8]}"
        return (imagestore.open_store({"driver": "memory", "namespace": ns}, "rw"),
                imagestore.open_store({"driver": "memory", "namespace": ns, "read_only": True}, "ro"))
