"""A driver-level fault layer for tests: make chosen driver calls raise.

``inject(store, point, make_error, times=None)`` wraps one call of the store's
driver (or of the writers and readers it returns) so that it raises
``make_error()`` the first ``times`` times it is reached (``None``: always),
and otherwise does the real work. Points name driver calls: ``open_writer``,
``write``, ``commit``, ``open_reader``, ``read``, ``stat``, ``delete``,
``locate``, ``plan_clone``, ``clone``, ``sweep``.
"""

from __future__ import annotations

import errno
from collections.abc import Callable
from typing import Any

from imagestore import Store
from imagestore.errors import Transient

POINTS = ("open_writer", "write", "commit", "open_reader", "read", "stat", "delete", "locate", "plan_clone",
          "clone", "sweep")

#: name -> (factory of the injected error, the class the caller must see)
FAULTS: dict[str, Callable[[], BaseException]] = {
    "transient": lambda: Transient("injected: connection timed out"),
    "eio": lambda: OSError(errno.EIO, "Input/output error"),
    "enospc": lambda: OSError(errno.ENOSPC, "No space left on device"),
    "bug": lambda: RuntimeError("injected: a driver bug"),
}


class Injector:
    """Counts how often a fault fired; ``budget`` None fires forever."""

    def __init__(self, make_error: Callable[[], BaseException], times: int | None) -> None:
        self.make_error = make_error
        self.budget = times
        self.fired = 0

    def maybe_raise(self) -> None:
        if self.budget is None or self.fired < self.budget:
            self.fired += 1
            raise self.make_error()


class _Proxy:
    """A writer or reader whose one method goes through the injector."""

    def __init__(self, inner: Any, method: str, injector: Injector) -> None:
        self._inner = inner
        self._method = method
        self._injector = injector

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._inner, name)
        if name != self._method:
            return attr

        def faulty(*args: Any, **kw: Any) -> Any:
            self._injector.maybe_raise()
            return attr(*args, **kw)

        return faulty


def inject(store: Store, point: str, make_error: Callable[[], BaseException], times: int | None = None) -> Injector:
    """Make ``point`` of ``store``'s driver raise; returns the injector (``fired`` counts)."""
    if point not in POINTS:
        raise ValueError(f"unknown fault point {point!r}")
    driver = store.driver
    injector = Injector(make_error, times)
    if point in ("write", "commit", "read"):
        opener = "open_writer" if point != "read" else "open_reader"
        real = getattr(driver, opener)

        def wrapped_open(*args: Any, **kw: Any) -> Any:
            return _Proxy(real(*args, **kw), point, injector)

        setattr(driver, opener, wrapped_open)
        return injector
    real_call = getattr(driver, point)

    def wrapped(*args: Any, **kw: Any) -> Any:
        injector.maybe_raise()
        return real_call(*args, **kw)

    setattr(driver, point, wrapped)
    return injector
