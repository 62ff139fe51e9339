"""Backfill: an image stored without its BLAKE3 digest or block table (by an earlier version of
imagestore), or whose table object went missing or was damaged, gets them from a scrub that has
just read it whole and verified it against what it does record (its strongest checksum, or its
digest). The table object is written first, then the metadata names it (the order of an add);
a crash in between leaves a table whose image does not record it, which ``sweep`` removes."""

from __future__ import annotations

from ...engine.hashing import BLOCK_SIZE, INTEGRITY, BlockTableHash, new_hash
from ...errors import BackendError, ChecksumMismatch
from ...location import Location
from ...results import ImageInfo, encode_metadata
from ...spi.contract import Stored
from .. import tables
from ..state import StoreState

__all__ = ["DIGEST", "TABLE", "TABLE_OBJECT", "Rebuild", "lacks", "refusal"]

DIGEST = "digest"
"""The image records no BLAKE3 digest."""
TABLE = "block table"
"""The image (over one block) records no block table."""
TABLE_OBJECT = "table object"
"""The image records a block table whose companion is missing or is not that table."""


def lacks(state: StoreState, loc: Location, info: ImageInfo) -> tuple[str, ...]:
    """What of its integrity records the image lacks (empty: nothing)."""
    several = info.size > BLOCK_SIZE
    if info.integrity is None:
        return (DIGEST, TABLE) if several else (DIGEST,)
    if info.block_table is None:
        return (TABLE,) if several else ()
    try:
        tables.load(state, loc, info)
    except ChecksumMismatch:
        return (TABLE_OBJECT,)
    except BackendError:
        if not tables.exists(state, loc.image, info.block_table):
            return (TABLE_OBJECT,)
        raise
    return ()


def refusal(state: StoreState, missing: tuple[str, ...]) -> str | None:
    """Why this store cannot record what is missing (None: it can)."""
    if not state.caps.write:
        return "the store is read-only"
    if missing != (TABLE_OBJECT,) and not state.caps.metadata_update:
        return "the store cannot change an image's metadata"
    return None


class Rebuild:
    """The digest and block table of an image, computed as a verified whole read goes by."""

    def __init__(self, info: ImageInfo, missing: tuple[str, ...]) -> None:
        self.info, self.missing = info, missing
        self._whole = new_hash(INTEGRITY) if DIGEST in missing else None
        size = tables.block_size(info) if info.block_table is not None else BLOCK_SIZE
        self._blocks = BlockTableHash(size) if TABLE in missing or TABLE_OBJECT in missing else None

    def update(self, chunk: bytes | memoryview) -> None:
        """Feed the next verified bytes."""
        if self._whole is not None:
            self._whole.update(chunk)
        if self._blocks is not None:
            self._blocks.update(chunk)

    def record(self, state: StoreState, loc: Location, stored: Stored) -> tuple[str, ...]:
        """Store what was missing, once the read ended verified; BackendError if the image changed
        since ``stored`` was read (nothing is then recorded)."""
        table = self._blocks.table() if self._blocks is not None else None
        descriptor = tables.describe(table, self._blocks.block_size) if self._blocks is not None and table else None
        if self.missing == (TABLE_OBJECT,):
            if descriptor != self.info.block_table or table is None or descriptor is None:
                raise BackendError("the block table the image records is not the one of its verified bytes; "
                                   "its metadata was changed", store=state.name, image=loc.image)
            tables.drop(state, loc.image, descriptor)  # a damaged one holds the name
            if not tables.save(state, loc.image, table, descriptor):
                raise BackendError("the damaged block table object could not be removed, so it was not "
                                   "written again", store=state.name, image=loc.image)
            return self.missing
        digest = self._whole.hexdigest() if self._whole is not None else None
        created = tables.save(state, loc.image, table, descriptor) if table and descriptor else False
        try:
            now = state.call("stat", lambda: state.driver.stat(loc), loc.image)
            if now.version != stored.version or dict(now.metadata) != dict(stored.metadata):
                raise BackendError("the image changed while it was scrubbed; nothing was recorded",
                                   store=state.name, image=loc.image)
            changes = encode_metadata({}, None, None, digest, descriptor if TABLE in self.missing else None)
            state.call("update metadata", lambda: state.driver.update_metadata(loc, changes), loc.image)
        except BaseException:
            if created and descriptor is not None:
                tables.release(state, loc.image, descriptor)
            raise
        return self.missing
