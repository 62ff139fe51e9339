"""Deprecated: the registry moved to :mod:`imagestore.store` (``imagestore.store.registry``); this
module re-exports its names for one release. Import ``Stores`` and ``open_store`` from ``imagestore``."""

from __future__ import annotations

import warnings

from .store.registry import (
    ENTRY_POINT_GROUP,
    Stores,
    UnknownStore,
    default_root,
    installed_drivers,
    load_driver_class,
    open_store,
)

__all__ = ["ENTRY_POINT_GROUP", "Stores", "UnknownStore", "default_root", "installed_drivers", "load_driver_class",
           "open_store"]

warnings.warn("imagestore.stores is deprecated; import Stores, open_store... from imagestore or imagestore.store",
              DeprecationWarning, stacklevel=2)
