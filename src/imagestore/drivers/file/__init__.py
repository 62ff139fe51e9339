"""The file driver: images as files under one root directory (see :mod:`.backend`).

``imagestore.drivers.file:FileDriver`` is the driver's entry point. ``FICLONE`` and
``RangeReader`` (now in :mod:`imagestore.spi.localfile`) are re-exported for one release.
"""

from __future__ import annotations

from ...spi.localfile import FICLONE, RangeReader
from .backend import FileDriver

__all__ = ["FICLONE", "FileDriver", "RangeReader"]
