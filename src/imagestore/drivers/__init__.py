"""The drivers shipped with imagestore, one module or folder each, loaded lazily by entry point.

What a driver author needs is in :mod:`imagestore.spi`; this package re-exports the same
names, so that drivers written against ``imagestore.drivers`` keep working. Importing it
imports no driver.
"""

from __future__ import annotations

from ..spi import *  # noqa: F403 - the driver boundary, under its older name
from ..spi import __all__  # noqa: F401
