"""Ids the library keeps for its own objects in every store: block tables and raw bases. ``add``,
``clone``, ``adopt`` and ``replicate`` refuse them, so no caller's image takes their names."""

from __future__ import annotations

from ..errors import InvalidArgument
from . import bases, tables

__all__ = ["PREFIXES", "refuse"]

PREFIXES = (tables.PREFIX, bases.PREFIX)


def refuse(image_id: str, store: str) -> None:
    """InvalidArgument for an image id in a reserved namespace."""
    for prefix in PREFIXES:
        if image_id.startswith(prefix):
            raise InvalidArgument(f"image ids starting with {prefix!r} are reserved for imagestore's own objects",
                                  store=store, image=image_id)
