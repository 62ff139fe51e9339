"""The service-provider interface: everything a driver author needs, and nothing of the facade.

Subclass :class:`Driver`, declare ``OPTIONS``, return :class:`Capabilities` from
``open`` and register the class in the ``imagestore.drivers`` entry-point group.
Drivers import only this package and the public vocabulary (errors, locations);
the facade (hashing, limits, policy, retries of whole operations) is not theirs.
"""

from __future__ import annotations

from ..errors import Transient
from ..location import DirectAccess, Location
from .capabilities import Capabilities
from .contract import (
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
from .driver import Driver
from .options import Secret, parse_duration, parse_size
from .retry import RetryPolicy, Timeouts

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
    "RetryPolicy",
    "Secret",
    "Stored",
    "SweepReport",
    "Timeouts",
    "Transient",
    "Writer",
    "parse_duration",
    "parse_size",
]
