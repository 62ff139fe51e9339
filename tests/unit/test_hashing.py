"""The parallel hasher and buffer ring give the digests hashlib gives."""

from __future__ import annotations

import hashlib
import os

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from imagestore import ConfigError
from imagestore.engine.hashing import BufferRing, ParallelHasher, strongest, validate_algorithms


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
