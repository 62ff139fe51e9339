"""Reading: ``stat``, ``open`` (verified, resuming, ranged: verified block by block), ``get``,
``download_to``, and ``verify_source`` (read once, checked against the stored checksum, remembered
by version)."""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Mapping

from ...spi.contract import Reader
from ...errors import BackendError, ChecksumMismatch, InvalidArgument, Unsupported
from ...engine.blocks import BlockCheck, BlockSpan
from ...engine.hashing import BLOCK_ENTRY, BLOCK_SIZE, INTEGRITY, strongest, validate_digests
from ...location import Location
from ...engine.pipeline import check_options
from ...engine.progress import Progress
from ...engine.ranges import VerifiedBlocks
from ...engine.reader import ImageReader, write_atomically
from ...results import ImageInfo, decode_metadata
from ...spi.retry import translate
from ..args import is_count
from .. import tables
from ..state import StoreState

__all__ = ["blockwise", "download_to", "get", "open_image", "stat", "verified_blocks", "verify_source", "version"]

log = logging.getLogger("imagestore")


def stat(state: StoreState, location: Location | str) -> ImageInfo:
    """Size, checksums and format of a stored image; NotFound if absent."""
    loc = state.location(location)
    stored = state.call("stat", lambda: state.driver.stat(loc), loc.image)
    return decode_metadata(loc, stored.size, stored.metadata)


def open_image(state: StoreState, location: Location | str, offset: int = 0, length: int | None = None, *,
               verify: bool | None = None, expected: Mapping[str, str] | None = None,
               progress: Progress | None = None) -> ImageReader:
    """A reader over the image or a range of it (see :meth:`imagestore.Store.open`)."""
    loc = state.location(location)
    if not is_count(offset) or (length is not None and not is_count(length)):
        raise InvalidArgument(f"offset and length must be non-negative ints, not {offset!r} and {length!r}",
                              store=state.name, image=loc.image)
    validate_digests(expected, store=state.name, image=loc.image)
    check_options(store=state.name, image=loc.image, progress=progress)
    info = stat(state, loc)
    whole = offset == 0 and (length is None or length >= info.size)
    if not whole and expected:
        raise Unsupported("expected= checks whole reads; a ranged read is verified with the image's block table",
                          store=state.name, image=loc.image)
    if verify is None:
        verify = state.settings.verify_reads or bool(expected) if whole else \
            state.settings.verify_reads and blockwise(info)
    if not whole and not state.caps.range_read:
        raise Unsupported("this store cannot read ranges", store=state.name, image=loc.image)
    if verify and not whole and not blockwise(info):
        raise Unsupported("this image has no block table to verify a range with (it was stored without one); "
                          "read it whole or pass verify=False", store=state.name, image=loc.image)
    start = min(offset, info.size)
    count = max(0, info.size - start) if length is None else max(0, min(length, info.size - start))
    blocks = None
    if verify and not whole:
        blocks = _block_check(state, loc, info, start, count)
    elif verify and not expected and info.block_table is not None:
        blocks = _whole_by_blocks(state, loc, info, count)
    want = expected_for(info, expected) if verify and blocks is None else None
    if verify and blocks is None and not want:
        raise Unsupported("no checksum is stored for this image; pass expected=", store=state.name,
                          image=loc.image)

    return _reader(state, loc, start, count, expected=want, progress=progress, blocks=blocks)


def _reader(state: StoreState, loc: Location, start: int, count: int, *, expected: Mapping[str, str] | None,
            progress: Progress | None, blocks: BlockCheck | None) -> ImageReader:
    def opener(at: int, n: int) -> Reader:
        return state.call("open", lambda: state.driver.open_reader(loc, at, n), loc.image)

    return ImageReader(opener, offset=start, size=count, chunk_size=state.settings.chunk_size, expected=expected,
                       progress=progress, store=state.name, image=loc.image, policy=state.settings.retry,
                       blocks=blocks)


def verified_blocks(state: StoreState, loc: Location, info: ImageInfo) -> VerifiedBlocks:
    """An image that can be verified by block (:func:`blockwise`) read by range, every block checked
    against the one table fetched now (so every read sees the same bytes, whatever happens to the
    image meanwhile): a converter's input, inspected and converted from the same bytes."""
    check = _pinned(state, loc, info)
    bs = check(0, 0).span.block_size

    def fetch(first: int, count: int) -> list[bytes]:
        start, end = first * bs, min(info.size, (first + count) * bs)
        with _reader(state, loc, start, end - start, expected=None, progress=None, blocks=check(start, end)) as r:
            return list(r)  # a whole-block range comes out block by block, each verified: no join, no copy

    return VerifiedBlocks(fetch, bs, info.size)


