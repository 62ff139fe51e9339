"""Sweeping dead writers' temporaries: on demand, and bounded in time before an add so a crashed
writer does not leak forever."""

from __future__ import annotations

import logging
import time

from ...spi.contract import SweepReport
from ...errors import ImageStoreError, InvalidArgument, Unsupported
from .. import tables
from ..state import StoreState

__all__ = ["AUTO_SWEEP_BUDGET", "auto_sweep", "sweep"]

log = logging.getLogger("imagestore")
AUTO_SWEEP_BUDGET = 2.0  # seconds an add (or a replicate, in its target) may spend sweeping


def sweep(state: StoreState, older_than: float | None = None, *, deadline: float | None = None) -> SweepReport:
    """Remove temporaries of dead writers older than ``older_than`` seconds (default: the
    store's ``sweep_older_than``); never one of a live writer. Returns counts and bytes."""
    age = state.settings.sweep_older_than if older_than is None else older_than
    if isinstance(age, bool) or not isinstance(age, (int, float)) or not age >= 0:
        raise InvalidArgument(f"older_than must be a non-negative number of seconds, not {age!r}",
                              store=state.name)
    report = state.call("sweep", lambda: state.driver.sweep(age, deadline))
    if deadline is None and state.caps.write:  # an explicit sweep: block tables whose image is gone
        report = _orphan_tables(state, age, report)
    if report.removed:
        log.info("store %s: sweep removed %d temporaries (%d bytes)", state.name, report.removed,
                 report.bytes_freed)
    return report


def _orphan_tables(state: StoreState, age: float, report: SweepReport) -> SweepReport:
    """Add to ``report`` the block tables left by a crash between an image's delete and its table's."""
    try:
        names = state.call("list images", lambda: list(state.driver.list_images()))
    except Unsupported:
        return report
    return report + SweepReport(*tables.sweep_orphans(state, age, names))


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
