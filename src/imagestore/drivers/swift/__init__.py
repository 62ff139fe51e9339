"""OpenStack Swift driver: images as objects or Static Large Objects in one account.

``imagestore.drivers.swift:SwiftDriver`` is the driver (:mod:`.backend`); :mod:`.core`
holds what its parts share, :mod:`.writer`/:mod:`.copier`/:mod:`.reader`/:mod:`.sweeper`
the transfers, :mod:`.claims` the create claim, :mod:`.auth`/:mod:`.http` the account.
"""

try:
    import requests  # noqa: F401
    import swiftclient  # noqa: F401
except ImportError as exc:  # reported by the store registry as DriverNotInstalled
    raise ImportError(f"the swift driver needs python-swiftclient and requests ({exc}): "
                      "pip install 'imagestore[swift]'") from exc

from .backend import Place, SwiftDriver  # noqa: E402

__all__ = ["Place", "SwiftDriver"]
