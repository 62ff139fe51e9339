"""The one tail of every operation that makes an image (add, adopt, and replicate through add): the
caller's checksums, the format verdict against the policy, the metadata, the publish and its log."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager

from ...config import StoreSettings
from ...errors import ChecksumMismatch, UnsafeImage
from ...engine.hashing import INTEGRITY, compare
from ...location import Location
from ...engine.pipeline import WriteOutcome
from ...observe import phase
from ...results import ImageInfo, encode_metadata
from .. import tables
from ..state import StoreState

__all__ = ["check_expected", "finish", "tables_first"]

log = logging.getLogger("imagestore")


def check_expected(expected: Mapping[str, str], actual: Mapping[str, str], store: str, image: str) -> None:
    """ChecksumMismatch unless every digest the caller expected is the one computed."""
    bad = compare(expected, actual)
    if bad is not None:
        algo, want, got = bad
        raise ChecksumMismatch(f"{algo} of the upload is {got}, expected {want}", algorithm=algo,
                               expected=want, actual=got, store=store, image=image)


def finish(state: StoreState, outcome: WriteOutcome, publish: Callable[[Mapping[str, str]], Location], *,
           image: str, settings: StoreSettings, format: str | None, expected: Mapping[str, str] | None,
           verb: str, extra: Mapping[str, str] | None = None) -> ImageInfo:
    """Check the hashed and inspected bytes (``expected``, verdict, policy), then ``publish`` their
    metadata; the caller aborts what it started if this raises."""
    if expected:
        computed = dict(outcome.checksums)
        if outcome.integrity is not None:
            computed[INTEGRITY] = outcome.integrity
        check_expected(expected, computed, state.name, image)
    verdict = outcome.verdict
    if verdict is not None:
        settings.policy.check(verdict, declared=format, store=state.name, image=image)
    elif format is not None and not settings.policy.allows(format):
        raise UnsafeImage(f"format {format!r} is not allowed", store=state.name, image=image)
    detected = verdict.format if verdict is not None else format
    vsize = verdict.virtual_size if verdict is not None else None
    descriptor = tables.describe(outcome.blocks) if outcome.blocks is not None else None
    with tables_first(state, image, outcome.blocks, descriptor):
        loc = publish({**(extra or {}),
                       **encode_metadata(outcome.checksums, detected, vsize, outcome.integrity, descriptor)})
    log.info("store %s: %s %s (%d bytes, format %s)", state.name, verb, image, outcome.size, detected)
    return ImageInfo(loc.with_store(state.name), outcome.size, outcome.checksums, detected, vsize,
                     outcome.integrity, descriptor)


@contextmanager
def tables_first(state: StoreState, image: str, table: bytes | None, descriptor: str | None) -> Iterator[None]:
    """Around a publish: the block table is stored first, and removed again if the publish fails
    (unless the image that took the name records the same table)."""
    created = False
    if table is not None and descriptor is not None:
        with phase("block_table"):
            created = tables.save(state, image, table, descriptor)
    try:
        yield
    except BaseException:
        if created and descriptor is not None:
            tables.release(state, image, descriptor)
        raise
