"""Sweeping dead writers' temporaries: on demand, and bounded in time before an add so a crashed
writer does not leak forever."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from ...spi.contract import SweepReport
from ...errors import ImageStoreError, InUse, InvalidArgument, NotFound, Unsupported
from ...location import Location
from .. import bases, tables
from ..state import StoreState
from .delete import delete
from .read import stat

__all__ = ["AUTO_SWEEP_BUDGET", "Resolver", "auto_sweep", "sweep"]

log = logging.getLogger("imagestore")
AUTO_SWEEP_BUDGET = 2.0  # seconds an add (or a replicate, in its target) may spend sweeping


Resolver = Callable[[str], "StoreState | None"]
"""A store's state by name (None: not known here): where a raw base's source is looked for."""


def sweep(state: StoreState, older_than: float | None = None, *, deadline: float | None = None,
          sources: Resolver | None = None) -> SweepReport:
    """Remove temporaries of dead writers older than ``older_than`` seconds (default: the
    store's ``sweep_older_than``); never one of a live writer. Returns counts and bytes."""
    age = state.settings.sweep_older_than if older_than is None else older_than
    if isinstance(age, bool) or not isinstance(age, (int, float)) or not age >= 0:
        raise InvalidArgument(f"older_than must be a non-negative number of seconds, not {age!r}",
                              store=state.name)
    report = state.call("sweep", lambda: state.driver.sweep(age, deadline))
    if deadline is None and state.caps.write:  # an explicit sweep: tables and bases whose image is gone
        report = _orphans(state, age, report, sources)
    if report.removed:
        log.info("store %s: sweep removed %d temporaries (%d bytes)", state.name, report.removed,
                 report.bytes_freed)
    return report


def _orphans(state: StoreState, age: float, report: SweepReport, sources: Resolver | None) -> SweepReport:
    """Add to ``report`` the block tables left by a crash between an image's delete and its table's,
    and the raw bases whose source is gone."""
    try:
        names = state.call("list images", lambda: list(state.driver.list_images()))
    except Unsupported:
        return report
    report += SweepReport(*tables.sweep_orphans(state, age, names))
    return report + _stale_bases(state, names, sources)


def _stale_bases(state: StoreState, names: list[str], sources: Resolver | None) -> SweepReport:
    """Delete the raw bases whose source image is gone (an RBD base that clones still need goes
    to the trash, as any parent: deferred). A source in a store ``sources`` cannot open is kept."""
    removed = freed = 0
    for name, loc, stored in state.stat_each(names, bases.PREFIX):
        source = stored.metadata.get(bases.SOURCE_LOCATION)
        if source is None or not _gone(state, source, sources):
            continue
        try:
            outcome = delete(state, loc)
        except (NotFound, InUse) as exc:  # gone meanwhile, or clone v1 children still need it
            log.info("store %s: the raw base %s stays: %s", state.name, name, exc)
            continue
        removed += 1
        freed += stored.size
        log.info("store %s: swept the raw base %s of the deleted image %s (%s)", state.name, name, source,
                 outcome.value)
    return SweepReport(removed, freed)


def _gone(state: StoreState, source: str, sources: Resolver | None) -> bool:
    """Whether the image at ``source`` is known to be deleted (False when it cannot be told)."""
    try:
        loc = Location.parse(source)
        owner = state if loc.store == state.name else (sources(loc.store) if sources and loc.store else None)
        if owner is None:
            return False
        stat(owner, loc)
    except NotFound:
        return True
    except ImageStoreError:
        return False
    return False


def auto_sweep(state: StoreState) -> None:
    """Before an add: sweep dead writers' leftovers, bounded in time, at most once per
    ``sweep_older_than`` (and once per opened store), so a crash does not leak forever."""
    s = state.settings
    if not (s.auto_sweep and state.caps.write and state.caps.persistent):
        return
    now = time.monotonic()
    with state.sweep_lock:
        if state.swept_at is not None and now - state.swept_at < max(s.sweep_older_than, 60.0):
            return
        state.swept_at = now
    try:
        sweep(state, deadline=now + AUTO_SWEEP_BUDGET)
    except ImageStoreError as exc:
        log.warning("store %s: automatic sweep failed: %s", state.name, exc)
