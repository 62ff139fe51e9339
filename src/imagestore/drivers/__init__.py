"""The drivers shipped with imagestore, one module or folder each, loaded lazily by entry point.

What a driver author needs is in :mod:`imagestore.spi`; the names re-exported here
are the same objects, kept so that drivers written against ``imagestore.drivers``
keep working. Importing this package imports no driver.
"""

from __future__ import annotations

from ..spi import (
    Adoption,
    Capabilities,
    CloneMode,
    ClonePlan,
    CloneRefusal,
    CloneRequest,
    DeleteOutcome,
    DirectAccess,
    Driver,
    DriverContext,
    Location,
    Option,
    Reader,
    Stored,
    SweepReport,
    Transient,
    Writer,
)

__all__ = [
    "Adoption",
    "Capabilities",
    "CloneMode",
    "ClonePlan",
    "CloneRefusal",
    "CloneRequest",
    "DeleteOutcome",
    "DirectAccess",
    "Driver",
    "DriverContext",
    "Location",
    "Option",
    "Reader",
    "Stored",
    "SweepReport",
    "Transient",
    "Writer",
]
