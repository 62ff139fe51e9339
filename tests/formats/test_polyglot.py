"""Files valid as two formats: one test per row of the decision table."""

from __future__ import annotations

import struct

import pytest

from .builders import gpt_disk, iso_image, mbr, patch, verdict_of
from .conftest import Sample

ISO = iso_image(256)


def _unsafe_as(data: bytes, fmt: str, word: str) -> None:
    verdict = verdict_of(data)
    assert verdict.format == fmt, verdict
    assert not verdict.safe
    assert any("polyglot" in r and word in r.lower() for r in verdict.reasons), verdict.reasons


@pytest.mark.parametrize("name, fmt", [
    ("qcow2-empty", "qcow2"), ("qed-empty", "qed"), ("vmdk-sparse-empty", "vmdk"),
    ("luks", "luks"), ("vhd-dynamic-empty", "vhd"), ("vdi-empty", "vdi"),
])
def test_container_header_in_iso_system_area(corpus: dict[str, Sample], name: str, fmt: str) -> None:
    """ISO + anything qemu would probe at offset 0: unsafe, reported as what qemu sees."""
    header = corpus[name].data()[:4096]
    _unsafe_as(patch(ISO, 0, header), fmt, "iso")


def test_vhdx_with_iso_descriptor(corpus: dict[str, Sample]) -> None:
    data = corpus["vhdx-empty"].data()
    _unsafe_as(patch(data, 32768, ISO[32768 : 32768 + 4096]), "vhdx", "iso")


@pytest.mark.parametrize("name, fmt", [("qcow2-empty", "qcow2"), ("vmdk-sparse-empty", "vmdk"),
                                       ("vhd-dynamic-empty", "vhd"), ("vdi-empty", "vdi")])
def test_container_header_with_partition_table(corpus: dict[str, Sample], name: str, fmt: str) -> None:
    """A GPT disk whose boot code area holds a container header."""
    data = corpus[name].data()
    disk = gpt_disk(boot_code=data[:446])
    disk[512 * 4 : len(data)] = data[512 * 4 :][: len(disk) - 512 * 4]  # keep the container's tables
    _unsafe_as(bytes(disk), fmt, "partition table")


def test_qcow2_with_mbr_signature(corpus: dict[str, Sample]) -> None:
    data = corpus["qcow2-empty"].data()
    table = mbr([(0x83, 2048, 100)])
    _unsafe_as(patch(data, 446, table[446:]), "qcow2", "mbr")


def test_qcow2_with_vdi_magic_at_64(corpus: dict[str, Sample]) -> None:
    data = corpus["qcow2-empty"].data()
    _unsafe_as(patch(data, 64, struct.pack("<I", 0xBEDA107F)), "qcow2", "vdi")


@pytest.mark.parametrize("name, fmt", [("qcow2-empty", "qcow2"), ("vdi-empty", "vdi"),
                                       ("vmdk-sparse-empty", "vmdk")])
def test_container_followed_by_fixed_vhd_footer(corpus: dict[str, Sample], name: str, fmt: str) -> None:
    footer = corpus["vhd-fixed"].data()[-512:]
    _unsafe_as(corpus[name].data() + footer, fmt, "fixed vhd")


def test_iso_with_fixed_vhd_footer(corpus: dict[str, Sample]) -> None:
    footer = corpus["vhd-fixed"].data()[-512:]
    _unsafe_as(ISO + footer, "vhd", "iso")


def test_hybrid_iso_is_safe(corpus: dict[str, Sample]) -> None:
    for name, table in (("iso-hybrid-mbr", "mbr"), ("iso-hybrid-gpt", "gpt")):
        verdict = verdict_of(corpus[name].data())
        assert (verdict.format, verdict.safe, verdict.partition_table) == ("iso", True, table)


def test_fixed_vhd_of_a_partitioned_disk_is_safe(corpus: dict[str, Sample]) -> None:
    verdict = verdict_of(corpus["vhd-fixed-gpt"].data())
    assert (verdict.format, verdict.safe, verdict.partition_table) == ("vhd", True, "gpt")


@pytest.mark.parametrize("name, fmt", [("qcow2-backing", "qcow2"), ("qed-empty", "qed"),
                                       ("vmdk-sparse-empty", "vmdk"), ("vhdx-empty", "vhdx"),
                                       ("vdi-empty", "vdi"), ("vhd-dynamic-empty", "vhd")])
def test_gpt_partition_holding_a_container_is_unsafe(corpus: dict[str, Sample], name: str,
                                                     fmt: str) -> None:
    disk = gpt_disk(1 << 20)
    disk[64 * 512 : 64 * 512 + 4096] = corpus[name].data()[:4096]
    verdict = verdict_of(bytes(disk))
    assert verdict.format == "raw" and verdict.partition_table == "gpt"
    assert not verdict.safe and any(f"contains a {fmt} image" in r for r in verdict.reasons)


def test_mbr_partition_holding_qcow2_is_unsafe(corpus: dict[str, Sample]) -> None:
    disk = bytearray(mbr([(0x83, 2048, 100)]) + bytes(2 << 20))
    disk[2048 * 512 : 2048 * 512 + 512] = corpus["qcow2-empty"].data()[:512]
    verdict = verdict_of(bytes(disk))
    assert verdict.partition_table == "mbr" and not verdict.safe


@pytest.mark.parametrize("content", ["luks", "iso"])
def test_partition_holding_luks_or_iso_is_fine(corpus: dict[str, Sample], content: str) -> None:
    disk = gpt_disk(1 << 20)
    payload = corpus["luks"].data()[:4096] if content == "luks" else ISO[:4096]
    disk[64 * 512 : 64 * 512 + 4096] = payload
    verdict = verdict_of(bytes(disk))
    assert (verdict.format, verdict.safe, verdict.partition_table) == ("raw", True, "gpt")


def test_fat_boot_sector_is_not_a_partition_table() -> None:
    vbr = bytearray(512)
    vbr[0x52:0x57] = b"FAT32"
    vbr[446] = 0x12  # boot code that would be an invalid partition entry anyway
    vbr[510:512] = b"\x55\xaa"
    verdict = verdict_of(bytes(vbr) + bytes(1 << 16))
    assert (verdict.format, verdict.safe, verdict.partition_table) == ("raw", True, None)
