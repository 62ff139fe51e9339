"""Clones: ``can_clone`` (the driver's plan, refined by what the stores claim and the target's
policy), ``clone`` (native cow/server copy, else a verified stream through ``add``), and the
clone chains a copy-on-write clone makes (``depth``, ``flatten``)."""

from __future__ import annotations

import logging
from dataclasses import replace

from ...spi.contract import ClonePlan, CloneRequest
from ...errors import BackendError, ImageStoreError, InvalidArgument, UnsafeImage, Unsupported
from ...location import Location, validate_image_id
from ...engine.pipeline import check_options
from ...engine.progress import Progress
from ...results import CloneCheck, CloneRefusal, CloneResult, ImageInfo, encode_metadata
from ..args import MODES, CloneModeArg, is_count
from .. import reserved, tables
from ..state import StoreState
from . import convert
from .add import add
from .finish import tables_first
from .delete import delete
from .read import open_image, stat, verify_source, version

__all__ = ["can_clone", "clone", "depth", "flatten"]

log = logging.getLogger("imagestore")


def can_clone(state: StoreState, location: Location | str, to: object = None,
              mode: CloneModeArg = "auto", format: str | None = None) -> CloneCheck:
    """Whether ``clone(location, to, mode=mode, format=format)`` would work, in which mode, and why."""
    loc = state.location(location)
    target = state.target(to, loc.image)
    return _decide(state, loc, target, mode, format)[0]


def _decide(state: StoreState, loc: Location, target: StoreState, mode: CloneModeArg,
            format: str | None) -> tuple[CloneCheck, ImageInfo | None]:
    """The clone's plan, and the source's info when it goes through a raw base or conversion."""
    if mode not in MODES:
        raise InvalidArgument(f"mode must be one of {', '.join(MODES)}, not {mode!r}", store=state.name,
                              image=loc.image)
    if format not in (None, "raw"):
        raise InvalidArgument(f"format must be None or 'raw', not {format!r}", store=state.name, image=loc.image)
    plain = _plain(state, loc, target, mode)
    if not target.caps.write or not (format == "raw" or (mode == "auto" and target.settings.policy.cow_requires_raw)):
        return plain, None
    info = stat(state, loc)
    if info.format == "raw" and (plain.mode == "cow" or not target.caps.cow_clone):
        return plain, None  # a raw image clones as it is
    if format is None and not (target.caps.cow_clone and info.format in convert.CONVERTIBLE):
        return plain, None
    return convert.plan_raw(state, info, target, mode), info


def _plain(state: StoreState, loc: Location, target: StoreState, mode: CloneModeArg) -> CloneCheck:
    """The plan of a clone of the image as it is (no conversion)."""
    if not target.caps.write:
        return CloneCheck(False, None, f"target store {target.name!r} is read-only",
                          CloneRefusal.READ_ONLY_TARGET)
    plan = state.call("plan clone", lambda: state.driver.plan_clone(loc, target.driver), loc.image)
    claimed = {"cow": state.caps.cow_clone, "server_copy": state.caps.server_copy}
    if plan.mode is not None and plan.mode != "stream" and not claimed[plan.mode]:
        plan = replace(plan, mode=None, reason=f"store {state.name!r} does not claim {plan.mode}",
                       code=CloneRefusal.NOT_CLAIMED)
    plan = _refine_plan(state, loc, target, plan)
    code = (plan.code or CloneRefusal.NO_NATIVE_CLONE) if plan.mode is None else None
    if mode == "stream" or (mode == "auto" and plan.mode is None):
        reason = "verified stream copy" + (f" ({plan.reason})" if plan.mode is None else "")
        return CloneCheck(True, "stream", reason, code)
    if mode == "auto" or plan.mode == mode:
        return CloneCheck(True, plan.mode, plan.reason)
    return CloneCheck(False, None, plan.reason if plan.mode is None
                      else f"{mode} is not available; {plan.mode} is ({plan.reason})",
                      code if plan.mode is None else CloneRefusal.MODE_UNAVAILABLE)


