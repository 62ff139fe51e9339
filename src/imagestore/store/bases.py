"""Raw bases: the raw image a non-raw source becomes, once, in a store that clones copy-on-write,
so that every later clone of that source into the store is an O(1) clone of the base.

A base is an image of the store named from its source's digest (BLAKE3, else the strongest stored
checksum): two sources with the same bytes share one base, and the name itself says what was
converted, so a base found under it is used as it is. Its metadata records the source's location,
format and digest beside its own BLAKE3 digest and block table. Ids with :data:`PREFIX` are
reserved: no caller adds, clones or adopts under them."""

from __future__ import annotations

from ..engine.hashing import INTEGRITY, strongest
from ..results import ImageInfo

__all__ = ["PREFIX", "SOURCE_DIGEST", "SOURCE_FORMAT", "SOURCE_LOCATION", "base_id", "is_base", "source_digest"]

PREFIX = "imagestore-base-"
"""Image ids starting with this name are raw bases."""
SOURCE_LOCATION = "base.source"
"""Metadata key: the location the base was converted from (the first one, when several share it)."""
SOURCE_FORMAT = "base.source-format"
"""Metadata key: the source's format (qcow2, vmdk, ...)."""
SOURCE_DIGEST = "base.source-digest"
"""Metadata key: ``<algorithm>:<hex>`` of the source's bytes, as its name derives from it."""


def source_digest(info: ImageInfo) -> tuple[str, str] | None:
    """The digest a base of ``info`` is named by: its BLAKE3, else its strongest checksum (None:
    the image records none, and cannot be verified before a conversion)."""
    if info.integrity is not None:
        return INTEGRITY, info.integrity
    if not info.checksums:
        return None
    algo = strongest(info.checksums)
    return algo, info.checksums[algo].lower()


def base_id(info: ImageInfo) -> str | None:
    """The id of the raw base of the image ``info`` describes (None when it records no digest)."""
    found = source_digest(info)
    if found is None:
        return None
    algo, digest = found
    return f"{PREFIX}{algo}-{digest[:64]}"


def is_base(image_id: str) -> bool:
    """Whether an id names a raw base."""
    return image_id.startswith(PREFIX)
