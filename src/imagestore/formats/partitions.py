"""MBR and GPT partition tables of raw disks (and of hybrid ISOs and fixed VHDs).

A partition table does not make a disk less raw: ``raw`` is still the format
and the table is reported as ``partition_table``. A GPT must be internally
consistent (checksums, bounds, backup header inside the file), and no
partition may start with the header of a virtual-disk container format.
"""

from __future__ import annotations

import zlib

from .base import FormatParser, unpack
from .stream import ByteStream

__all__ = ["PartitionParser", "container_signature"]

MBR_SIGNATURE = b"\x55\xaa"
MBR_ENTRIES = 446
GPT_SIGNATURE = b"EFI PART"
TYPE_PROTECTIVE = 0xEE
EXTENDED_TYPES = frozenset({0x05, 0x0F, 0x85})
MAX_GPT_ENTRY_BYTES = 1024 * 1024
MAX_CONTENT_CHECKS = 128

#: Signatures of the formats a hypervisor would interpret (offset, magic).
CONTAINER_SIGNATURES: tuple[tuple[str, int, bytes], ...] = (
    ("qcow2", 0, b"QFI\xfb"),
    ("qed", 0, b"QED\x00"),
    ("vmdk", 0, b"KDMV"),
    ("vmdk", 0, b"COWD"),
    ("vhdx", 0, b"vhdxfile"),
    ("vhd", 0, b"conectix"),
    ("vdi", 64, b"\x7f\x10\xda\xbe"),
)


def container_signature(data: bytes) -> str | None:
    """Name the container format whose signature starts ``data``, if any."""
    for name, offset, magic in CONTAINER_SIGNATURES:
        if data[offset : offset + len(magic)] == magic:
            return name
    return None


def _is_boot_sector(head: bytes) -> bool:
    """A FAT/NTFS volume boot record also ends in 55AA but holds no partition table."""
    return (head[0x36:0x3B] in (b"FAT12", b"FAT16") or head[0x52:0x57] == b"FAT32"
            or head[3:11] == b"NTFS    ")


def _mbr_entries(head: bytes) -> list[tuple[int, int, int, int]] | None:
    """(index, type, start LBA, sectors) of used MBR entries, None if not an MBR."""
    if len(head) < 512 or head[510:512] != MBR_SIGNATURE or _is_boot_sector(head):
        return None
    used = []
    for i in range(4):
        boot, ptype, start, count = unpack("<B3xB3xII", head, MBR_ENTRIES + 16 * i)
        if boot not in (0x00, 0x80):
            return None
        if ptype:
            used.append((i, ptype, start, count))
    return used or None


class PartitionParser(FormatParser):
    """Partition table at the start of a guest disk; the disk itself is raw."""

    name = "raw"

    def __init__(self, stream: ByteStream) -> None:
        super().__init__(stream)
        self.sector = 512
        self.backup_lba = 0
        self.checks = 0

    @classmethod
    def probe(cls, head: bytes) -> bool:
        return _mbr_entries(head) is not None

    def start(self, head: bytes) -> None:
        entries = _mbr_entries(head) or []
        if any(ptype == TYPE_PROTECTIVE for _, ptype, _, _ in entries):
            self.partition_table = "gpt"
            for sector in (512, 4096):
                if head[sector : sector + 8] == GPT_SIGNATURE:
                    self.sector = sector
                    self._gpt(head[sector : sector * 2])
                    return
            self.fail("protective MBR without a GPT header")
            return
        self.partition_table = "mbr"
        for index, ptype, start, _ in entries:
            if ptype not in EXTENDED_TYPES and start:
                self._check_content(index + 1, start * 512)

    def _gpt(self, header: bytes) -> None:
        (_, _revision, header_size, crc, current, backup, first_usable, last_usable,
         entries_lba, count, entry_size, entries_crc) = unpack("<8sIII4xQQQQ16xQIII", header)
        if not 92 <= header_size <= self.sector:
            self.fail(f"GPT header size {header_size} is invalid")
            return
        check = bytearray(header[:header_size])
        check[16:20] = b"\x00\x00\x00\x00"
        if zlib.crc32(check) != crc:
            self.fail("GPT header checksum mismatch")
            return
        if current != 1 or first_usable > last_usable or backup <= 1:
            self.fail("GPT header locations are inconsistent")
            return
        if entry_size < 128 or entry_size % 128 or count * entry_size > MAX_GPT_ENTRY_BYTES:
            self.fail(f"GPT partition array of {count} x {entry_size} bytes is invalid")
            return
        self.backup_lba = backup
        self.want(entries_lba * self.sector, count * entry_size,
                  lambda off, data: self._gpt_entries(data, entry_size, entries_crc,
                                                      first_usable, last_usable),
                  "GPT partition array")

    def _gpt_entries(self, data: bytes, entry_size: int, crc: int, first_usable: int,
                     last_usable: int) -> None:
        if zlib.crc32(data) != crc:
            self.fail("GPT partition array checksum mismatch")
            return
        for index in range(len(data) // entry_size):
            entry = data[index * entry_size : index * entry_size + 128]
            if entry[:16] == bytes(16):
                continue
            first, last = unpack("<QQ", entry, 32)
            if first > last or first < first_usable or last > last_usable:
                self.fail(f"GPT partition {index + 1} lies outside the usable area")
                continue
            self._check_content(index + 1, first * self.sector)

    def _check_content(self, number: int, offset: int) -> None:
        """Fail if partition ``number`` starts with a virtual-disk container header."""
        if self.checks >= MAX_CONTENT_CHECKS:
            return
        self.checks += 1

        def look(off: int, data: bytes) -> None:
            found = container_signature(data)
            if found:
                self.fail(f"partition {number} contains a {found} image")

        self.want(offset, 512, look, "partition start", missing_ok=True, partial_ok=True)

    def finish(self, size: int, tail: bytes) -> None:
        if self.backup_lba and (self.backup_lba + 1) * self.sector > size:
            self.fail(f"GPT backup header at LBA {self.backup_lba} is beyond the end of the "
                      f"{size}-byte image (truncated)")
        self.check_virtual_size(size)
