"""Two stores of the in-memory driver: one namespace of this process."""

from __future__ import annotations

import uuid
from typing import Any

from imagestore.drivers.memory import _namespace
from imagestore.location import Location

from .base import Backend, flipped

__all__ = ["MemoryBackend"]


class MemoryBackend(Backend):
    """Both stores share one fresh namespace (a clone between them is a server copy); the
    images live in this process, so nothing can be left outside it."""

    kind = "memory"
    native_clone_mode = "server_copy"
    capabilities = {"write": True, "range_read": True, "cow_clone": False, "server_copy": True,
                    "direct_access": False, "presign": False, "atomic_create": True, "unknown_size": True,
                    "deferred_delete": False, "persistent": False, "adopt": False, "metadata_update": True,
                    "max_object_size": None}

    def __init__(self, namespace: str | None = None) -> None:
        self.namespace = namespace or f"ns-{uuid.uuid4().hex[:8]}"

    def table(self, store: str) -> dict[str, Any]:
        return {"driver": "memory", "namespace": self.namespace}

    def corrupt(self, location: Location, offset: int) -> None:
        """Replace the image's bytes in the process-wide namespace (what the driver reads)."""
        images = _namespace(self.namespace).images
        data, meta, written = images[location.image]
        images[location.image] = (flipped(data, offset), meta, written)

    def describe(self) -> dict[str, Any]:
        return {"kind": self.kind, "namespace": self.namespace}
