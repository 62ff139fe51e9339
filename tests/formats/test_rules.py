"""One hand-made malicious or broken image per safety rule."""

from __future__ import annotations

import struct

import pytest

from imagestore.formats import FormatVerdict

from .builders import gpt_disk, iso_image, patch, verdict_of, vhd_checksum
from .conftest import Sample


def unsafe(data: bytes, fmt: str, *words: str) -> FormatVerdict:
    """Assert ``data`` is an unsafe ``fmt`` image whose reasons mention ``words``."""
    verdict = verdict_of(data)
    assert verdict.format == fmt, verdict
    assert not verdict.safe, verdict
    text = " ".join(verdict.reasons).lower()
    for word in words:
        assert word.lower() in text, verdict.reasons
    return verdict


# -- qcow2 -------------------------------------------------------------------

def test_qcow2_backing_file_patched_in(corpus: dict[str, Sample]) -> None:
    data = corpus["qcow2-empty"].data()
    data = patch(data, 8, struct.pack(">QI", 0x1F0, 11))
    data = patch(data, 0x1F0, b"/etc/passwd")
    unsafe(data, "qcow2", "backing file", "/etc/passwd")


@pytest.mark.parametrize("bit, words", [
    (1 << 2, ("external data file",)),
    (1 << 1, ("corrupt",)),
    (1 << 5, ("unknown incompatible",)),
    (1 << 40, ("unknown incompatible",)),
])
def test_qcow2_incompatible_features(corpus: dict[str, Sample], bit: int, words: tuple[str, ...]) -> None:
    data = patch(corpus["qcow2-empty"].data(), 72, struct.pack(">Q", bit))
    unsafe(data, "qcow2", *words)


def test_qcow2_dirty_bit_is_harmless(corpus: dict[str, Sample]) -> None:
    assert verdict_of(patch(corpus["qcow2-empty"].data(), 72, struct.pack(">Q", 1))).safe


@pytest.mark.parametrize("bits", [0, 8, 22, 63, 0xFFFFFFFF])
def test_qcow2_cluster_bits_out_of_range(corpus: dict[str, Sample], bits: int) -> None:
    unsafe(patch(corpus["qcow2-empty"].data(), 20, struct.pack(">I", bits)), "qcow2", "cluster_bits")


@pytest.mark.parametrize("size", [2**63, 2**64 - 1])
def test_qcow2_absurd_virtual_size(corpus: dict[str, Sample], size: int) -> None:
    verdict = unsafe(patch(corpus["qcow2-empty"].data(), 24, struct.pack(">Q", size)), "qcow2")
    assert verdict.virtual_size is None or verdict.virtual_size < 2**63


def test_qcow2_l1_table_too_small_for_size(corpus: dict[str, Sample]) -> None:
    data = patch(corpus["qcow2-empty"].data(), 24, struct.pack(">Q", 1 << 50))
    unsafe(data, "qcow2", "L1 table")


def test_qcow2_l1_table_past_eof(corpus: dict[str, Sample]) -> None:
    data = patch(corpus["qcow2-empty"].data(), 40, struct.pack(">Q", 1 << 30))
    unsafe(data, "qcow2", "truncated")


def test_qcow2_l2_entry_past_eof(corpus: dict[str, Sample]) -> None:
    """A data cluster pointer beyond the end of the file (what truncation looks like)."""
    data = corpus["qcow2-v3"].data()
    l1_offset = struct.unpack_from(">Q", data, 40)[0]
    l2 = struct.unpack_from(">Q", data, l1_offset)[0] & 0x00FFFFFFFFFFFE00
    unsafe(patch(data, l2, struct.pack(">Q", (1 << 63) | (1 << 40))), "qcow2", "beyond the end")


@pytest.mark.parametrize("version", [1, 4, 0xFFFFFFFF])
def test_qcow2_unknown_version(corpus: dict[str, Sample], version: int) -> None:
    unsafe(patch(corpus["qcow2-empty"].data(), 4, struct.pack(">I", version)), "qcow2", "version")


def test_qcow2_data_file_extension_without_the_feature_bit(corpus: dict[str, Sample]) -> None:
    data = corpus["qcow2-empty"].data()
    header_length = struct.unpack_from(">I", data, 100)[0]
    ext = struct.pack(">II", 0x44415441, 11) + b"/etc/shadow" + bytes(5) + bytes(8)
    unsafe(patch(data, header_length, ext), "qcow2", "external data file", "/etc/shadow")