def blockwise(info: ImageInfo) -> bool:
    """Whether a range of the image can be verified: by its block table, or (an image of one block)
    by its whole digest."""
    return info.block_table is not None or (info.integrity is not None and info.size <= BLOCK_SIZE)


def _whole_by_blocks(state: StoreState, loc: Location, info: ImageInfo, count: int) -> BlockCheck | None:
    """A whole read checked block by block, so that no byte leaves the reader unverified; None
    (the whole digest at the end) when the table cannot be had: a whole read does not need it."""
    try:
        return _block_check(state, loc, info, 0, count)
    except (BackendError, ChecksumMismatch) as exc:
        log.warning("store %s: %s; %s is verified against its whole digest instead", state.name, exc, loc.image)
        return None


def _block_check(state: StoreState, loc: Location, info: ImageInfo, start: int, count: int) -> BlockCheck:
    """The block-by-block check of ``count`` bytes from ``start``: against the image's table, or the
    whole image against its digest when it is one block."""
    return _pinned(state, loc, info)(start, start + count)


def _pinned(state: StoreState, loc: Location, info: ImageInfo) -> Callable[[int, int], BlockCheck]:
    """Checks of ranges ``[start, end)`` of the image, all against the table (or the one-block
    image's whole digest) fetched now."""
    if info.block_table is not None:
        digests, entry, block_size = tables.load(state, loc, info), BLOCK_ENTRY, tables.block_size(info)
    else:
        assert info.integrity is not None
        digests, entry, block_size = bytes.fromhex(info.integrity), len(info.integrity) // 2, max(info.size, 1)

    def check(start: int, end: int) -> BlockCheck:
        return BlockCheck(BlockSpan(block_size, info.size, start, end), digests, entry, store=state.name,
                          image=loc.image)

    return check


def get(state: StoreState, location: Location | str, offset: int = 0, length: int | None = None, *,
        verify: bool | None = None) -> bytes:
    """The image's bytes (or a range) in memory; for small images and tests."""
    with open_image(state, location, offset, length, verify=verify) as reader:
        return reader.read()


def download_to(state: StoreState, location: Location | str, path: str | os.PathLike[str], *, verify: bool = True,
                progress: Progress | None = None, durable: bool = True) -> ImageInfo:
    """Write the image to ``path`` atomically (temporary file, fsync unless not ``durable``, rename),
    verified, sparse where it holds zeros."""
    loc = state.location(location)
    if not isinstance(path, (str, os.PathLike)):
        raise InvalidArgument(f"path must be a file path, not {type(path).__name__}", store=state.name,
                              image=loc.image)
    info = stat(state, loc)
    with open_image(state, loc, verify=verify, progress=progress) as reader:
        try:
            write_atomically(reader, path, durable=durable)
        except OSError as exc:  # the local destination, not the backend
            raise translate(exc, f"write {os.fspath(path)}", store=state.name, image=loc.image) from exc
    return info


def version(state: StoreState, loc: Location) -> str | None:
    """The driver's version token of the image (None when the driver has none)."""
    return state.call("stat", lambda: state.driver.stat(loc), loc.image).version


def verify_source(state: StoreState, location: Location | str, *, progress: Progress | None = None) -> bool:
    """Read the image once and check it against its stored checksum, unless this version was
    verified already (see :meth:`imagestore.Store.verify_source`); True when it read the image."""
    loc = state.location(location)
    token = version(state, loc)
    key = str(loc)
    if token is not None and state.memo.verified(key, token):
        return False
    with open_image(state, loc, verify=True, progress=progress) as reader:
        for _ in reader:
            pass
    if token is not None:
        if version(state, loc) != token:
            raise BackendError("the image changed while it was verified", store=state.name, image=loc.image)
        state.memo.remember(key, token)
    log.info("store %s: verified %s (version %s)", state.name, loc.image, token)
    return True


def expected_for(info: ImageInfo, expected: Mapping[str, str] | None) -> dict[str, str]:
    """What to verify a read against: the caller's digests, else the BLAKE3 integrity digest,
    else (an image stored without one) the strongest stored checksum."""
    if expected:
        return dict(expected)
    if info.integrity is not None:
        return {INTEGRITY: info.integrity}
    if not info.checksums:
        return {}
    algo = strongest(info.checksums)
    return {algo: info.checksums[algo]}
