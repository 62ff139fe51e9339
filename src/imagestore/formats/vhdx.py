"""Microsoft VHDX: headers, region table, metadata items and the block allocation table.

Differencing disks (a parent locator or the has-parent flag), images with a
log still to replay, unknown required regions or metadata, and blocks placed
beyond the end of the file are all unsafe. Checksums are CRC-32C as in the
specification (MS-VHDX).
"""

from __future__ import annotations

import uuid

from .base import FormatParser, table_entries, unpack
from .stream import MAX_REQUEST, ByteStream

__all__ = ["VhdxParser", "crc32c"]

SIGNATURE = b"vhdxfile"
HEADER_OFFSETS = (64 * 1024, 128 * 1024)
REGION_OFFSETS = (192 * 1024, 256 * 1024)
HEADER_SIZE = 4096
REGION_SIZE = 64 * 1024
MB = 1024 * 1024
MAX_SIZE = 64 * 1024**4  # 64 TiB, the format's limit
MAX_BAT_BYTES = 64 * MB

BAT_GUID = uuid.UUID("2DC27766-F623-4200-9D64-115E9BFD4A08").bytes_le
METADATA_GUID = uuid.UUID("8B7CA206-4790-4B9A-B8FE-575F050F886E").bytes_le
FILE_PARAMETERS = uuid.UUID("CAA16737-FA36-4D43-B3B6-33F0AA44E76B").bytes_le
VIRTUAL_DISK_SIZE = uuid.UUID("2FA54224-CD1B-4876-B211-5DBED83BF4B8").bytes_le
PAGE83 = uuid.UUID("BECA12AB-B2E6-4523-93EF-C309E000C746").bytes_le
LOGICAL_SECTOR = uuid.UUID("8141BF1D-A96F-4709-BA47-F233A8FAAB5F").bytes_le
PHYSICAL_SECTOR = uuid.UUID("CDA348C7-445D-4471-9CC9-E9885251C556").bytes_le
PARENT_LOCATOR = uuid.UUID("A8D35F2D-B30B-454D-ABF7-D3D84834AB0C").bytes_le
KNOWN_ITEMS = frozenset({FILE_PARAMETERS, VIRTUAL_DISK_SIZE, PAGE83, LOGICAL_SECTOR,
                         PHYSICAL_SECTOR})

BAT_PRESENT_STATES = (6, 7)  # fully / partially present (or sector bitmap present)
BAT_VALID_STATES = frozenset({0, 1, 2, 3, 6, 7})


def _crc_table() -> list[int]:
    table = []
    for byte in range(256):
        crc = byte
        for _ in range(8):
            crc = (crc >> 1) ^ 0x82F63B78 if crc & 1 else crc >> 1
        table.append(crc)
    return table


_CRC_TABLE = _crc_table()


def crc32c(data: bytes) -> int:
    """CRC-32C (Castagnoli), the checksum VHDX uses."""
    crc = 0xFFFFFFFF
    table = _CRC_TABLE
    for byte in data:
        crc = table[(crc ^ byte) & 0xFF] ^ (crc >> 8)
    return crc ^ 0xFFFFFFFF


def _checksum_ok(block: bytes) -> bool:
    stored: int = unpack("<I", block, 4)[0]
    return crc32c(block[:4] + b"\x00\x00\x00\x00" + block[8:]) == stored