def test_qcow2_header_extension_running_off_the_cluster(corpus: dict[str, Sample]) -> None:
    data = corpus["qcow2-empty"].data()
    header_length = struct.unpack_from(">I", data, 100)[0]
    unsafe(patch(data, header_length, struct.pack(">II", 0x1234, 1 << 20)), "qcow2", "first cluster")


@pytest.mark.parametrize("length", [3, 4, 50, 71, 100, 103])
def test_qcow2_truncated_header(corpus: dict[str, Sample], length: int) -> None:
    data = corpus["qcow2-empty"].data()[:length]
    verdict = verdict_of(data)
    if length < 4:
        assert verdict.format == "raw"  # the magic itself is gone
    else:
        assert verdict.format == "qcow2" and not verdict.safe


def test_qcow2_legacy_aes_encryption(corpus: dict[str, Sample]) -> None:
    unsafe(patch(corpus["qcow2-empty"].data(), 32, struct.pack(">I", 1)), "qcow2", "encryption")


# -- qed ---------------------------------------------------------------------

def test_qed_unknown_feature(corpus: dict[str, Sample]) -> None:
    unsafe(patch(corpus["qed-empty"].data(), 16, struct.pack("<Q", 1 << 9)), "qed", "unknown feature")


def test_qed_backing_file_patched_in(corpus: dict[str, Sample]) -> None:
    data = patch(corpus["qed-empty"].data(), 16, struct.pack("<Q", 1))
    data = patch(data, 56, struct.pack("<II", 0x200, 11))
    unsafe(patch(data, 0x200, b"/etc/passwd"), "qed", "backing file", "/etc/passwd")


# -- vmdk --------------------------------------------------------------------

DESCRIPTOR = (
    "# Disk DescriptorFile\nversion=1\nCID=12345678\nparentCID=ffffffff\n"
    'createType="{kind}"\n\n# Extent description\n{extents}\n\n'
    '# The Disk Data Base\n#DDB\n\nddb.virtualHWVersion = "4"\n'
)


@pytest.mark.parametrize("kind, extents", [
    ("monolithicFlat", 'RW 2048 FLAT "/etc/passwd" 0'),
    ("monolithicSparse", 'RW 2048 SPARSE "disk.vmdk"'),
    ("vmfs", 'RW 2048 VMFS "../../etc/shadow"'),
])
def test_vmdk_bare_descriptor_is_always_unsafe(kind: str, extents: str) -> None:
    text = DESCRIPTOR.format(kind=kind, extents=extents).encode()
    verdict = unsafe(text, "vmdk", "descriptor file", "external extent")
    assert verdict.virtual_size == 2048 * 512


def _embedded(data: bytes) -> tuple[int, int]:
    sector, count = struct.unpack_from("<QQ", data, 28)
    return sector * 512, count * 512


def _replace_descriptor(data: bytes, text: str) -> bytes:
    offset, size = _embedded(data)
    raw = text.encode()
    assert len(raw) <= size
    return patch(data, offset, raw.ljust(size, b"\x00"))


def test_vmdk_embedded_extent_pointing_at_host_file(corpus: dict[str, Sample]) -> None:
    data = corpus["vmdk-sparse-empty"].data()
    text = DESCRIPTOR.format(kind="monolithicSparse", extents='RW 2048 SPARSE "/etc/passwd"')
    unsafe(_replace_descriptor(data, text), "vmdk", "names another file")


def test_vmdk_embedded_descriptor_with_flat_create_type(corpus: dict[str, Sample]) -> None:
    data = corpus["vmdk-sparse-empty"].data()
    text = DESCRIPTOR.format(kind="monolithicFlat", extents='RW 2048 FLAT "x-flat.vmdk" 0')
    unsafe(_replace_descriptor(data, text), "vmdk", "not a self-contained type")


def test_vmdk_embedded_descriptor_with_two_extents(corpus: dict[str, Sample]) -> None:
    data = corpus["vmdk-sparse-empty"].data()
    extents = 'RW 2048 SPARSE "a.vmdk"\nRW 2048 SPARSE "b.vmdk"'
    text = DESCRIPTOR.format(kind="monolithicSparse", extents=extents)
    unsafe(_replace_descriptor(data, text), "vmdk", "2 extents")


