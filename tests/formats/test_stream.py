"""Cost and memory of inspection: near zero per chunk, bounded whatever the input."""

from __future__ import annotations

import os
import struct
import tracemalloc

from imagestore.formats import StreamInspector

from .builders import verdict_of
from .conftest import Sample

MiB = 1 << 20


def test_a_1_gib_raw_stream_is_raw_of_that_size() -> None:
    """The inspector's cost is measured by the benchmark (formats scenario); here, its answer."""
    chunk = os.urandom(4 * MiB)
    inspector = StreamInspector()
    for _ in range(256):
        inspector.feed(chunk)
    verdict = inspector.finish()
    assert verdict.format == "raw" and verdict.virtual_size == 1 << 30 and verdict.safe


def test_memory_stays_bounded_on_a_large_raw_stream() -> None:
    chunk = bytes(16 * MiB)
    tracemalloc.start()
    try:
        inspector = StreamInspector()
        for _ in range(16):
            inspector.feed(chunk)
        inspector.finish()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 1 * MiB, peak


def _qcow2_header(l1_entries: int, l1_offset: int, size: int, cluster_bits: int = 16) -> bytearray:
    header = bytearray(1 << cluster_bits)
    struct.pack_into(">4sIQIIQIIQQIIQ", header, 0, b"QFI\xfb", 3, 0, 0, cluster_bits, size, 0,
                     l1_entries, l1_offset, 1 << cluster_bits, 1, 0, 0)
    struct.pack_into(">QQQII", header, 72, 0, 0, 0, 4, 104)
    return header


def test_huge_l1_table_pointing_everywhere_is_bounded() -> None:
    """An L1 table of 1M distinct L2 pointers: rejected within memory and time bounds."""
    cluster = 1 << 9
    entries = 1 << 20
    header = _qcow2_header(entries, 4 * cluster, entries * (cluster << 6), cluster_bits=9)
    l1 = b"".join(struct.pack(">Q", (i + 10_000) * cluster) for i in range(entries))
    data = bytes(header) + bytes(3 * cluster) + l1
    tracemalloc.start()
    try:
        verdict = verdict_of(data, 4 * MiB)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert not verdict.safe
    assert peak < 32 * MiB, peak


def test_overlapping_regions_do_not_multiply_memory() -> None:
    """Grain tables all overlapping the same sectors cannot make us buffer gigabytes."""
    cluster = 1 << 16
    entries = 4096
    header = _qcow2_header(entries, cluster, entries * (cluster << 13))
    # every L1 entry points at a distinct but far-away L2: nothing is buffered until it arrives
    l1 = b"".join(struct.pack(">Q", (i + 4) * cluster) for i in range(entries))
    data = bytes(header) + l1.ljust(cluster, b"\x00") + bytes(cluster) * 2
    verdict = verdict_of(data, MiB)
    assert not verdict.safe and any("truncated" in r for r in verdict.reasons)


def test_bytes_seen_counts_every_chunk(corpus: dict[str, Sample]) -> None:
    data = corpus["qcow2-v3"].data()
    inspector = StreamInspector()
    for start in range(0, len(data), 1000):
        inspector.feed(data[start : start + 1000])
        assert inspector.bytes_seen == min(len(data), start + 1000)
