"""The file driver: images as files under one root directory (see :mod:`.backend`).

``imagestore.drivers.file:FileDriver`` is the driver's entry point; ``FICLONE`` and
``RangeReader`` are the filesystem primitives the compute-node cache shares with it.
"""

from __future__ import annotations

from .backend import FileDriver
from .core import FICLONE
from .reader import RangeReader

__all__ = ["FICLONE", "FileDriver", "RangeReader"]
