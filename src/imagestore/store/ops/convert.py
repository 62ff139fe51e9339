"""``clone(format="raw")``: convert once, clone forever.

Copy-on-write clones need a raw parent (Nova and Cinder clone raw images only). The first raw
clone of a qcow2, vmdk, vhdx, vdi or vhd source into a store that clones copy-on-write converts
the source once into a **raw base** in that store (:mod:`..bases`), then clones the base; every
later one clones the same base in O(1). A raw source in another backend is copied to a base
the same way (no conversion), so its later clones are O(1) too. Into a store that cannot clone
copy-on-write, each clone is a converted copy.

Only verified, safe bits are converted: of a source with a block table the format inspector reads
what its parsers ask for (the head, the tables the header points at, the tail: the metadata, not
the data), block by block verified (no backing file, no external data file or extent, declared
format = detected), and only then does ``qemu-img`` run (:mod:`...engine.qemu`), reading the same
image through a read-only NBD export whose every read comes from blocks checked against the same
table (no local copy). A source without a table is spooled to a local scratch file
through a verified read (its strongest checksum) and inspected there. ``qemu-img``'s raw output
is streamed into the add pipeline (no local raw copy either). The base is added through the one
add pipeline (its BLAKE3 digest and block table, atomic publish: of two converters at once one
publishes, the other uses its base), sparse (zero blocks are not written)."""

from __future__ import annotations

import logging
import os
from dataclasses import replace

from ...config import StoreSettings
from ...engine import qemu
from ...engine.scratch import scratch
from ...engine.progress import Progress
from ...engine.ranges import VerifiedBlocks
from ...errors import AlreadyExists, BackendError, NotFound, UnsafeImage, Unsupported
from ...formats.inspector import inspect, inspect_at
from ...formats.verdict import FormatVerdict
from ...formats.policy import FormatPolicy
from ...location import Location
from ...results import CloneCheck, CloneRefusal, ImageInfo
from .. import bases
from ..state import StoreState
from .add import store_stream
from .read import blockwise, download_to, open_image, stat, verified_blocks

__all__ = ["CONVERTIBLE", "converted_copy", "ensure_base", "plan_raw"]

log = logging.getLogger("imagestore")

CONVERTIBLE = frozenset(qemu.DRIVERS)
"""Formats ``clone(format="raw")`` converts."""
_SAFE = FormatPolicy(allowed_formats=CONVERTIBLE)


def plan_raw(state: StoreState, info: ImageInfo, target: StoreState, mode: str) -> CloneCheck:
    """What ``clone(format="raw")`` of ``info`` into ``target`` would do (``mode`` is not "auto"
    only when the caller asked for one)."""
    fmt = info.format or "unknown"
    if info.format != "raw" and info.format not in CONVERTIBLE:
        return CloneCheck(False, None, f"a {fmt} image cannot be converted to raw (convertible: "
                                       f"{', '.join(sorted(CONVERTIBLE))})", CloneRefusal.NOT_CONVERTIBLE)
    if info.format != "raw":
        try:
            qemu.qemu_img()
        except Unsupported as exc:
            return CloneCheck(False, None, str(exc), CloneRefusal.NOT_CONVERTIBLE)
    name = bases.base_id(info)
    if name is None:
        return CloneCheck(False, None, "the image records no digest or checksum to verify it by before it is "
                                       "converted", CloneRefusal.NO_CHECKSUM)
    what = f"convert {fmt} to raw" if info.format != "raw" else "copy the raw image"
    if target.caps.cow_clone and mode in ("auto", "cow"):
        if _existing_base(target, name) is not None:
            return CloneCheck(True, "cow", f"clone the raw base of this {fmt} image copy-on-write "
                                           f"({target.driver.scheme}; converted before)")
        return CloneCheck(True, "cow", f"{what} into a base once, then clone it copy-on-write "
                                       f"({target.driver.scheme})")
    if mode in ("auto", "stream"):
        return CloneCheck(True, "stream", f"{what} (target store {target.name!r} has no copy-on-write clone: "
                                          "every clone is a converted copy)", CloneRefusal.NO_NATIVE_CLONE)
    return CloneCheck(False, None, f"{mode} is not available for a raw clone into {target.name!r}",
                      CloneRefusal.MODE_UNAVAILABLE)


