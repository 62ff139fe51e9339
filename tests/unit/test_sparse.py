"""Sparse writes: ``is_zero`` and the file writer, which leaves runs of zeros as holes (and punches
what the filesystem preallocated inside them), so an image's zeros take no room."""

from __future__ import annotations

import os
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

import imagestore
from imagestore.spi.zeros import is_zero
from imagestore.testing.payloads import payload

MiB = 1 << 20


@given(st.binary(max_size=300), st.integers(min_value=0, max_value=5000))
def test_is_zero_is_all_bytes_zero(data: bytes, zeros: int) -> None:
    assert is_zero(data) is (data.count(0) == len(data))
    assert is_zero(bytes(zeros)) and is_zero(memoryview(bytearray(zeros)))
    assert not is_zero(bytes(zeros) + b"\1")


def test_zero_runs_become_holes_and_read_back_as_zeros(tmp_path: Path) -> None:
    store = imagestore.open_store({"driver": "file", "root": str(tmp_path)}, "f")
    data = payload(MiB + 7, seed=1) + bytes(16 * MiB) + payload(200_000, seed=2) + bytes(3 * MiB + 11)
    info = store.add("sparse", data)
    st_ = os.stat(tmp_path / "sparse")
    assert st_.st_size == len(data)
    assert st_.st_blocks * 512 < 2 * MiB  # the data (1.2 MB, in 64 KiB granules), not the 19 MiB of zeros
    assert store.get(info.location) == data  # verified against the digest of every byte


@settings(max_examples=30)
@given(st.lists(st.tuples(st.booleans(), st.integers(min_value=1, max_value=300_000)), min_size=1, max_size=6))
def test_any_mix_of_data_and_zeros_reads_back_the_same(tmp_path_factory: object, runs: list[tuple[bool, int]]) -> None:
    root = tmp_path_factory.mktemp("sparse")  # type: ignore[attr-defined]
    store = imagestore.open_store({"driver": "file", "root": str(root)}, "f")
    data = b"".join(payload(n, seed=n) if filled else bytes(n) for filled, n in runs)
    info = store.add("img", iter([data[i:i + 70_000] for i in range(0, len(data), 70_000)]), len(data))
    assert os.path.getsize(root / "img") == len(data)
    assert store.get(info.location) == data