def clone(state: StoreState, location: Location | str, to: object = None, *, name: str | None = None,
          mode: CloneModeArg = "auto", size: int | None = None, verify_source_first: bool = False,
          progress: Progress | None = None, format: str | None = None) -> CloneResult:
    """Copy an image into ``to`` (default: this store) in the cheapest mode that works
    (see :meth:`imagestore.Store.clone`)."""
    loc = state.location(location)
    target = state.target(to, loc.image)
    if size is not None and not is_count(size):
        raise InvalidArgument(f"size must be a non-negative int or None, not {size!r}", store=state.name,
                              image=loc.image)
    new_name = validate_image_id(name or loc.image)
    reserved.refuse(new_name, target.name)
    check_options(store=state.name, image=loc.image, progress=progress)
    target.require_write(new_name)
    info = stat(state, loc)
    check, via_raw = _decide(state, loc, target, mode, format)
    if not check.possible or check.mode is None:
        raise _refused(check, fmt=info.format, store=target.name, image=new_name)
    if via_raw is not None:
        return _clone_raw(state, loc, via_raw, target, new_name, check, size=size, progress=progress)
    if size is not None and check.mode != "cow":
        raise Unsupported("a clone can be resized only in cow mode", store=state.name, image=loc.image)
    limit = target.limit()
    limit.check(max(info.size, size or 0), "clone", store=target.name, image=new_name)
    if check.mode == "stream":  # checked by the target's add itself
        with open_image(state, loc, verify=True, progress=progress) as reader:
            new = add(target, new_name, reader, info.size, format=info.format, expected=dict(info.checksums))
        return CloneResult(new.location, "stream")
    target.settings.policy.check_clone(info.format, cow=check.mode == "cow",
                                       accept_unknown=not target.settings.inspect,
                                       store=target.name, image=new_name)
    metadata = _clone_metadata(info, size, store=state.name, image=loc.image)
    token = None
    if verify_source_first:
        verify_source(state, loc, progress=progress)
        token = version(state, loc)
    request = CloneRequest(name=new_name, mode=check.mode, metadata=metadata, size=size)
    descriptor = info.block_table if size is None or size == info.size else None
    table = tables.load(state, loc, info) if descriptor is not None else None
    with tables_first(target, new_name, table, descriptor):  # the clone shares the source's bytes
        new_loc = state.call("clone", lambda: state.driver.clone(loc, target.driver, request), loc.image,
                             retry=False).with_store(target.name)
    if verify_source_first:
        _check_unchanged(state, loc, token, target, new_loc)
    chain = depth(target, new_loc) if check.mode == "cow" else 0
    if progress is not None:
        progress(info.size, info.size)
    log.info("store %s: cloned %s to %s/%s (%s, depth %d)", state.name, loc.image, target.name, new_name,
             check.mode, chain)
    return CloneResult(new_loc, check.mode, chain)


def _clone_raw(state: StoreState, loc: Location, info: ImageInfo, target: StoreState, new_name: str,
               check: CloneCheck, *, size: int | None, progress: Progress | None) -> CloneResult:
    """A raw clone: a copy-on-write clone of the source's raw base (made now if needed), or where the
    target cannot clone copy-on-write, a converted copy."""
    if check.mode == "stream":
        if size is not None:
            raise Unsupported("a converted copy cannot be resized; clone into a copy-on-write store",
                              store=target.name, image=new_name)
        made = convert.converted_copy(state, loc, info, target, new_name, progress=progress)
        return CloneResult(made.location, "stream", converted=True)
    base, converted = convert.ensure_base(state, loc, info, target, progress=progress)
    cow = clone(target, base.location, target, name=new_name, mode="cow", size=size)
    return CloneResult(cow.location, "cow", cow.depth, converted=converted, base=base.location)


def depth(state: StoreState, location: Location | str) -> int:
    """How many ancestors the image's data depends on (0: an independent image)."""
    loc = state.location(location)
    return state.call("depth", lambda: state.driver.clone_depth(loc), loc.image)


def flatten(state: StoreState, location: Location | str) -> int:
    """Copy the ancestors' data into the image so it depends on none; returns the new depth (0)."""
    loc = state.location(location)
    state.require_write(loc.image)
    state.call("flatten", lambda: state.driver.flatten(loc), loc.image)
    log.info("store %s: flattened %s", state.name, loc.image)
    return depth(state, loc)


def _refine_plan(state: StoreState, loc: Location, target: StoreState, plan: ClonePlan) -> ClonePlan:
    """Apply the target's ``cow_requires_raw`` to a driver's plan (Nova and Cinder clone raw only)."""
    if plan.mode != "cow" or not target.settings.policy.cow_requires_raw:
        return plan
    fmt = stat(state, loc).format
    if fmt == "raw":
        return plan
    return ClonePlan(None, f"target store {target.name!r} clones raw images only (cow_requires_raw); "
                           f"the image is {fmt or 'of unknown format'}", CloneRefusal.FORMAT_NOT_RAW)


def _refused(check: CloneCheck, *, fmt: str | None, store: str, image: str) -> ImageStoreError:
    """The error for a clone ``can_clone`` refused: UnsafeImage for a policy refusal."""
    if check.code is CloneRefusal.FORMAT_NOT_RAW:
        return UnsafeImage("clone refused", reasons=[check.reason], format=fmt, store=store, image=image)
    return Unsupported(f"cannot clone: {check.reason}", store=store, image=image)


def _clone_metadata(info: ImageInfo, size: int | None, *, store: str, image: str) -> dict[str, str]:
    """Metadata a native clone carries: the source's, except a grown clone has other bytes
    (zeros appended), so it keeps no checksum and its virtual size is the new size."""
    if size is None or size == info.size:
        return encode_metadata(info.checksums, info.format, info.virtual_size, info.integrity, info.block_table)
    if info.format not in ("raw", None):
        raise Unsupported(f"only raw images can be grown by a clone; this one is {info.format}",
                          store=store, image=image)
    return encode_metadata({}, info.format, size if info.format == "raw" else None)


def _check_unchanged(state: StoreState, loc: Location, token: str | None, target: StoreState,
                     made: Location) -> None:
    """After a clone from a verified source: the source must still be the verified version."""
    if token is None or version(state, loc) == token:
        return
    try:
        delete(target, made)
    except ImageStoreError as exc:
        log.warning("store %s: removing clone %s of a changed source failed: %s", target.name, made, exc)
    raise BackendError("the source changed between its verification and the clone; nothing was kept",
                       store=state.name, image=loc.image)
