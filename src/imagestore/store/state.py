"""What one Store owns and every operation works on: the driver, the settings, the probed
capabilities and the shared locks and memo. Operations take a :class:`StoreState`, never the
Store, so nothing in ``ops/`` imports the facade back."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Iterator
from typing import TypeVar

from ..spi.capabilities import Capabilities
from ..config import StoreSettings
from ..spi.contract import DriverContext, Stored
from ..spi.driver import Driver
from ..errors import InvalidArgument, InvalidLocation, NotFound, Unsupported
from ..engine.limits import AddGate
from ..location import Location, validate_image_id
from ..observe import NULL, Observer
from ..engine.pipeline import Limit
from ..spi.retry import call_with_retries
from .args import parse_any
from .memo import TableCache, VerifiedMemo

__all__ = ["StoreState"]

T = TypeVar("T")


class StoreState:
    """One store's driver, settings, capabilities and shared state (locks, upload gate, memo)."""

    caps: Capabilities

    def __init__(self, driver: Driver, settings: StoreSettings, observer: Observer = NULL) -> None:
        self.driver = driver
        self.settings = settings
        self.observer = observer
        self.gate = AddGate(settings.max_concurrent_adds)
        self.publish_lock = threading.Lock()
        self.sweep_lock = threading.Lock()
        self.swept_at: float | None = None
        self.memo = VerifiedMemo()
        self.tables = TableCache()

    @property
    def name(self) -> str:
        """The store's name (the driver's)."""
        return self.driver.name

    def open(self) -> None:
        """Open the driver once (connect, probe) and keep the capabilities it reports."""
        s = self.settings
        context = DriverContext(concurrency=s.concurrency, chunk_size=s.chunk_size, retry=s.retry,
                                timeouts=s.timeouts)
        self.caps = self.call("open store", lambda: self.driver.open(context))

    def call(self, op: str, fn: Callable[[], T], image: str | None = None, *, retry: bool = True) -> T:
        """Run a driver call: retried on Transient when idempotent, always translated."""
        policy = self.settings.retry if retry else self.settings.retry.with_retries(0)
        return call_with_retries(op, fn, policy=policy, store=self.name, image=image)

    def stat_each(self, names: Iterable[str], prefix: str) -> Iterator[tuple[str, Location, Stored]]:
        """``(name, location, stored)`` of each listed name with ``prefix`` that is still there (the
        library's own objects a sweep looks at: block tables, raw bases)."""
        for name in names:
            if not name.startswith(prefix):
                continue
            loc = self.driver.location_for(name)
            try:
                stored = self.call("stat", lambda: self.driver.stat(loc), name)
            except NotFound:
                continue
            yield name, loc, stored

    def location(self, ref: Location | str) -> Location:
        """Resolve ``ref`` (location, location string in any accepted form, or image id) in this store."""
        if isinstance(ref, str) and "://" not in ref:
            return self.driver.location_for(validate_image_id(ref))
        loc = parse_any(ref)
        if loc.store is not None and loc.store != self.name:
            raise InvalidLocation(f"location {loc} belongs to store {loc.store!r}", store=self.name)
        if not self.driver.owns(loc):
            raise InvalidLocation(f"location {loc} is not in this store", store=self.name)
        return loc.with_store(self.name)

    def limit(self) -> Limit:
        """The largest image this store takes: its ``max_image_size`` or the backend's limit."""
        cfg, backend = self.settings.max_image_size, self.caps.max_object_size
        if backend is not None and (cfg is None or backend < cfg):
            return Limit(backend, f"the backend's maximum object size ({self.driver.scheme})")
        return Limit(cfg)

    def require_write(self, image: str | None) -> None:
        """Unsupported on a read-only store."""
        if not self.caps.write:
            raise Unsupported("this store is read-only", store=self.name, image=image)

    def target(self, to: object, image: str) -> StoreState:
        """The state of the store a clone or copy goes to: ``to`` (a Store's state), or this one."""
        if to is None:
            return self
        if not isinstance(to, StoreState):
            raise InvalidArgument(f"to must be a Store, not {type(to).__name__}", store=self.name, image=image)
        return to
