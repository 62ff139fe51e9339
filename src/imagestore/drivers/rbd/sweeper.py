"""The RBD driver's sweep: removes dead writers' temporary images and trashed images whose
clones are all gone, pass after pass, until a pass removes nothing."""

from __future__ import annotations

import logging
import time

from ...spi.contract import SweepReport
from .core import SWEEP_SKIPS, TMP_PREFIX, RbdStore, remove_fully
from .lib import TRASH_SOURCE_USER
from .trash import purge_trashed

__all__ = ["sweep"]

log = logging.getLogger("imagestore")


def sweep(store: RbdStore, older_than: float, deadline: float | None = None) -> SweepReport:
    """Remove dead writers' temporary images (unwatched, older than ``older_than``) and
    trashed images whose clones are all gone, until a pass removes nothing: one sweep
    leaves no trash entry that became childless while it ran (temporaries go first, and
    a dead clone's trashed parent goes with it, in whichever pool)."""
    report = SweepReport()
    while True:
        now = time.time()
        found = _sweep_temps(store, older_than, now, deadline)
        found += _sweep_trash(store, now, deadline)
        report += found
        if not found.removed or _late(deadline):
            return report


def _late(deadline: float | None) -> bool:
    return deadline is not None and time.monotonic() > deadline


def _sweep_temps(store: RbdStore, older_than: float, now: float, deadline: float | None) -> SweepReport:
    """Remove the temporaries of dead writers (and the trashed parents only they still needed)."""
    report = SweepReport()
    cluster = store.cluster
    for _, image in cluster.list_images(store.pool):
        if _late(deadline):
            break
        if not image.startswith(TMP_PREFIX):
            continue
        try:
            stamp = int(image.rsplit(".", 2)[1])
        except (IndexError, ValueError):
            continue
        if now - stamp < max(older_than, store.min_temp_age):
            continue
        try:
            with cluster.open(store.pool, image, read_only=True) as img:
                if img.watchers():
                    continue  # its writer is alive (a dead client's watch expires in ~30 s)
                size = img.size()
                parent = img.parent()
            remove_fully(cluster, store.pool, image)
            report += SweepReport(1, size)
        except SWEEP_SKIPS as exc:
            log.info("store %s: sweep left %s (%s)", store.name, image, exc)
            continue
        if parent is not None and parent.trash:
            report += _purge_quietly(store, parent.pool, parent.image_id)
    return report


def _sweep_trash(store: RbdStore, now: float, deadline: float | None) -> SweepReport:
    """Purge this pool's trashed (deleted) images that no clone needs any more."""
    report = SweepReport()
    for entry in store.cluster.trash_list(store.pool):
        if _late(deadline):
            break
        if entry.source == TRASH_SOURCE_USER and entry.deferment_end_time <= now:
            report += _purge_quietly(store, store.pool, entry.id)
    return report


def _purge_quietly(store: RbdStore, pool: str, image_id: str) -> SweepReport:
    """``purge_trashed`` for sweep: what cannot go now is logged and left for a later sweep."""
    try:
        return SweepReport(1, 0) if purge_trashed(store.cluster, pool, image_id) else SweepReport()
    except SWEEP_SKIPS as exc:
        log.info("store %s: sweep left trashed image %s/%s (%s)", store.name, pool, image_id, exc)
        return SweepReport()
