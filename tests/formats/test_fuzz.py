"""Property tests: mutated and truncated real images never crash, hang or pass as safe.

Budget: about 20 s in total (max_examples below; no deadlines: a loaded machine is no failure).
"""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from imagestore.formats import KNOWN_FORMATS, FormatVerdict, inspect_at

from .builders import verdict_of
from .conftest import CORPUS, Sample

#: Images whose header is at offset 0 (the signature survives truncation).
TRUNCATABLE = ("qcow2-v2", "qcow2-v3", "qcow2-compressed", "qcow2-4k-clusters", "qcow2-extended-l2",
               "qed", "vmdk-sparse", "vmdk-stream", "vhd-dynamic", "vdi", "vdi-static", "luks",
               "vhdx", "qcow2-empty", "vmdk-sparse-empty", "vhd-dynamic-empty", "iso")
MUTABLE = (*TRUNCATABLE, "vhd-fixed", "gpt-disk", "iso-hybrid-gpt", "vhdx-empty")
FUZZ = settings(max_examples=120, deadline=None, derandomize=True,
                suppress_health_check=[HealthCheck.function_scoped_fixture,
                                       HealthCheck.too_slow])

_cache: dict[str, bytes] = {}


def _data(corpus: dict[str, Sample], name: str) -> bytes:
    if name not in _cache:
        _cache[name] = corpus[name].data()
    return _cache[name]


def _checked(data: bytes, chunk: int = 65536) -> FormatVerdict:
    """The verdict, which must not depend on how the stream was cut into chunks."""
    verdict = verdict_of(data, chunk)
    whole = verdict_of(data, max(len(data), 1))
    assert (verdict.format, verdict.safe) == (whole.format, whole.safe), (chunk, verdict, whole)
    # read at random (what a converter's source gets): only what the parsers ask for, same verdict
    assert inspect_at(lambda at, n: data[at:at + n], len(data), max(chunk, 4096)) == whole
    assert verdict.format is None or verdict.format in KNOWN_FORMATS
    assert verdict.safe is (not verdict.reasons)
    return verdict


@FUZZ
@given(name=st.sampled_from(TRUNCATABLE), cut=st.floats(0.0, 1.0, exclude_max=True))
def test_truncated_images_are_never_safe(corpus: dict[str, Sample], name: str, cut: float) -> None:
    """Cutting into the image's data (not trailing zero padding) is always caught.

    LUKS is the documented exception: its payload has no length field, so a
    cut on a sector boundary inside the payload is a smaller valid volume.
    """
    data = _data(corpus, name)
    end = len(data.rstrip(b"\x00"))  # trailing zeros may be slack no table refers to
    length = int(cut * end)
    verdict = _checked(data[:length])
    signature_kept = length >= (32774 if name == "iso" else 72 if name.startswith("vdi") else 8)
    smaller_luks = name == "luks" and length >= 4096 and length % 512 == 0
    if signature_kept and not smaller_luks:
        assert not verdict.safe, (length, verdict)


@FUZZ
@given(name=st.sampled_from(MUTABLE),
       edits=st.lists(st.tuples(st.integers(0, 4095), st.integers(0, 255)), min_size=1, max_size=12),
       chunk=st.sampled_from([7, 512, 65536]))
def test_mutated_headers_never_crash(corpus: dict[str, Sample], name: str,
                                     edits: list[tuple[int, int]], chunk: int) -> None:
    data = bytearray(_data(corpus, name))
    for offset, value in edits:
        data[offset % len(data)] = value
    if len(data) > (1 << 20) and chunk == 7:
        chunk = 512
    _checked(bytes(data), chunk)


@FUZZ
@given(name=st.sampled_from(MUTABLE), region=st.integers(0, 16),
       edits=st.lists(st.tuples(st.integers(0, 65535), st.integers(0, 255)), min_size=1, max_size=32))
def test_mutated_metadata_anywhere_never_crashes(corpus: dict[str, Sample], name: str, region: int,
                                                  edits: list[tuple[int, int]]) -> None:
    """Mutations in the 64 KiB windows that hold tables, descriptors and footers."""
    data = bytearray(_data(corpus, name))
    base = (region * 65536) % len(data) if region < 16 else max(0, len(data) - 65536)
    for offset, value in edits:
        data[(base + offset) % len(data)] = value
    _checked(bytes(data))


@FUZZ
@given(blob=st.binary(min_size=0, max_size=4096),
       magic=st.sampled_from([b"QFI\xfb", b"QED\x00", b"KDMV", b"COWD", b"vhdxfile", b"conectix",
                              b"LUKS\xba\xbe", b"version=1\n", b""]))
def test_random_bytes_behind_a_magic_never_crash(magic: bytes, blob: bytes) -> None:
    verdict = _checked(magic + blob)
    if verdict.format != "raw":
        assert not verdict.safe, verdict  # random bytes never make a consistent image


# ---------------------------------------------------------------------- every format, bounded memory
MEMORY_BUDGET = 16 << 20  # bytes the inspector may hold, whatever the image's size


@FUZZ
@given(name=st.sampled_from(CORPUS), head=st.booleans(),
       edits=st.lists(st.tuples(st.integers(0, 65535), st.integers(0, 255)), min_size=1, max_size=24),
       chunk=st.sampled_from([1, 4096, 65536, 1 << 20]))
def test_every_corpus_format_mutated_never_crashes(corpus: dict[str, Sample], name: str, head: bool,
                                                   edits: list[tuple[int, int]], chunk: int) -> None:
    """All corpus images, unsafe ones included (backing files, data files, extents), mutated
    at their start or their end, fed in chunks from 1 byte to 1 MiB."""
    data = bytearray(_data(corpus, name))
    base = 0 if head else max(0, len(data) - 65536)
    for offset, value in edits if data else ():  # an empty image (raw-empty) is inspected as it is
        data[(base + offset) % len(data)] = value
    if chunk == 1:
        data = data[:65536]  # byte-at-a-time feeding of the header region only
    _checked(bytes(data), chunk)


def _inspect_stream(head: bytes, total: int, seed: int) -> tuple[int, FormatVerdict]:
    """Feed ``head`` then random bytes up to ``total``, chunk by chunk (never held at once);
    the inspector's peak traced allocation and its verdict."""
    import random
    import tracemalloc

    from imagestore.formats import StreamInspector

    rng = random.Random(seed)
    inspector = StreamInspector()
    tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        inspector.feed(memoryview(head))
        left = total - len(head)
        while left > 0:
            piece = rng.randbytes(min(65536, left))
            inspector.feed(memoryview(piece))
            left -= len(piece)
            del piece
        verdict = inspector.finish()
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    return peak, verdict


@settings(max_examples=12, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(name=st.sampled_from(CORPUS), seed=st.integers(0, 1000))
def test_inspection_memory_is_bounded(corpus: dict[str, Sample], name: str, seed: int) -> None:
    """A 48 MiB stream whose first 64 KiB are a (real) image header and the rest junk: the
    inspector's peak memory stays within a fixed budget (it streams; it never buffers the image)."""
    head = _data(corpus, name)[:65536]
    peak, verdict = _inspect_stream(head, 48 << 20, seed)
    assert peak < MEMORY_BUDGET, f"{name}: the inspector held {peak} bytes at once"
    assert verdict.format is None or verdict.format in KNOWN_FORMATS
