"""Real images made by qemu-img (and by hand): format, safety, size, chunking."""

from __future__ import annotations

import io
import os

import pytest

from imagestore.formats import FormatVerdict, StreamInspector, inspect, inspect_at

from .builders import verdict_of
from .conftest import CORPUS, Sample

CHUNK_SIZES = (1, 7, 512, 65536, 4 << 20)
#: Feeding one byte at a time costs ~1 us per byte: keep it to the smaller images.
ONE_BYTE_LIMIT = 2 << 20


@pytest.mark.parametrize("name", CORPUS)
def test_verdict_matches_expectation(corpus: dict[str, Sample], name: str) -> None:
    sample = corpus[name]
    verdict = inspect(sample.path)
    assert verdict.format == sample.format, verdict
    assert verdict.safe is sample.safe, verdict.reasons
    assert bool(verdict.reasons) is not sample.safe
    assert verdict.partition_table == sample.partition_table
    if sample.safe:
        size = sample.path.stat().st_size
        if sample.format in ("raw", "iso"):
            assert verdict.virtual_size == size  # qemu rounds raw files up to a sector
        elif sample.format == "luks":
            assert verdict.virtual_size == 1 << 20
        else:
            assert verdict.virtual_size == sample.qemu_size, "must agree with qemu-img info"


@pytest.mark.parametrize("name", CORPUS)
def test_chunk_size_does_not_change_the_verdict(corpus: dict[str, Sample], name: str) -> None:
    data = corpus[name].data()
    reference = verdict_of(data, 4096)
    for size in CHUNK_SIZES:
        if size == 1 and len(data) > ONE_BYTE_LIMIT:
            continue
        assert verdict_of(data, size) == reference, f"chunk size {size}"


@pytest.mark.parametrize("name", ["qcow2-v3", "vmdk-sparse", "vhd-dynamic", "vhdx", "gpt-disk",
                                  "vhd-fixed", "qcow2-backing"])
def test_reused_buffers_are_not_kept(corpus: dict[str, Sample], name: str) -> None:
    """The caller may overwrite a chunk right after feed() returns."""
    data = corpus[name].data()
    inspector = StreamInspector()
    buf = bytearray(4099)
    for start in range(0, len(data), len(buf)):
        piece = data[start : start + len(buf)]
        buf[: len(piece)] = piece
        inspector.feed(memoryview(buf)[: len(piece)])
        buf[:] = b"\xa5" * len(buf)  # scribble: a kept reference would see this
    assert inspector.bytes_seen == len(data)
    assert inspector.finish() == inspect(corpus[name].path)


def test_inspect_accepts_path_str_and_file_objects(corpus: dict[str, Sample]) -> None:
    sample = corpus["qcow2-v3"]
    by_path = inspect(sample.path)
    assert inspect(str(sample.path)) == by_path
    with open(sample.path, "rb") as handle:
        assert inspect(handle, chunk_size=1000) == by_path
        assert not handle.closed

    class ReadOnly:  # no readinto
        def __init__(self, data: bytes) -> None:
            self._io = io.BytesIO(data)

        def read(self, n: int = -1) -> bytes:
            return self._io.read(n)

    assert inspect(ReadOnly(sample.data())) == by_path  # type: ignore[arg-type]


def test_finish_is_idempotent_and_feed_after_finish_fails() -> None:
    inspector = StreamInspector()
    inspector.feed(b"hello")
    first = inspector.finish()
    assert inspector.finish() is first
    with pytest.raises(RuntimeError):
        inspector.feed(b"more")


def test_empty_stream_is_an_empty_raw_image() -> None:
    assert StreamInspector().finish() == FormatVerdict("raw", True, (), 0, None)


def test_to_dict() -> None:
    verdict = FormatVerdict("qcow2", False, ("a", "b"), 10, None)
    assert verdict.to_dict() == {"format": "qcow2", "safe": False, "reasons": ["a", "b"],
                                 "virtual_size": 10, "partition_table": None}


@pytest.mark.parametrize("name", CORPUS)
def test_reading_only_what_the_parsers_ask_for_gives_the_full_verdict(corpus: dict[str, Sample], name: str) -> None:
    """A source read at random offsets (a converter's) is inspected from its head, the regions its
    parsers ask for and its tail: the verdict of a full pass, every byte read once at most."""
    data = corpus[name].data()
    reads: list[tuple[int, int]] = []

    def read_at(at: int, n: int) -> bytes:
        reads.append((at, n))
        return data[at:at + n]

    for chunk in (4096, 1 << 20):
        reads.clear()
        assert inspect_at(read_at, len(data), chunk) == inspect(corpus[name].path), chunk
        assert all(a + n <= b for (a, n), (b, _) in zip(reads, reads[1:])), "forward only"


def test_a_large_qcow2_is_inspected_from_its_metadata(tmp_path) -> None:
    """Of an image mostly data, the parsers ask for the header and the tables: the rest is skipped."""
    import subprocess
    raw = tmp_path / "disk.raw"
    with open(raw, "wb") as f:
        f.write(os.urandom(24 << 20))
    image = tmp_path / "disk.qcow2"
    subprocess.run(["qemu-img", "convert", "-f", "raw", "-O", "qcow2", str(raw), str(image)], check=True)
    data = image.read_bytes()
    read = 0

    def read_at(at: int, n: int) -> bytes:
        nonlocal read
        read += n
        return data[at:at + n]

    verdict = inspect_at(read_at, len(data), 64 << 10)
    assert verdict == inspect(image) and verdict.format == "qcow2" and verdict.safe
    assert read < len(data) // 8, f"{read} of {len(data)} bytes read"
