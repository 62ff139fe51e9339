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


def _sparse_file(path: Path, extents: list[tuple[int, bytes]], size: int) -> bytes:
    """A file with data at ``extents`` and holes elsewhere; returns its bytes."""
    dense = bytearray(size)
    with open(path, "wb") as fh:
        for offset, data in extents:
            fh.seek(offset)
            fh.write(data)
            dense[offset:offset + len(data)] = data
        fh.truncate(size)
    return bytes(dense)


def test_a_sparse_local_file_is_added_as_its_bytes_holes_included(tmp_path: Path) -> None:
    store = imagestore.open_store({"driver": "file", "root": str(tmp_path / "store")}, "f")
    dense = _sparse_file(tmp_path / "disk", [(0, payload(70_000, seed=3)), (9 * MiB + 5, payload(MiB, seed=4)),
                                             (30 * MiB - 3, b"\1\2\3")], 30 * MiB)
    assert os.stat(tmp_path / "disk").st_blocks * 512 < 4 * MiB  # the file really has holes
    from_bytes = store.add("dense", dense)
    with open(tmp_path / "disk", "rb") as fh:
        from_file = store.add("sparse", fh)
        assert fh.tell() == len(dense)  # left where a read to the end would have left it
    with open(tmp_path / "disk", "rb", buffering=0) as fh:
        fh.seek(MiB)  # from the file's position on, as any reader would read it
        from_offset = store.add("tail", fh)
    assert from_file.checksums == from_bytes.checksums and from_file.integrity == from_bytes.integrity
    assert from_file.block_table == from_bytes.block_table and from_file.size == len(dense)
    assert store.get(from_offset.location) == dense[MiB:]


def test_download_to_leaves_runs_of_zeros_as_holes(tmp_path: Path) -> None:
    store = imagestore.open_store({"driver": "file", "root": str(tmp_path / "store")}, "f")
    data = payload(MiB, seed=5) + bytes(20 * MiB) + payload(12_345, seed=6) + bytes(5 * MiB)
    info = store.add("img", data)
    target = tmp_path / "copy"
    store.download_to(info.location, target)
    assert target.read_bytes() == data
    assert os.stat(target).st_blocks * 512 < 4 * MiB  # the zeros are holes, the trailing ones too
