"""``Store.scrub``: read the images at rest back and check each against its digest (BLAKE3, else
its strongest checksum), at a bounded rate, in id order so that a scrub can go on where one
stopped; corrupt images are reported and logged, never deleted. An image that lacks its digest or
block table gets them from its verified bytes (:mod:`.backfill`)."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from ...errors import ChecksumMismatch, ImageStoreError, InvalidArgument, InvalidLocation, NotFound, SizeMismatch
from ...results import ScrubReport, Scrubbed, decode_metadata
from .. import tables
from ..args import is_count
from ..state import StoreState
from . import backfill as filling
from .read import expected_for, open_image

__all__ = ["scrub"]

log = logging.getLogger("imagestore")


class _Pace:
    """Sleeps so that the bytes read stay under ``rate`` bytes per second (None: no bound)."""

    def __init__(self, rate: float | None) -> None:
        self.rate = rate
        self.start = time.monotonic()
        self.done = 0

    def advance(self, n: int) -> None:
        self.done += n
        if self.rate is not None:
            ahead = self.done / self.rate - (time.monotonic() - self.start)
            if ahead > 0:
                time.sleep(ahead)


def _check_arguments(state: StoreState, prefix: object, start_after: object, rate: object, older_than: object,
                     backfill: object, on_image: object) -> None:
    """InvalidArgument naming the first bad argument, before anything is read."""
    if rate is not None and (isinstance(rate, bool) or not isinstance(rate, (int, float)) or not rate > 0):
        raise InvalidArgument(f"rate must be a positive number of bytes per second, not {rate!r}", store=state.name)
    if older_than is not None and not (is_count(older_than) or (isinstance(older_than, float) and older_than >= 0)):
        raise InvalidArgument(f"older_than must be a number of seconds >= 0, not {older_than!r}", store=state.name)
    if not isinstance(prefix, str):
        raise InvalidArgument(f"prefix must be a string, not {prefix!r}", store=state.name)
    if start_after is not None and not isinstance(start_after, str):
        raise InvalidArgument(f"start_after must be an image id, not {start_after!r}", store=state.name)
    if not isinstance(backfill, bool):
        raise InvalidArgument(f"backfill must be True or False, not {backfill!r}", store=state.name)
    if on_image is not None and not callable(on_image):
        raise InvalidArgument("on_image must be callable(Scrubbed)", store=state.name)


def scrub(state: StoreState, *, prefix: str = "", start_after: str | None = None, rate: float | None = None,
          older_than: float | None = None, backfill: bool = True,
          on_image: Callable[[Scrubbed], None] | None = None) -> ScrubReport:
    """Check every image of the store after ``start_after`` (see :meth:`imagestore.Store.scrub`)."""
    _check_arguments(state, prefix, start_after, rate, older_than, backfill, on_image)
    cutoff = None if older_than is None else time.time() - older_than
    names = sorted(n for n in state.call("list images", lambda: list(state.driver.list_images()))
                   if n.startswith(prefix) and not tables.is_companion(n))
    pace = _Pace(rate)
    found: dict[str, list[str]] = {"corrupt": [], "unverifiable": [], "failed": [], "skipped": []}
    filled: list[str] = []
    checked = 0
    last = None
    for name in names:
        if start_after is not None and name <= start_after:
            continue
        result = _one(state, name, pace, cutoff, backfill)
        last = name
        if result.status in found:
            found[result.status].append(name)
        if result.status in ("ok", "corrupt"):
            checked += 1
        if result.backfilled:
            filled.append(name)
            log.info("store %s: scrub recorded the %s of %s from its verified bytes", state.name,
                     " and ".join(result.backfilled), name)
        if result.status == "corrupt":
            log.error("store %s: scrub found %s corrupt: %s", state.name, name, result.detail)
        elif result.status == "failed":
            log.warning("store %s: scrub could not read %s: %s", state.name, name, result.detail)
        if on_image is not None:
            on_image(result)
    report = ScrubReport(checked, pace.done, tuple(found["corrupt"]), tuple(found["unverifiable"]),
                         tuple(found["failed"]), last, tuple(filled), len(found["skipped"]))
    log.info("store %s: scrub checked %d images (%d bytes): %d corrupt, %d unverifiable, %d failed, %d backfilled",
             state.name, checked, pace.done, len(report.corrupt), len(report.unverifiable), len(report.failed),
             len(filled))
    return report


def _one(state: StoreState, name: str, pace: _Pace, cutoff: float | None, backfill: bool) -> Scrubbed:
    """Read one image whole against its digest; record what it lacks when it reads verified."""
    try:
        loc = state.driver.location_for(name)
        stored = state.call("stat", lambda: state.driver.stat(loc), name)
    except (NotFound, InvalidLocation) as exc:  # gone since the listing, or no image of ours
        return Scrubbed(name, "skipped", detail=str(exc))
    except ImageStoreError as exc:
        return Scrubbed(name, "failed", detail=str(exc))
    if cutoff is not None and stored.written is not None and stored.written > cutoff:
        return Scrubbed(name, "skipped", stored.size, detail="written within older_than")
    info = decode_metadata(loc.with_store(state.name), stored.size, stored.metadata)
    want = expected_for(info, None)
    if not want:
        return Scrubbed(name, "unverifiable", info.size, detail="no digest or checksum is stored")
    (algorithm,) = want
    try:
        missing = filling.lacks(state, loc, info)
    except ImageStoreError as exc:
        return Scrubbed(name, "failed", info.size, algorithm, f"its block table cannot be read: {exc}")
    why = None if not missing else "backfill is off" if not backfill else filling.refusal(state, missing)
    rebuild = filling.Rebuild(info, missing) if missing and why is None else None
    got = 0
    try:
        with open_image(state, loc, expected=want) as reader:
            for chunk in reader:
                got += len(chunk)
                pace.advance(len(chunk))
                if rebuild is not None:
                    rebuild.update(chunk)
    except (ChecksumMismatch, SizeMismatch) as exc:
        pace.advance(max(0, info.size - got))  # read, though never handed out
        return Scrubbed(name, "corrupt", info.size, algorithm, str(exc))
    except NotFound as exc:
        return Scrubbed(name, "skipped", info.size, algorithm, str(exc))
    except ImageStoreError as exc:
        return Scrubbed(name, "failed", info.size, algorithm, str(exc))
    if rebuild is None:
        detail = f"lacks its {' and '.join(missing)}, not recorded: {why}" if missing else None
        return Scrubbed(name, "ok", info.size, algorithm, detail)
    try:
        done = rebuild.record(state, loc, stored)
    except ImageStoreError as exc:
        return Scrubbed(name, "failed", info.size, algorithm,
                        f"verified, but recording its {' and '.join(missing)} failed: {exc}")
    return Scrubbed(name, "ok", info.size, algorithm, backfilled=done)
