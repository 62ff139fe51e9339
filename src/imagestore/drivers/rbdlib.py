"""Deprecated alias of :mod:`imagestore.drivers.rbd.lib` (the ctypes librbd binding), kept for
one release for third-party code; it re-exports the same objects, so the libraries load once."""

from __future__ import annotations

import warnings

from .rbd.lib import *  # noqa: F403 - the whole public binding, the very same objects
from .rbd.lib import __all__  # noqa: F401 - the same public names

warnings.warn(
    "imagestore.drivers.rbdlib is deprecated; import imagestore.drivers.rbd.lib instead",
    DeprecationWarning,
    stacklevel=2,
)
