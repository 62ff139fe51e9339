"""Small frozen result types returned by the :class:`~imagestore.store.Store` facade."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from .spi.contract import CloneMode, DeleteOutcome
from .location import Location

__all__ = ["CLONE_REASONS", "CloneCheck", "CloneResult", "DeleteOutcome", "ImageInfo", "Replica", "decode_metadata",
           "encode_metadata"]

CLONE_REASONS: Mapping[str, str] = MappingProxyType({
    "read_only_target": "the target store is read-only",
    "different_backend": "source and target are different kinds of backend",
    "different_cluster": "the target is in another Ceph cluster (fsid differs)",
    "different_endpoint": "the target is on another S3/Swift endpoint, account or region",
    "different_filesystem": "the roots are on different filesystems, or no in-kernel copy works between them",
    "format_not_raw": "the target clones raw images only (cow_requires_raw) and the image is not raw",
    "snapshot_missing": "the image's snapshot does not exist or cannot be opened",
    "pool_missing": "the target pool does not exist",
    "unreachable": "a cluster or endpoint cannot be reached",
    "permission": "the target's credentials may not read the source or write the target",
    "not_claimed": "the store does not claim that clone mode",
    "no_native_clone": "the driver has no native clone",
    "mode_unavailable": "the asked mode is not available (another one is)",
})
"""``CloneCheck.code`` values: why a copy-on-write or server-side clone is not made."""

_CHECKSUM_PREFIX = "checksum."


@dataclass(frozen=True)
class ImageInfo:
    """A stored image: where it is, how big, its checksums and its detected disk format."""

    location: Location
    size: int
    checksums: Mapping[str, str] = field(default_factory=dict)
    format: str | None = None
    virtual_size: int | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "checksums", MappingProxyType(dict(self.checksums)))

    @property
    def store(self) -> str | None:
        """The name of the store holding the image."""
        return self.location.store

    def to_dict(self) -> dict[str, Any]:
        """The JSON form printed by ``imagestore add/stat --json``."""
        return {
            "location": str(self.location),
            "store": self.store,
            "size": self.size,
            "checksums": dict(self.checksums),
            "format": self.format,
            "virtual_size": self.virtual_size,
        }


@dataclass(frozen=True)
class CloneResult:
    """A finished clone: the new image's location, the mode actually used and ``depth``,
    how many ancestors its data still depends on (0: independent, as after a stream or
    server copy, a reflink or a flatten; 1: an RBD clone of a flat image; ...)."""

    location: Location
    mode: CloneMode
    depth: int = 0

    def to_dict(self) -> dict[str, Any]:
        """The JSON form printed by ``imagestore clone --json``."""
        return {"location": str(self.location), "mode": self.mode, "depth": self.depth}


@dataclass(frozen=True)
class CloneCheck:
    """The answer of ``can_clone``: whether, in which mode, and why.

    ``code`` names, for programs, why the cheaper native mode is not used (a key of
    :data:`CLONE_REASONS`), also when ``mode="auto"`` falls back to a stream; None
    when the native mode is used.
    """

    possible: bool
    mode: CloneMode | None
    reason: str
    code: str | None = None

    def __bool__(self) -> bool:
        return self.possible


def encode_metadata(checksums: Mapping[str, str], fmt: str | None, virtual_size: int | None) -> dict[str, str]:
    """The ``str -> str`` map a driver stores beside an image."""
    meta = {f"{_CHECKSUM_PREFIX}{algo}": digest for algo, digest in checksums.items()}
    if fmt is not None:
        meta["format"] = fmt
    if virtual_size is not None:
        meta["virtual_size"] = str(virtual_size)
    return meta


def decode_metadata(location: Location, size: int, meta: Mapping[str, str]) -> ImageInfo:
    """The :class:`ImageInfo` for a stored image from what its driver kept."""
    checksums = {k[len(_CHECKSUM_PREFIX):]: v for k, v in meta.items() if k.startswith(_CHECKSUM_PREFIX)}
    vsize = meta.get("virtual_size")
    return ImageInfo(
        location=location,
        size=size,
        checksums=checksums,
        format=meta.get("format"),
        virtual_size=int(vsize) if vsize and vsize.isdigit() else None,
    )


@dataclass(frozen=True)
class Replica:
    """A finished ``replicate``: the copy in the target store, how it was made (``mode``,
    None when an identical copy was already there: ``existing``) and its clone ``depth``."""

    info: ImageInfo
    mode: CloneMode | None
    existing: bool = False
    depth: int = 0

    @property
    def location(self) -> Location:
        """Where the copy is."""
        return self.info.location
