"""Hand-made test images: ISO 9660 volumes, MBR and GPT disks, header patches.

qemu-img cannot make these, so they are written byte by byte here, following
the ECMA-119 and UEFI layouts closely enough for imagestore and real tools.
"""

from __future__ import annotations

import struct
import uuid
import zlib

SECTOR = 512
ISO_BLOCK = 2048


def iso_image(blocks: int = 64, system_area: bytes = b"") -> bytes:
    """An ISO 9660 volume of ``blocks`` 2 KiB blocks: PVD at 16, terminator at 17."""
    data = bytearray(blocks * ISO_BLOCK)
    data[: len(system_area)] = system_area
    pvd = bytearray(ISO_BLOCK)
    pvd[0] = 1
    pvd[1:6] = b"CD001"
    pvd[6] = 1
    pvd[8:40] = b"IMAGESTORE".ljust(32)
    pvd[40:72] = b"TESTVOLUME".ljust(32)
    pvd[80:88] = struct.pack("<I", blocks) + struct.pack(">I", blocks)
    pvd[120:124] = struct.pack("<H", 1) + struct.pack(">H", 1)
    pvd[124:128] = struct.pack("<H", 1) + struct.pack(">H", 1)
    pvd[128:132] = struct.pack("<H", ISO_BLOCK) + struct.pack(">H", ISO_BLOCK)
    pvd[881] = 1
    data[16 * ISO_BLOCK : 17 * ISO_BLOCK] = pvd
    term = bytearray(ISO_BLOCK)
    term[0] = 255
    term[1:6] = b"CD001"
    term[6] = 1
    data[17 * ISO_BLOCK : 18 * ISO_BLOCK] = term
    data[20 * ISO_BLOCK : 20 * ISO_BLOCK + 11] = b"hello world"
    return bytes(data)


def mbr(entries: list[tuple[int, int, int]], boot_code: bytes = b"") -> bytes:
    """A 512-byte MBR with ``(type, start_lba, sectors)`` entries."""
    sector = bytearray(SECTOR)
    sector[: len(boot_code)] = boot_code[:446]
    for i, (ptype, start, count) in enumerate(entries):
        sector[446 + 16 * i : 462 + 16 * i] = struct.pack(
            "<B3sB3sII", 0, b"\x00\x02\x00", ptype, b"\xff\xff\xff", start, count
        )
    sector[510:512] = b"\x55\xaa"
    return bytes(sector)


def mbr_disk(size: int = 1 << 20, partitions: list[tuple[int, int, int]] | None = None) -> bytes:
    """A raw disk with a classic MBR (one Linux partition from LBA 2048 by default)."""
    total = size // SECTOR
    parts = partitions or [(0x83, 64, total - 64)]
    return mbr(parts) + bytes(size - SECTOR)


def gpt_disk(
    size: int = 1 << 20,
    partitions: list[tuple[int, int]] | None = None,
    boot_code: bytes = b"",
) -> bytearray:
    """A raw disk with protective MBR, primary and backup GPT (128 entries)."""
    total = size // SECTOR
    last_usable = total - 34
    parts = partitions or [(64, last_usable)]
    disk = bytearray(size)
    disk[0:SECTOR] = mbr([(0xEE, 1, min(total - 1, 0xFFFFFFFF))], boot_code)
    entries = bytearray(128 * 128)
    linux = uuid.UUID("0FC63DAF-8483-4772-8E79-3D69D8477DE4").bytes_le
    for i, (first, last) in enumerate(parts):
        entry = linux + uuid.UUID(int=i + 1).bytes_le + struct.pack("<QQQ", first, last, 0)
        entries[i * 128 : i * 128 + len(entry)] = entry
    entries_crc = zlib.crc32(entries)

    def header(current: int, backup: int, entries_lba: int) -> bytes:
        fields = struct.pack(
            "<8sIIIIQQQQ16sQIII", b"EFI PART", 0x00010000, 92, 0, 0, current, backup,
            34, last_usable, uuid.UUID(int=99).bytes_le, entries_lba, 128, 128, entries_crc,
        )
        crc = zlib.crc32(fields)
        return fields[:16] + struct.pack("<I", crc) + fields[20:]

    disk[SECTOR : SECTOR + 92] = header(1, total - 1, 2)
    disk[2 * SECTOR : 2 * SECTOR + len(entries)] = entries
    disk[(total - 33) * SECTOR : (total - 1) * SECTOR] = entries
    disk[(total - 1) * SECTOR : (total - 1) * SECTOR + 92] = header(total - 1, 1, total - 33)
    return disk


def patch(data: bytes, offset: int, value: bytes) -> bytes:
    """Return ``data`` with ``value`` written at ``offset``."""
    out = bytearray(data)
    out[offset : offset + len(value)] = value
    return bytes(out)


def vhd_checksum(footer: bytes) -> bytes:
    """Recompute a VHD footer checksum after a patch."""
    total = sum(footer[:64]) + sum(footer[68:512])
    return footer[:64] + struct.pack(">I", ~total & 0xFFFFFFFF) + footer[68:]


def verdict_of(data: bytes, chunk_size: int = 65536) -> FormatVerdict:
    """Feed ``data`` to a fresh StreamInspector in ``chunk_size`` pieces."""
    from imagestore.formats import StreamInspector

    inspector = StreamInspector()
    view = memoryview(data)
    for start in range(0, len(data), chunk_size):
        inspector.feed(view[start : start + chunk_size])
    return inspector.finish()


if False:  # pragma: no cover - typing only
    from imagestore.formats import FormatVerdict