def test_vmdk_unknown_descriptor_line(corpus: dict[str, Sample]) -> None:
    data = corpus["vmdk-sparse-empty"].data()
    text = DESCRIPTOR.format(kind="monolithicSparse", extents='RW 2048 SPARSE "a.vmdk"\n!include /etc')
    unsafe(_replace_descriptor(data, text), "vmdk", "unrecognised")


@pytest.mark.parametrize("offset, fmt, value, words", [
    (20, "<Q", 0, ("grain size",)),
    (20, "<Q", 3, ("grain size",)),
    (44, "<I", 1024, ("grain table size",)),
    (4, "<I", 7, ("version",)),
    (73, "4s", b"\r\n\n\r", ("text-mode",)),
    (28, "<Q", 0, ("no embedded descriptor",)),
    (36, "<Q", 1 << 20, ("too large",)),
    (56, "<Q", 1 << 30, ("truncated",)),
])
def test_vmdk_sparse_header_fields(corpus: dict[str, Sample], offset: int, fmt: str, value: object,
                                   words: tuple[str, ...]) -> None:
    data = patch(corpus["vmdk-sparse-empty"].data(), offset, struct.pack(fmt, value))
    unsafe(data, "vmdk", *words)


def test_vmdk_cowd_is_unsafe() -> None:
    unsafe(b"COWD" + bytes(2044), "vmdk", "COWD")


def test_vmdk_stream_cut_inside_its_last_grain(corpus: dict[str, Sample]) -> None:
    """qemu pads stream files with zeros; cutting into the real data is caught."""
    data = corpus["vmdk-stream"].data()
    end = len(data.rstrip(b"\x00"))
    unsafe(data[: end - 10], "vmdk", "truncated")
    unsafe(data[: end - 10] + bytes(1024), "vmdk", "truncated")


# -- vhd ---------------------------------------------------------------------

def _footer_patch(footer: bytes, offset: int, value: bytes) -> bytes:
    return vhd_checksum(patch(footer, offset, value))


def test_vhd_differencing_disk(corpus: dict[str, Sample]) -> None:
    data = corpus["vhd-dynamic-empty"].data()
    footer = _footer_patch(data[:512], 60, struct.pack(">I", 4))
    unsafe(footer + data[512:-512] + footer, "vhd", "differencing")


def test_vhd_parent_locator_in_dynamic_disk(corpus: dict[str, Sample]) -> None:
    data = corpus["vhd-dynamic-empty"].data()
    header = bytearray(data[512:1536])
    header[576:600] = struct.pack(">IIIIQ", 0x57327275, 512, 22, 0, 1536)
    header[36:40] = bytes(4)
    header[36:40] = struct.pack(">I", ~sum(header) & 0xFFFFFFFF)
    unsafe(data[:512] + bytes(header) + data[1536:], "vhd", "parent locator")


def test_vhd_footer_checksum_mismatch(corpus: dict[str, Sample]) -> None:
    data = corpus["vhd-fixed"].data()
    unsafe(data[:-512] + patch(data[-512:], 48, b"\x7f"), "vhd", "checksum")


def test_vhd_dynamic_without_trailing_footer(corpus: dict[str, Sample]) -> None:
    unsafe(corpus["vhd-dynamic"].data()[:-512], "vhd", "truncated")


def test_vhd_fixed_larger_than_its_data(corpus: dict[str, Sample]) -> None:
    data = corpus["vhd-fixed"].data()
    footer = _footer_patch(data[-512:], 28, b"win ")  # size by current_size
    footer = _footer_patch(footer, 48, struct.pack(">Q", 1 << 40))
    unsafe(data[:-512] + footer, "vhd", "exceeds")


def test_vhd_fixed_that_lost_its_footer_is_raw(corpus: dict[str, Sample]) -> None:
    verdict = verdict_of(corpus["vhd-fixed"].data()[:-512])
    assert verdict.format == "raw" and verdict.safe


# -- vhdx --------------------------------------------------------------------

