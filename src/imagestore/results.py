"""Small frozen result types returned by the :class:`~imagestore.store.Store` facade."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from .contract import CloneMode, DeleteOutcome
from .location import Location

__all__ = ["CloneCheck", "CloneResult", "DeleteOutcome", "ImageInfo", "decode_metadata", "encode_metadata"]

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
    """A finished clone: the new image's location and the mode actually used."""

    location: Location
    mode: CloneMode

    def to_dict(self) -> dict[str, Any]:
        """The JSON form printed by ``imagestore clone --json``."""
        return {"location": str(self.location), "mode": self.mode}


@dataclass(frozen=True)
class CloneCheck:
    """The answer of ``can_clone``: whether, in which mode, and why."""

    possible: bool
    mode: CloneMode | None
    reason: str

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
