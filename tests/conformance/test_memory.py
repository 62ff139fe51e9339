"""The conformance suite on the in-memory driver, and on a read-only view of it."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

import imagestore

from .suite import Backend, ConformanceSuite, ReadOnlySuite


class MemoryBackend(Backend):
    native_clone_mode = "server_copy"
    capabilities = {"write": True, "range_read": True, "cow_clone": False, "server_copy": True,
                    "direct_access": False, "presign": False, "atomic_create": True, "unknown_size": True,
                    "deferred_delete": False, "persistent": False, "adopt": False, "max_object_size": None}

    def __init__(self) -> None:
        self.namespace = f"ns-{uuid.uuid4().hex[:8]}"

    def spec(self) -> dict[str, Any]:
        return {"driver": "memory", "namespace": self.namespace}


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
