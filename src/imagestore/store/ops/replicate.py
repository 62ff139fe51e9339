"""``Store.replicate``: copy an image into another store, verified, in the cheapest mode
(Glance's copy-image without HTTP); an identical copy already there is kept, so a rerun after a
crash completes it."""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping

from ...errors import AlreadyExists, ChecksumMismatch, ImageStoreError, NotFound, UnsafeImage, Unsupported
from ...engine.hashing import compare, strongest, validate_digests
from ...location import Location, validate_image_id
from ...engine.pipeline import check_options
from ...engine.progress import Progress
from ...results import ImageInfo, Replica
from ..args import CloneModeArg
from .. import reserved
from ..state import StoreState
from .add import add
from .clone import clone, depth, flatten
from .read import open_image, stat
from .sweep import AUTO_SWEEP_BUDGET, sweep

__all__ = ["replicate"]

log = logging.getLogger("imagestore")


def replicate(state: StoreState, location: Location | str, to: object, *, name: str | None = None,
              mode: CloneModeArg = "auto", expected: Mapping[str, str] | None = None, format: str | None = None,
              independent: bool = True, progress: Progress | None = None) -> Replica:
    """Copy an image into ``to`` as ``name`` (see :meth:`imagestore.Store.replicate`)."""
    loc = state.location(location)
    target = state.target(to, loc.image)
    new_name = validate_image_id(name or loc.image)
    reserved.refuse(new_name, target.name)
    target.require_write(new_name)
    validate_digests(expected, store=state.name, image=loc.image)
    check_options(store=state.name, image=loc.image, format=format, progress=progress)
    src = stat(state, loc)
    if expected:
        bad = compare(expected, src.checksums)
        if bad is not None:
            algo, want_digest, got = bad
            raise ChecksumMismatch(f"the source's stored {algo} is {got}, expected {want_digest}",
                                   algorithm=algo, expected=want_digest, actual=got, store=state.name,
                                   image=loc.image)
    if format is not None and src.format is not None and format.strip().lower() != src.format:
        raise UnsafeImage("replicate refused", reasons=[f"declared format {format!r} does not match the "
                                                        f"detected format {src.format!r}"],
                          format=src.format, store=state.name, image=loc.image)
    want = {**src.checksums, **(expected or {})}
    if target.caps.write and target.caps.persistent:
        try:
            sweep(target, 0, deadline=time.monotonic() + AUTO_SWEEP_BUDGET)
        except ImageStoreError as exc:
            log.warning("store %s: sweep before replicate failed: %s", target.name, exc)
    try:
        existing: ImageInfo | None = stat(target, new_name)
    except NotFound:
        existing = None
    if existing is not None:
        if _same_copy(state, loc, existing, want, src.size):
            log.info("store %s: %s is already replicated in %s", state.name, loc.image, target.name)
            return Replica(existing, None, existing=True, depth=depth(target, existing.location))
        raise AlreadyExists(f"an image with this id exists in store {target.name!r} and differs from the source",
                            store=target.name, image=new_name)
    extra = set(expected or {}) - set(src.checksums)
    if src.checksums and not extra:
        res = clone(state, loc, target, name=new_name, mode=mode, verify_source_first=True, progress=progress)
        chain = res.depth
        if independent and chain:
            chain = flatten(target, res.location)
        return Replica(stat(target, res.location), res.mode, depth=chain)
    if mode not in ("auto", "stream"):
        raise Unsupported(f"mode {mode} needs stored checksums of the source; use mode='stream'",
                          store=state.name, image=loc.image)
    with open_image(state, loc, verify=bool(want), expected=want or None, progress=progress) as reader:
        info = add(target, new_name, reader, src.size, format=format, expected=want or None)
    log.info("store %s: replicated %s to %s/%s (stream)", state.name, loc.image, target.name, new_name)
    return Replica(info, "stream")


def _same_copy(state: StoreState, loc: Location, existing: ImageInfo, want: Mapping[str, str], size: int) -> bool:
    """Whether an image already in the target holds the source's bytes."""
    if existing.size != size:
        return False
    common = {a: d for a, d in want.items() if a in existing.checksums}
    if common:
        return compare(common, existing.checksums) is None
    if not existing.checksums:
        return False
    algo = strongest(existing.checksums)  # no shared algorithm: hash the source the target's way
    try:
        with open_image(state, loc, expected={algo: existing.checksums[algo]}) as reader:
            for _ in reader:
                pass
    except ChecksumMismatch:
        return False
    return True
