"""What a store can do, as data: the facade and the conformance tests read it."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

__all__ = ["Capabilities"]


@dataclass(frozen=True)
class Capabilities:
    """Flags and limits of one store; ``None`` for a limit means "no limit"."""

    write: bool = True
    """``add`` and ``delete`` work (False for read-only drivers such as http)."""
    range_read: bool = True
    """``open(offset=, length=)`` reads a range without reading what precedes it."""
    cow_clone: bool = False
    """The driver can clone in O(1) (RBD clone, reflink) when source and target allow."""
    server_copy: bool = False
    """The driver can copy inside the backend, without the bytes passing through us."""
    direct_access: bool = False
    """``locate`` returns something another service can use to reach the bits."""
    presign: bool = False
    """``locate`` can return a time-limited URL."""
    atomic_create: bool = True
    """Publishing never overwrites: of concurrent adds of one id exactly one wins."""
    unknown_size: bool = True
    """``add(size=None)`` works (the backend grows the image as data arrives)."""
    deferred_delete: bool = False
    """Deleting an image that clones depend on can be deferred instead of refused."""
    persistent: bool = True
    """Images survive the process (False for the memory driver)."""
    adopt: bool = False
    """``Store.adopt`` registers bits a consumer wrote straight into the backend (RBD, file)."""
    metadata_update: bool = False
    """The driver changes a published image's metadata in place (``Driver.update_metadata``):
    ``scrub`` records the digest and block table of an image stored without them."""
    max_object_size: int | None = None
    """The largest image the backend can hold, in bytes."""

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready view, for ``imagestore stores --json``."""
        return asdict(self)
