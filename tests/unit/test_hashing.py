"""The parallel hasher and buffer ring give the digests hashlib (and blake3) give; the reader checks\nthem before it hands out an image's last bytes."""

from __future__ import annotations

import hashlib
import io
import os

import pytest
from blake3 import blake3
from hypothesis import given, settings
from hypothesis import strategies as st

import imagestore
from imagestore import ChecksumMismatch, ConfigError, SizeMismatch
from imagestore.drivers.memory import _namespace
from imagestore.engine.hashing import (BLOCK_ENTRY, BlockTableHash, BufferRing, ParallelHasher, strongest,
                                       validate_algorithms)
from imagestore.engine.reader import ImageReader


@settings(max_examples=40, deadline=None)
@given(st.lists(st.binary(max_size=5000), max_size=30), st.sampled_from([1, 2, 4]))
def test_parallel_digests_match_hashlib(parts: list[bytes], slots: int) -> None:
    with ParallelHasher(("md5", "sha512", "sha256")) as hasher:
        ring = BufferRing(hasher, 5000, slots)
        for part in parts:
            slot = ring.next()
            buf = ring.buffer(slot)
            buf[: len(part)] = part
            ring.hash(slot, buf[: len(part)])
        got = hasher.digests()
    whole = b"".join(parts)
    assert got == {a: hashlib.new(a, whole).hexdigest() for a in ("md5", "sha512", "sha256")}


def test_ring_reuses_buffers_only_when_hashed() -> None:
    data = [os.urandom(1 << 20) for _ in range(12)]
    with ParallelHasher(("sha512",)) as hasher:
        ring = BufferRing(hasher, 1 << 20, 2)
        for block in data:
            slot = ring.next()
            buf = ring.buffer(slot)
            buf[:] = block  # would corrupt the digest if the slot were still being hashed
            ring.hash(slot, buf)
        assert hasher.digests()["sha512"] == hashlib.sha512(b"".join(data)).hexdigest()


def test_algorithms_validated() -> None:
    assert validate_algorithms(["sha256", "md5"]) == ("sha256", "md5")
    for bad in ([], ["nope"], ["md5", "md5"], ["shake_128"]):
        with pytest.raises(ConfigError):
            validate_algorithms(bad)
    assert strongest(["md5", "sha256"]) == "sha256"
    assert strongest(["md5", "sha512"]) == "sha512"


def test_blake3_runs_beside_hashlib_and_spread_over_cores_gives_the_same_digest() -> None:
    data = os.urandom(3 << 20)
    for parallel in (False, True):
        with ParallelHasher(("md5", "blake3"), parallel=parallel) as hasher:
            hasher.submit(0, data[: 1 << 20])
            hasher.submit(1, data[1 << 20:])
            assert hasher.digests() == {"md5": hashlib.md5(data).hexdigest(), "blake3": blake3(data).hexdigest()}


def test_an_image_stored_without_a_blake3_digest_is_verified_with_its_strongest_checksum() -> None:
    """Images written before the digest (or by glance_store's drivers) keep working: sha512 checks them."""
    store = imagestore.open_store({"driver": "memory", "namespace": f"legacy-{os.getpid()}"}, "legacy")
    data = os.urandom(100_000)
    info = store.add("old", data)
    images = _namespace(f"legacy-{os.getpid()}").images
    stored, meta, written = images["old"]
    meta = {k: v for k, v in meta.items() if not k.startswith("integrity.")}
    images["old"] = (stored, meta, written)
    assert store.stat(info.location).integrity is None
    assert store.get(info.location) == data
    images["old"] = (b"X" + stored[1:], meta, written)
    with pytest.raises(ChecksumMismatch) as err:
        store.get(info.location)
    assert err.value.algorithm == "sha512"


def test_a_stream_longer_than_the_image_fails_before_its_last_bytes_are_handed_out() -> None:
    data = os.urandom(4096)
    longer = data + b"more"  # the stream holds more than the image's size (an object grown behind the store)
    reader = ImageReader(lambda at, n: io.BytesIO(longer), offset=0, size=len(data), chunk_size=1024,
                         expected={"blake3": blake3(data).hexdigest()}, progress=None, store="s", image="i")
    got = [reader.read(1024) for _ in range(3)]
    with pytest.raises(SizeMismatch):
        reader.read(1024)
    assert b"".join(got) == data[:3072]


def test_a_mismatch_is_raised_by_the_read_that_reaches_the_end() -> None:
    data = os.urandom(4096)
    reader = ImageReader(lambda at, n: io.BytesIO(data[at:at + n]), offset=0, size=len(data), chunk_size=1024,
                         expected={"blake3": blake3(b"other").hexdigest()}, progress=None, store="s", image="i")
    assert reader.read(4000) == data[:4000]
    with pytest.raises(ChecksumMismatch):
        reader.read(4000)  # the last 96 bytes: checked first, never returned


@settings(max_examples=25, deadline=None)
@given(st.lists(st.sampled_from([b"", b"\0" * 5000, b"\0" * 4096, b"x" * 700, b"\0" * 12288]), max_size=12))
def test_a_block_table_of_zero_blocks_is_the_table_of_their_hashes(parts: list[bytes]) -> None:
    block = 4096
    data = b"".join(parts)
    table = BlockTableHash(block)
    for part in parts:
        table.update(part)
    expected = b"".join(blake3(data[i:i + block]).digest(BLOCK_ENTRY) for i in range(0, len(data), block))
    assert table.table() == expected
