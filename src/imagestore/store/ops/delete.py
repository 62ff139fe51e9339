"""``Store.delete``: deleted, deferred (clones depend on it) or refused; a retried delete whose
earlier attempt did delete the image still reports it deleted."""

from __future__ import annotations

import logging

from ...spi.contract import DeleteOutcome
from ...errors import BackendError, NotFound
from ...location import Location
from ...results import decode_metadata
from .. import tables
from ..state import StoreState

__all__ = ["delete"]

log = logging.getLogger("imagestore")


def delete(state: StoreState, location: Location | str) -> DeleteOutcome:
    """Delete the image: ``DELETED``, ``DEFERRED`` (clones depend on it), or InUse/NotFound."""
    loc = state.location(location)
    state.require_write(loc.image)
    descriptor = _table_of(state, loc)
    attempts = 0

    def attempt() -> DeleteOutcome:
        nonlocal attempts
        attempts += 1
        try:
            return DeleteOutcome(state.driver.delete(loc))
        except NotFound:
            if attempts > 1:  # an earlier attempt that timed out did delete it
                return DeleteOutcome.DELETED
            raise

    result = state.call("delete", attempt, loc.image)
    if result is DeleteOutcome.DEFERRED and not state.caps.deferred_delete:
        raise BackendError("the driver deferred a delete without claiming deferred_delete",
                           store=state.name, image=loc.image)
    if descriptor is not None:
        tables.drop(state, loc.image, descriptor)
    log.info("store %s: delete %s -> %s", state.name, loc.image, result)
    return result


def _table_of(state: StoreState, loc: Location) -> str | None:
    """The image's block table descriptor, to remove its table after it (None: none, or absent;
    the delete then reports NotFound itself)."""
    try:
        stored = state.call("stat", lambda: state.driver.stat(loc), loc.image)
    except NotFound:
        return None
    return decode_metadata(loc, stored.size, stored.metadata).block_table