def converted_copy(state: StoreState, loc: Location, info: ImageInfo, target: StoreState, new_name: str, *,
                   progress: Progress | None = None) -> ImageInfo:
    """The raw clone into a store without copy-on-write clones: a converted copy named ``new_name``."""
    made = _convert(state, loc, info, target, new_name, base=False, progress=progress)
    log.info("store %s: converted %s (%s) to raw as %s/%s", state.name, loc.image, info.format, target.name, new_name)
    return made


def ensure_base(state: StoreState, loc: Location, info: ImageInfo, target: StoreState, *,
                progress: Progress | None = None) -> tuple[ImageInfo, bool]:
    """The raw base of ``info`` in ``target``, made now if there is none; and whether this call made it
    (False also when a concurrent converter published it first: this one's work is dropped)."""
    name = bases.base_id(info)
    assert name is not None
    found = _existing_base(target, name)
    if found is not None:
        return found, False
    try:
        made = _convert(state, loc, info, target, name, base=True, progress=progress)
    except AlreadyExists:
        found = _existing_base(target, name)
        if found is None:
            raise BackendError("a raw base appeared and went while this clone was converting its source",
                               store=target.name, image=name) from None
        return found, False
    log.info("store %s: converted %s (%s) into the raw base %s of store %s", state.name, loc.image, info.format,
             name, target.name)
    return made, True


def _existing_base(target: StoreState, name: str) -> ImageInfo | None:
    """The base ``name`` of ``target`` if it is there (its name is its source's digest: a base found
    under it is used as it is)."""
    try:
        found = stat(target, target.driver.location_for(name))
    except NotFound:
        return None
    if found.format != "raw":
        raise BackendError(f"the raw base {name} is not raw ({found.format}); delete it", store=target.name,
                           image=name)
    return found


def _convert(state: StoreState, loc: Location, info: ImageInfo, target: StoreState, name: str, *,
             base: bool, progress: Progress | None) -> ImageInfo:
    """Read the source verified, inspect it, convert it, and add the raw result as ``name``."""
    digest = bases.source_digest(info)
    assert digest is not None
    target.require_write(name)
    extra = {bases.SOURCE_LOCATION: str(loc.with_store(state.name)),
             bases.SOURCE_FORMAT: info.format or "raw", bases.SOURCE_DIGEST: ":".join(digest)} if base else {}
    # a base is the library's own: its BLAKE3 digest and block table, not the store's glance checksums
    settings = replace(target.settings, checksums=()) if base else target.settings
    if info.format == "raw":  # a copy, verified as it is read
        with open_image(state, loc, verify=True, progress=progress) as reader:
            return store_stream(target, name, reader, info.size, settings, target.limit(), format="raw", extra=extra)
    if blockwise(info) and state.caps.range_read:
        # the inspector reads what the parsers ask for (head, tables, tail), then qemu-img reads the
        # image: every byte of both from blocks checked against the same table, no local copy made
        with verified_blocks(state, loc, info) as blocks, scratch(0, store=state.name, image=loc.image) as work:
            verdict = inspect_at(blocks.pread, info.size)
            return _raw_base(state, loc, info, verdict, blocks, work, target, name, settings, extra)
    with scratch(info.size, store=state.name, image=loc.image) as work:
        spool = os.path.join(work, "source")
        # the bytes qemu-img reads: verified; a scratch file (no fsync), sparse where the source has zeros
        download_to(state, loc, spool, verify=True, progress=progress, durable=False)
        return _raw_base(state, loc, info, inspect(spool), spool, work, target, name, settings, extra)


def _raw_base(state: StoreState, loc: Location, info: ImageInfo, verdict: FormatVerdict, source: str | VerifiedBlocks,
              work: str, target: StoreState, name: str, settings: StoreSettings, extra: dict[str, str]) -> ImageInfo:
    """Refuse an unsafe source (its ``verdict``), else convert ``source`` and add the raw disk as ``name``."""
    _SAFE.check(verdict, declared=info.format, store=state.name, image=loc.image)
    if info.format is None or verdict.virtual_size is None:
        raise UnsafeImage("the image's virtual size could not be read", format=info.format,
                          reasons=["no virtual size in the header"], store=state.name, image=loc.image)
    target.limit().check(verdict.virtual_size, "raw size", store=target.name, image=name)
    # qemu-img's raw output goes straight into the add pipeline: no local raw copy is written
    with qemu.raw_stream(source, info.format, verdict.virtual_size, work, store=state.name,
                         image=loc.image) as raw:
        return store_stream(target, name, raw, verdict.virtual_size, settings, target.limit(), format="raw",
                            extra=extra)
