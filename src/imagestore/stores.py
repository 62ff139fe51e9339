"""Deprecated: the registry moved to :mod:`imagestore.store` (``imagestore.store.registry``); this
module re-exports its names for one release. Import ``Stores`` and ``open_store`` from ``imagestore``."""

from __future__ import annotations

import warnings

from .store.registry import *  # noqa: F403 - the whole public surface of the old module, re-exported
from .store.registry import __all__  # noqa: F401

warnings.warn("imagestore.stores is deprecated; import Stores, open_store... from imagestore or imagestore.store",
              DeprecationWarning, stacklevel=2)
