"""Block tables beside their images.

A table (the BLAKE3 of each block, see :class:`~imagestore.engine.hashing.BlockTableHash`) is
kept by the facade as a companion object of the same store, through the driver's own writer, so
every driver stores it the same way and none knows of it. The image's metadata records the table's
descriptor, ``"<block size>:<BLAKE3 of the table>"``; the companion's name derives from the image
id and that descriptor (and ends with the image id), so it is found without a listing and
authenticated by the image's own metadata. The companion is written before its image is
published, removed after its image is deleted, copied by native clones, and swept when its image
is gone.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator

from ..errors import (AlreadyExists, BackendError, ChecksumMismatch, ImageStoreError,
                      InvalidLocation, NotFound)
from ..engine.hashing import BLOCK_ENTRY, BLOCK_SIZE, INTEGRITY, new_hash
from ..location import Location, validate_image_id
from ..results import ImageInfo, decode_metadata
from .guard import GuardedWriter
from .state import StoreState

__all__ = ["PREFIX", "block_size", "companion", "describe", "drop", "entries", "exists", "is_companion", "load",
           "release", "save", "sweep_orphans"]

log = logging.getLogger("imagestore")

PREFIX = "imagestore-blocks-"
"""Image ids starting with this name are block tables (reserved: see :mod:`.reserved`)."""
_OWNER_KEY = "integrity.blocks-of"
_WRITTEN_KEY = "integrity.blocks-written"


def _blake3(data: bytes) -> str:
    h = new_hash(INTEGRITY)
    h.update(data)
    return str(h.hexdigest())


def describe(table: bytes, block_size: int = BLOCK_SIZE) -> str:
    """The descriptor an image's metadata records for ``table``."""
    return f"{block_size}:{_blake3(table)}"


def companion(image_id: str, descriptor: str) -> str:
    """The id of the companion holding the table ``descriptor`` of ``image_id``: the reserved
    prefix, a hash of both, and the image id (its first 180 characters) for whoever lists the store."""
    tag = _blake3(f"{image_id}\n{descriptor}".encode())[:24]
    return f"{PREFIX}{tag}-{image_id[:180]}"


def is_companion(image_id: str) -> bool:
    """Whether an id listed in a store names a block table rather than an image."""
    return image_id.startswith(PREFIX)


def save(state: StoreState, image_id: str, table: bytes, descriptor: str) -> bool:
    """Write the companion before ``image_id`` is published; False when an identical one exists
    already (a concurrent add of the same bytes, or an earlier attempt killed before its publish),
    which is then shared."""
    cid = companion(image_id, descriptor)
    state.tables.put(descriptor, table)  # this process reads the image without fetching it
    try:
        raw = state.call("start upload", lambda: state.driver.open_writer(cid, len(table)), image_id)
    except AlreadyExists:  # left by an earlier attempt: the name says it holds this very table
        return False
    writer = GuardedWriter(raw, state.name, image_id)
    try:
        writer.write(memoryview(table))
        writer.commit({_OWNER_KEY: image_id, _WRITTEN_KEY: str(int(time.time()))})
    except AlreadyExists:
        writer.abort()
        return False
    except BaseException:
        writer.abort()
        raise
    return True


def drop(state: StoreState, image_id: str, descriptor: str) -> None:
    """Remove the companion of ``image_id`` (best effort: what is left, ``sweep`` removes)."""
    cloc = state.driver.location_for(companion(image_id, descriptor))
    try:
        state.call("delete", lambda: state.driver.delete(cloc), image_id)
    except NotFound:
        pass
    except ImageStoreError as exc:
        log.warning("store %s: removing the block table of %s failed (%s); sweep() removes it", state.name,
                    image_id, exc)


def exists(state: StoreState, image_id: str, descriptor: str) -> bool:
    """Whether the companion of ``image_id`` holding the table ``descriptor`` is there."""
    cloc = state.driver.location_for(companion(image_id, descriptor))
    try:
        state.call("stat", lambda: state.driver.stat(cloc), image_id)
    except NotFound:
        return False
    return True


def release(state: StoreState, image_id: str, descriptor: str) -> None:
    """After a failed publish: drop the companion this add wrote, unless the image that won the
    name records the same table (two adds of the same bytes share one)."""
    if not _still_owned(state, image_id, companion(image_id, descriptor)):
        drop(state, image_id, descriptor)


def entries(info: ImageInfo) -> int:
    """How many blocks the table of ``info`` has."""
    size = block_size(info)
    return -(-info.size // size) if info.size else 0


def block_size(info: ImageInfo) -> int:
    """The block size recorded in ``info``'s descriptor (the image must have one)."""
    assert info.block_table is not None
    return int(info.block_table.partition(":")[0])


def load(state: StoreState, loc: Location, info: ImageInfo) -> bytes:
    """The image's table, fetched once per descriptor and authenticated against it; ChecksumMismatch
    if it is not the one the image records, BackendError if its companion is gone."""
    descriptor = info.block_table
    assert descriptor is not None
    cached = state.tables.get(descriptor)
    if cached is not None:
        return cached
    want = entries(info) * BLOCK_ENTRY
    cloc = state.driver.location_for(companion(loc.image, descriptor))

    def fetch() -> bytes:
        reader = state.driver.open_reader(cloc, 0, want)
        try:
            parts, got = [], 0
            while got < want:
                data = reader.read(want - got)
                if not data:
                    break
                parts.append(data)
                got += len(data)
            return b"".join(parts)
        finally:
            reader.close()

    try:
        table = state.call("read block table", fetch, loc.image)
    except NotFound as exc:
        raise BackendError("the block table of this image is missing: read it whole (verified) or pass "
                           "verify=False", store=state.name, image=loc.image) from exc
    if len(table) != want or describe(table, block_size(info)) != descriptor:
        raise ChecksumMismatch("the block table of this image is not the one its metadata records",
                               algorithm=INTEGRITY, expected=descriptor.partition(":")[2],
                               actual=_blake3(table), store=state.name, image=loc.image)
    state.tables.put(descriptor, table)
    return table


def sweep_orphans(state: StoreState, older_than: float, names: Iterator[str] | list[str]) -> tuple[int, int]:
    """Remove companions older than ``older_than`` seconds whose image is gone or records another
    table (a crash between an image's delete and its table's); ``(removed, bytes)``."""
    removed = freed = 0
    now = time.time()
    for name, cloc, stored in state.stat_each(names, PREFIX):
        owner = stored.metadata.get(_OWNER_KEY, "")
        written = stored.metadata.get(_WRITTEN_KEY, "")
        if written.isascii() and written.isdigit() and now - int(written) < older_than:
            continue  # an add may be about to publish its image
        if _still_owned(state, owner, name):
            continue
        try:
            state.call("delete", lambda: state.driver.delete(cloc), name)
        except NotFound:
            continue
        removed += 1
        freed += stored.size
        log.info("store %s: swept the block table %s of the absent image %s", state.name, name, owner or "?")
    return removed, freed


def _still_owned(state: StoreState, owner: str, name: str) -> bool:
    """Whether ``owner`` exists and records the table ``name`` holds (True when the backend cannot
    tell: a table is removed only when its image is known to be gone or to record another)."""
    try:
        oloc = state.driver.location_for(validate_image_id(owner))
        stored = state.call("stat", lambda: state.driver.stat(oloc), owner)
    except (NotFound, InvalidLocation):
        return False
    except ImageStoreError:
        return True
    info = decode_metadata(oloc, stored.size, stored.metadata)
    return info.block_table is not None and companion(owner, info.block_table) == name
