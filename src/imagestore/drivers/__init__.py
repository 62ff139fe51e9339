"""What a driver author needs: subclass :class:`Driver`, declare ``OPTIONS``, return
:class:`Capabilities` from ``open`` and register the class in the
``imagestore.drivers`` entry-point group. The README's "Write your own driver"
section shows a complete one.

Importing this package imports no driver: backends load lazily by entry point.
"""

from __future__ import annotations

from ..capabilities import Capabilities
from ..contract import (
    Adoption,
    CloneMode,
    ClonePlan,
    CloneRefusal,
    CloneRequest,
    DeleteOutcome,
    DriverContext,
    Option,
    Reader,
    Stored,
    SweepReport,
    Writer,
)
from ..errors import Transient
from ..location import DirectAccess, Location
from .base import Driver

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