class VhdxParser(FormatParser):
    """VHDX structure checks; virtual size from the Virtual Disk Size metadata item."""

    name = "vhdx"

    def __init__(self, stream: ByteStream) -> None:
        super().__init__(stream)
        self.headers: list[tuple[int, bytes]] = []
        self.header_checks = 0
        self.region_done = False
        self.region_checks = 0
        self.block_size = MB
        self.max_end = 0
        self.max_block = -1
        self.have_size = False

    @classmethod
    def probe(cls, head: bytes) -> bool:
        return head[:8] == SIGNATURE

    def start(self, head: bytes) -> None:
        for offset in HEADER_OFFSETS:
            self.want(offset, HEADER_SIZE, self._header, "VHDX header")
        for offset in REGION_OFFSETS:
            self.want(offset, REGION_SIZE, self._region_table, "VHDX region table")

    # -- headers -------------------------------------------------------------

    def _header(self, offset: int, block: bytes) -> None:
        self.header_checks += 1
        if block[:4] == b"head" and _checksum_ok(block):
            (seq,) = unpack("<Q", block, 8)
            self.headers.append((seq, block))
        if self.header_checks < len(HEADER_OFFSETS):
            return
        if not self.headers:
            self.fail("VHDX has no valid header")
            return
        _, current = max(self.headers, key=lambda item: item[0])
        log_guid = current[48:64]
        log_version, version, log_length, log_offset = unpack("<HHIQ", current, 64)
        if version != 1 or log_version != 0:
            self.fail(f"VHDX version {version} (log version {log_version}) is not supported")
        if log_guid != bytes(16):
            self.fail("VHDX log must be replayed before use (log GUID is set)")
        if log_offset % MB or log_length % MB:
            self.fail("VHDX log location is not 1 MiB aligned")
        self.max_end = max(self.max_end, log_offset + log_length)

    # -- region table --------------------------------------------------------

    def _region_table(self, offset: int, table: bytes) -> None:
        self.region_checks += 1
        if self.region_done:
            return
        if table[:4] != b"regi" or not _checksum_ok(table):
            if self.region_checks == len(REGION_OFFSETS):
                self.fail("VHDX has no valid region table")
            return
        self.region_done = True
        (count,) = unpack("<I", table, 8)
        if count > 2047:
            self.fail(f"VHDX region table has {count} entries")
            return
        bat = metadata = None
        for i in range(count):
            guid = table[16 + 32 * i : 32 + 32 * i]
            start, length, required = unpack("<QII", table, 32 + 32 * i)
            if start % MB or length % MB or start < MB:
                self.fail("VHDX region is not 1 MiB aligned")
                return
            self.max_end = max(self.max_end, start + length)
            if guid == BAT_GUID:
                bat = (start, length)
            elif guid == METADATA_GUID:
                metadata = (start, length)
            elif required & 1:
                self.fail("VHDX has an unknown required region")
        if bat is None or metadata is None:
            self.fail("VHDX lacks its BAT or metadata region")
            return
        self.want(metadata[0], min(metadata[1], MAX_REQUEST), self._metadata, "VHDX metadata")
        if bat[1] > MAX_BAT_BYTES:
            self.fail("VHDX block allocation table is too large")
            return
        self.want_table(bat[0], bat[1], self._bat, "VHDX block allocation table")

    # -- metadata ------------------------------------------------------------

    def _metadata(self, offset: int, region: bytes) -> None:
        signature, count = unpack("<8s2xH", region)
        if signature != b"metadata":
            self.fail("VHDX metadata signature missing")
            return
        if count > 2047:
            self.fail(f"VHDX metadata table has {count} entries")
            return
        items: dict[bytes, bytes] = {}
        for i in range(count):
            entry = 32 + 32 * i
            item_id = region[entry : entry + 16]
            item_offset, length, flags = unpack("<III", region, entry + 16)
            if item_id == PARENT_LOCATOR:
                self.fail("VHDX is a differencing disk (it has a parent locator)")
                continue
            if item_id not in KNOWN_ITEMS:
                if flags & 4:
                    self.fail("VHDX has an unknown required metadata item")
                continue
            if length and (item_offset < 64 * 1024 or item_offset + length > len(region)):
                self.fail("VHDX metadata item lies outside the metadata region")
                continue
            items[item_id] = region[item_offset : item_offset + length]
        params = items.get(FILE_PARAMETERS, b"")
        size_item = items.get(VIRTUAL_DISK_SIZE, b"")
        sector_item = items.get(LOGICAL_SECTOR, b"")
        if len(params) < 8 or len(size_item) < 8 or len(sector_item) < 4:
            self.fail("VHDX required metadata items are missing")
            return
        block_size, param_flags = unpack("<II", params)
        (size,) = unpack("<Q", size_item)
        (sector,) = unpack("<I", sector_item)
        if param_flags & 2:
            self.fail("VHDX is a differencing disk (has-parent flag)")
        if block_size < MB or block_size > 256 * MB or block_size & (block_size - 1):
            self.fail(f"VHDX block size {block_size} is invalid")
            return
        if sector not in (512, 4096) or size % sector or size > MAX_SIZE:
            self.fail(f"VHDX virtual size {size} (sector {sector}) is invalid")
            return
        self.block_size = block_size
        self.check_virtual_size(size)
        self.have_size = True

    # -- BAT -----------------------------------------------------------------

    def _bat(self, offset: int, data: bytes) -> None:
        for entry in table_entries(data, 8, False):
            state = entry & 7
            if state not in BAT_VALID_STATES:
                self.fail(f"VHDX block allocation entry state {state} is invalid")
                return
            if state in BAT_PRESENT_STATES:
                block = entry & ~0xFFFFF
                if block < MB:
                    self.fail("VHDX block allocation entry points into the header area")
                    return
                self.max_block = max(self.max_block, block)

    def finish(self, size: int, tail: bytes) -> None:
        end = self.max_end
        if self.max_block >= 0:
            end = max(end, self.max_block + self.block_size)
        if end > size:
            self.fail(f"VHDX regions or blocks reach offset {end}, beyond the end of the "
                      f"{size}-byte image (truncated)")
        if not self.have_size and not self.reasons:
            self.fail("VHDX virtual size could not be read")