def _vhdx_item(data: bytes, guid: str) -> int:
    import uuid

    table = 192 * 1024
    count = struct.unpack_from("<I", data, table + 8)[0]
    for i in range(count):
        entry = table + 16 + 32 * i
        if data[entry : entry + 16] == uuid.UUID("8B7CA206-4790-4B9A-B8FE-575F050F886E").bytes_le:
            meta = struct.unpack_from("<Q", data, entry + 16)[0]
            items = struct.unpack_from("<H", data, meta + 10)[0]
            for j in range(items):
                item = meta + 32 + 32 * j
                if data[item : item + 16] == uuid.UUID(guid).bytes_le:
                    return meta + struct.unpack_from("<I", data, item + 16)[0]
    raise AssertionError("metadata item not found")


def test_vhdx_has_parent_flag(corpus: dict[str, Sample]) -> None:
    data = corpus["vhdx-empty"].data()
    params = _vhdx_item(data, "CAA16737-FA36-4D43-B3B6-33F0AA44E76B")
    unsafe(patch(data, params + 4, struct.pack("<I", 2)), "vhdx", "differencing")


def test_vhdx_virtual_size_beyond_the_format_limit(corpus: dict[str, Sample]) -> None:
    data = corpus["vhdx-empty"].data()
    item = _vhdx_item(data, "2FA54224-CD1B-4876-B211-5DBED83BF4B8")
    unsafe(patch(data, item, struct.pack("<Q", 1 << 62)), "vhdx", "virtual size")


def test_vhdx_corrupt_headers_and_region_tables(corpus: dict[str, Sample]) -> None:
    data = corpus["vhdx-empty"].data()
    for offset in (64 * 1024 + 100, 128 * 1024 + 100):
        data = patch(data, offset, b"\xff")
    unsafe(data, "vhdx", "no valid header")
    data = corpus["vhdx-empty"].data()
    for offset in (192 * 1024 + 100, 256 * 1024 + 100):
        data = patch(data, offset, b"\xff")
    unsafe(data, "vhdx", "no valid region table")


# -- vdi ---------------------------------------------------------------------

def test_vdi_parent_uuid(corpus: dict[str, Sample]) -> None:
    unsafe(patch(corpus["vdi-empty"].data(), 440, b"\x01" * 16), "vdi", "parent")


def test_vdi_differencing_type(corpus: dict[str, Sample]) -> None:
    unsafe(patch(corpus["vdi-empty"].data(), 76, struct.pack("<I", 4)), "vdi", "image type")


def test_vdi_blocks_beyond_eof(corpus: dict[str, Sample]) -> None:
    unsafe(corpus["vdi"].data()[:-4096], "vdi", "truncated")


# -- luks --------------------------------------------------------------------

def test_luks2_is_unsafe(corpus: dict[str, Sample]) -> None:
    unsafe(patch(corpus["luks"].data(), 6, struct.pack(">H", 2)), "luks", "version 2")


def test_luks_payload_beyond_eof(corpus: dict[str, Sample]) -> None:
    unsafe(patch(corpus["luks"].data(), 104, struct.pack(">I", 1 << 30)), "luks", "truncated")


def test_luks_key_slot_state_garbage(corpus: dict[str, Sample]) -> None:
    unsafe(patch(corpus["luks"].data(), 208 + 48 * 3, b"\x12\x34\x56\x78"), "luks", "slot 3")


# -- iso / partition tables ----------------------------------------------------

def test_iso_volume_larger_than_the_file() -> None:
    unsafe(iso_image(64)[: 40 * 2048], "iso", "truncated")


def test_iso_both_endian_fields_disagree() -> None:
    unsafe(patch(iso_image(64), 16 * 2048 + 84, struct.pack(">I", 7)), "iso", "disagree")


def test_gpt_header_checksum_mismatch() -> None:
    unsafe(patch(bytes(gpt_disk()), 512 + 40, b"\x01"), "raw", "checksum")


def test_gpt_truncated_disk() -> None:
    unsafe(bytes(gpt_disk())[: 512 * 1024], "raw", "truncated")


def test_gpt_partition_outside_usable_area() -> None:
    unsafe(bytes(gpt_disk(partitions=[(10, 5000)])), "raw", "outside")


def test_protective_mbr_without_gpt() -> None:
    unsafe(patch(bytes(gpt_disk()), 512, b"NOT PART"), "raw", "without a GPT")
