"""The facade: :class:`Store` (one pipeline every driver shares, delegating to ``ops/``), the
:class:`Stores` registry, and the package-level ``open_store`` and ``replicate``."""

from __future__ import annotations

from .args import parse_any
from .registry import (
    ENTRY_POINT_GROUP,
    Stores,
    UnknownStore,
    default_root,
    installed_drivers,
    load_driver_class,
    open_store,
)
from .state import StoreState
from .store import Store
from .toplevel import replicate

__all__ = [
    "ENTRY_POINT_GROUP",
    "Store",
    "StoreState",
    "Stores",
    "UnknownStore",
    "default_root",
    "installed_drivers",
    "load_driver_class",
    "open_store",
    "parse_any",
    "replicate",
]
