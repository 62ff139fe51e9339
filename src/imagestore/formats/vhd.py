"""Microsoft VHD ("vpc" in qemu): fixed disks (footer at the end only) and dynamic disks.

A fixed VHD is raw data followed by a 512-byte footer, so it can only be
recognised once the stream has ended. A dynamic VHD starts with a copy of the
footer, then a dynamic header and a block allocation table (BAT), and ends
with the footer. Differencing disks name a parent file: always unsafe.
"""

from __future__ import annotations

from .base import FormatParser, table_entries, unpack
from .stream import ByteStream

__all__ = ["VhdParser"]

COOKIE = b"conectix"
DYNAMIC_COOKIE = b"cxsparse"
FOOTER = 512
DYN_HEADER = 1024
TYPE_FIXED, TYPE_DYNAMIC, TYPE_DIFFERENCING = 2, 3, 4
NO_OFFSET = 0xFFFFFFFFFFFFFFFF
UNALLOCATED = 0xFFFFFFFF
MAX_GEOMETRY = 65535 * 16 * 255
MAX_BAT_BYTES = 32 * 1024 * 1024


def _checksum(block: bytes, field: int) -> int:
    """One's complement of the byte sum, skipping the 4-byte checksum field."""
    return ~(sum(block) - sum(block[field : field + 4])) & 0xFFFFFFFF


class VhdParser(FormatParser):
    """VHD footer, dynamic header and BAT checks; virtual size computed like qemu."""

    name = "vhd"

    def __init__(self, stream: ByteStream, fixed: bool = False) -> None:
        super().__init__(stream)
        self.fixed = fixed
        self.footer = b""
        self.block_size = 0
        self.max_end = 0

    @classmethod
    def probe(cls, head: bytes) -> bool:
        return head[:8] == COOKIE

    @classmethod
    def probe_footer(cls, tail: bytes) -> bool:
        """True when the stream ends with a VHD footer (fixed VHD)."""
        return len(tail) >= FOOTER and tail[-FOOTER:][:8] == COOKIE

    def _parse_footer(self, footer: bytes) -> int | None:
        """Check a footer; return its disk type, or None when unusable."""
        if len(footer) < FOOTER:
            self.fail("VHD footer truncated")
            return None
        (_, _features, version, _data_offset, _ts, creator, _cv, _os, _orig, current,
         cyls, heads, secs, disk_type, checksum) = unpack(">8sIIQI4sI4sQQHBBII", footer)
        if checksum != _checksum(footer[:FOOTER], 64):
            self.fail("VHD footer checksum mismatch")
        if version >> 16 != 1:
            self.fail(f"VHD format version {version:#x} is not supported")
        if disk_type == TYPE_DIFFERENCING:
            self.fail("VHD is a differencing disk (it names a parent image)")
            return None
        if disk_type not in (TYPE_FIXED, TYPE_DYNAMIC):
            self.fail(f"VHD disk type {disk_type} is unknown")
            return None
        # qemu: Virtual PC and qemu-made images size the disk by CHS geometry,
        # everything else (and maximal geometry) by current_size.
        chs = cyls * heads * secs
        if creator in (b"vpc ", b"qemu") and chs != MAX_GEOMETRY:
            self.check_virtual_size(chs * 512)
        else:
            self.check_virtual_size(current // 512 * 512)
        self.footer = footer[:FOOTER]
        return int(disk_type)

    # -- dynamic (footer copy at offset 0) -----------------------------------

    def start(self, head: bytes) -> None:
        disk_type = self._parse_footer(head[:FOOTER])
        if disk_type is None:
            return
        if disk_type == TYPE_FIXED:
            self.fail("VHD footer at the start of a fixed disk (fixed disks end with it)")
            return
        (data_offset,) = unpack(">Q", head, 16)
        if data_offset == NO_OFFSET or data_offset < FOOTER or data_offset % 512:
            self.fail(f"VHD dynamic header offset {data_offset:#x} is invalid")
            return
        self.want(data_offset, DYN_HEADER, self._dynamic_header, "VHD dynamic header")

    def _dynamic_header(self, offset: int, header: bytes) -> None:
        (cookie, _data_offset, table_offset, version, entries, block_size,
         checksum) = unpack(">8sQQIIII", header)
        if cookie != DYNAMIC_COOKIE:
            self.fail("VHD dynamic header signature missing")
            return
        if checksum != _checksum(header, 36):
            self.fail("VHD dynamic header checksum mismatch")
        if version >> 16 != 1:
            self.fail(f"VHD dynamic header version {version:#x} is not supported")
        for i in range(8):
            code, _space, length, _, _loc = unpack(">IIIIQ", header, 576 + 24 * i)
            if code or length:
                self.fail("VHD dynamic disk has a parent locator (it names another file)")
                break
        if block_size < 512 or block_size & (block_size - 1):
            self.fail(f"VHD block size {block_size} is invalid")
            return
        if self.virtual_size is not None and entries * block_size < self.virtual_size:
            self.fail("VHD block allocation table is too small for the virtual size")
        if entries * 4 > MAX_BAT_BYTES:
            self.fail(f"VHD block allocation table of {entries} entries is too large")
            return
        if table_offset % 512 or table_offset < FOOTER:
            self.fail(f"VHD block allocation table offset {table_offset:#x} is invalid")
            return
        self.block_size = block_size
        self.want_table(table_offset, entries * 4, self._bat, "VHD block allocation table")

    def _bat(self, offset: int, data: bytes) -> None:
        table = table_entries(data, 4, True)
        bitmap = (self.block_size // (8 * 512) + 511) // 512 * 512
        used = [entry for entry in table if entry != UNALLOCATED]
        if used:
            self.max_end = max(self.max_end, max(used) * 512 + bitmap + self.block_size)

    # -- fixed (footer at the end) and the trailing footer of dynamic disks ---

    def finish(self, size: int, tail: bytes) -> None:
        if self.fixed:
            disk_type = self._parse_footer(tail[-FOOTER:])
            if disk_type == TYPE_DYNAMIC:
                self.fail("dynamic VHD without the footer copy at offset 0")
            elif disk_type == TYPE_FIXED and self.virtual_size is not None \
                    and self.virtual_size > size - FOOTER:
                self.fail(f"VHD virtual size {self.virtual_size} exceeds the "
                          f"{size - FOOTER} data bytes of the image (truncated)")
            return
        if not self.footer:
            return
        if len(tail) < FOOTER or size < 2 * FOOTER or tail[-FOOTER:] != self.footer:
            self.fail("dynamic VHD does not end with a copy of its footer (truncated)")
        if self.max_end > size - FOOTER:
            self.fail(f"VHD blocks reference offset {self.max_end} beyond the end of the "
                      f"image data (truncated)")
