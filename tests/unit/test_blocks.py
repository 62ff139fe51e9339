"""Block tables and block-verified ranges: the table add records is the BLAKE3 of each block, a
range reads the whole blocks around it and hands out exactly its bytes, each block checked before
any of its bytes leave, whatever the range and however the caller reads."""

from __future__ import annotations

import io

import pytest
from blake3 import blake3
from hypothesis import given, settings
from hypothesis import strategies as st

import imagestore
from imagestore import ChecksumMismatch, InvalidArgument, Unsupported
from imagestore.drivers.memory import _namespace
from imagestore.engine.blocks import BlockCheck, BlockSpan
from imagestore.engine.hashing import BLOCK_ENTRY, BlockTableHash
from imagestore.engine.reader import ImageReader
from imagestore.store import tables

BLOCK = 64


def _store(namespace: str) -> imagestore.Store:
    return imagestore.open_store({"driver": "memory", "namespace": namespace}, "t")


def _table(data: bytes, block: int = BLOCK) -> bytes:
    return b"".join(blake3(data[i:i + block]).digest(BLOCK_ENTRY) for i in range(0, len(data), block))


def _reader(data: bytes, start: int, count: int, table: bytes, chunk: int = 7) -> ImageReader:
    span = BlockSpan(BLOCK, len(data), start, start + count)
    check = BlockCheck(span, table, BLOCK_ENTRY, store="s", image="i")

    def opener(at: int, n: int) -> io.BytesIO:
        return io.BytesIO(data[at:at + n])

    return ImageReader(opener, offset=start, size=count, chunk_size=chunk, expected=None, progress=None,
                       blocks=check, store="s", image="i")


@settings(max_examples=60, deadline=None)
@given(st.binary(max_size=700), st.lists(st.integers(1, 300), max_size=40))
def test_the_table_is_the_digest_of_each_block_however_it_is_fed(data: bytes, cuts: list[int]) -> None:
    h = BlockTableHash(BLOCK)
    at = 0
    for n in cuts + [len(data)]:
        h.update(data[at:at + n])
        at += n
    assert h.table() == _table(data) and h.hexdigest() == _table(data).hex()


@pytest.mark.parametrize("start,end,offset,stop", [(0, 0, 0, 0), (0, 1, 0, 64), (63, 65, 0, 128),
                                                   (64, 128, 64, 128), (130, 200, 128, 200), (199, 200, 192, 200)])
def test_a_span_covers_the_whole_blocks_a_range_touches(start: int, end: int, offset: int, stop: int) -> None:
    span = BlockSpan(BLOCK, 200, start, end)
    assert (span.offset, span.stop) == (offset, stop)


@settings(max_examples=80, deadline=None)
@given(st.binary(min_size=1, max_size=600), st.data())
def test_a_range_returns_exactly_its_bytes(data: bytes, draw: st.DataObject) -> None:
    start = draw.draw(st.integers(0, len(data)))
    count = draw.draw(st.integers(0, len(data) - start))
    how = draw.draw(st.sampled_from(["read", "iter", "small reads"]))
    with _reader(data, start, count, _table(data)) as reader:
        if how == "read":
            got = reader.read()
        elif how == "iter":
            got = b"".join(reader)
        else:
            parts = []
            while part := reader.read(5):
                parts.append(part)
            got = b"".join(parts)
    assert got == data[start:start + count]


@settings(max_examples=80, deadline=None)
@given(st.binary(min_size=BLOCK * 3, max_size=BLOCK * 6), st.data())
def test_no_byte_of_a_changed_block_leaves_the_reader(data: bytes, draw: st.DataObject) -> None:
    bad = draw.draw(st.integers(0, len(data) - 1))
    start = draw.draw(st.integers(0, bad))
    end = draw.draw(st.integers(bad + 1, len(data)))
    stored = bytearray(data)
    stored[bad] ^= 0x01
    got = bytearray()
    with pytest.raises(ChecksumMismatch) as err, _reader(bytes(stored), start, end - start, _table(data)) as reader:
        while part := reader.read(draw.draw(st.integers(1, 100))):
            got += part
    block = bad // BLOCK
    assert f"block {block} (bytes {block * BLOCK}-" in str(err.value)
    assert bytes(got) == data[start:max(start, block * BLOCK)]  # every block before it, nothing of it


def test_a_table_that_is_not_the_recorded_one_is_refused() -> None:
    store = _store("blocks-unit-refused")
    data = bytes(range(256)) * 9000  # over two blocks
    info = store.add("img", data, len(data))
    assert info.block_table is not None and info.block_table.startswith(f"{1 << 20}:")
    name = tables.companion("img", info.block_table)
    assert name.startswith(tables.PREFIX) and name.endswith("-img")
    images = _namespace("blocks-unit-refused").images
    stored, meta, written = images[name]
    images[name] = (bytes([stored[0] ^ 1]) + stored[1:], meta, written)
    fresh = _store("blocks-unit-refused")
    with pytest.raises(ChecksumMismatch) as err:
        fresh.get(info.location, 10, 10)
    assert "block table" in str(err.value)
    del images[name]
    with pytest.raises(imagestore.BackendError) as gone:
        _store("blocks-unit-refused").get(
            info.location, 10, 10)
    assert "block table" in str(gone.value) and "verify=False" in str(gone.value)
    assert fresh.get(info.location, 10, 10, verify=False) == data[10:20]
    assert fresh.get(info.location) == data  # a whole read needs no table


def test_expected_is_for_whole_reads_and_reserved_ids_are_refused() -> None:
    store = _store("blocks-unit-reserved")
    info = store.add("img", b"x" * 3000, 3000)
    with pytest.raises(Unsupported):
        store.open(info.location, 1, 2, expected={"md5": info.checksums["md5"]})
    for op in (lambda: store.add(tables.PREFIX + "x", b"", 0),
               lambda: store.clone(info.location, name=tables.PREFIX + "y")):
        with pytest.raises(InvalidArgument) as err:
            op()
        assert "reserved" in str(err.value)


def test_a_failed_add_leaves_no_table_and_sweep_removes_orphans() -> None:
    store = _store("blocks-unit-sweep")
    data = b"y" * (3 << 20)
    with pytest.raises(ChecksumMismatch):
        store.add("img", data, len(data), expected={"md5": "0" * 32})
    assert list(store._driver.list_images()) == []
    info = store.add("img", data, len(data))
    assert info.block_table is not None
    name = tables.companion("img", info.block_table)
    del _namespace("blocks-unit-sweep").images["img"]  # a crash between the two deletes
    assert store.sweep(3600).removed == 0  # young: an add may be about to publish its image
    report = store.sweep(0)
    assert report.removed == 1 and report.bytes_freed == 3 * BLOCK_ENTRY
    assert name not in store._driver.list_images()
