"""The conformance suite's fault helper: a thin shim over :mod:`imagestore.testing.chaos`.

``inject(store, point, make_error, times=None)`` makes one call of the store's
driver (or of the writers and readers it returns) raise ``make_error()`` the first
``times`` times it is reached (``None``: always), and otherwise do the real work.
Points name driver calls: ``open_writer``, ``write``, ``commit``, ``open_reader``,
``read``, ``stat``, ``delete``, ``locate``, ``plan_clone``, ``clone``, ``sweep``.
"""

from __future__ import annotations

import errno
from collections.abc import Callable

from imagestore import Store
from imagestore.errors import Transient

from ..chaos import Chaos, Fault, Raise

__all__ = ["FAULTS", "POINTS", "Injector", "inject"]

POINTS = ("open_writer", "write", "commit", "open_reader", "read", "stat", "delete", "locate", "plan_clone",
          "clone", "sweep")

#: name -> factory of the injected error
FAULTS: dict[str, Callable[[], BaseException]] = {
    "transient": lambda: Transient("injected: connection timed out"),
    "eio": lambda: OSError(errno.EIO, "Input/output error"),
    "enospc": lambda: OSError(errno.ENOSPC, "No space left on device"),
    "bug": lambda: RuntimeError("injected: a driver bug"),
}


class Injector:
    """One injected fault: ``fired`` counts how often it fired; ``budget`` None fires forever."""

    def __init__(self, fault: Fault) -> None:
        self.fault = fault

    @property
    def budget(self) -> int | None:
        return self.fault.times

    @budget.setter
    def budget(self, value: int | None) -> None:
        self.fault.times = value

    @property
    def fired(self) -> int:
        return self.fault.fired

    @fired.setter
    def fired(self, value: int) -> None:
        self.fault.fired = value


def inject(store: Store, point: str, make_error: Callable[[], BaseException], times: int | None = None) -> Injector:
    """Make ``point`` of ``store``'s driver raise; returns the injector (``fired`` counts)."""
    if point not in POINTS:
        raise ValueError(f"unknown fault point {point!r}")
    fault = Fault(point, Raise(make_error, "injected"), times=times)
    Chaos([fault]).attach(store)
    return Injector(fault)
