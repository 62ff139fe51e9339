"""OpenStack Swift driver: images as objects or Static Large Objects in one account.

``imagestore.drivers.swift:SwiftDriver`` is the driver (:mod:`.backend`); :mod:`.core`
holds what its parts share, :mod:`.writer`/:mod:`.copier`/:mod:`.reader`/:mod:`.sweeper`
the transfers, :mod:`.claims` the create claim, :mod:`.auth`/:mod:`.http` the account.
"""

from .backend import Place, SwiftDriver

__all__ = ["Place", "SwiftDriver"]
