"""The conformance suite on the in-memory driver."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from .suite import Backend, ConformanceSuite


class MemoryBackend(Backend):
    native_clone_mode = "server_copy"

    def __init__(self) -> None:
        self.namespace = f"ns-{uuid.uuid4().hex[:8]}"

    def spec(self) -> dict[str, Any]:
        return {"driver": "memory", "namespace": self.namespace}


class TestMemory(ConformanceSuite):
    @pytest.fixture
    def backend(self) -> Backend:
        return MemoryBackend()

    def test_killed_add_leaves_no_image(self, backend: Backend, image_id: str, tmp_path: Any) -> None:
        """Memory images die with their process: a killed writer cannot leave one behind."""
        assert not backend.make().capabilities.persistent
