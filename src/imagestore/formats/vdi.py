"""VirtualBox VDI: a 512-byte header, a block map and 1 MiB data blocks.

Only static and dynamic images are self-contained; differencing and undo
images (or any parent/link UUID) depend on another file. Checks mirror what
qemu validates, plus that every allocated block fits in the file.
"""

from __future__ import annotations

from .base import FormatParser, table_entries, unpack
from .stream import ByteStream

__all__ = ["VdiParser"]

SIGNATURE = 0xBEDA107F
VERSION_1_1 = 0x00010001
TYPE_DYNAMIC, TYPE_STATIC = 1, 2
BLOCK_SIZE = 1024 * 1024
SECTOR = 512
HEADER = 512
MAX_BLOCKS = 0x3FFFFFFF
BLOCK_FREE = 0xFFFFFFFF
BLOCK_ZERO = 0xFFFFFFFE
NULL_UUID = bytes(16)


class VdiParser(FormatParser):
    """VDI header and block map; virtual size is the header's disk size."""

    name = "vdi"

    def __init__(self, stream: ByteStream) -> None:
        super().__init__(stream)
        self.data_end = 0
        self.blocks_allocated = 0

    @classmethod
    def probe(cls, head: bytes) -> bool:
        return len(head) >= 68 and int.from_bytes(head[64:68], "little") == SIGNATURE

    def start(self, head: bytes) -> None:
        if len(head) < HEADER:
            self.fail("VDI header truncated")
            return
        (version, _hsize, image_type, _flags) = unpack("<IIII", head, 68)
        (offset_bmap, offset_data, _c, _h, _s, sector_size, _unused, disk_size, block_size,
         block_extra, blocks, allocated) = unpack("<IIIIIIIQIIII", head, 340)
        link, parent = head[424:440], head[440:456]
        if version != VERSION_1_1:
            self.fail(f"VDI version {version >> 16}.{version & 0xFFFF} is not supported")
            return
        if image_type not in (TYPE_DYNAMIC, TYPE_STATIC):
            self.fail(f"VDI image type {image_type} depends on another image or is unknown")
        if link != NULL_UUID or parent != NULL_UUID:
            self.fail("VDI image has a parent or link UUID (it depends on another image)")
        if offset_bmap % SECTOR or offset_data % SECTOR or offset_bmap < HEADER:
            self.fail("VDI block map or data offset is not sector aligned")
            return
        if sector_size != SECTOR or block_size != BLOCK_SIZE or block_extra:
            self.fail("VDI sector or block size is not supported")
            return
        if blocks > MAX_BLOCKS or allocated > blocks:
            self.fail(f"VDI block counts {allocated}/{blocks} are invalid")
            return
        if disk_size > blocks * block_size:
            self.fail("VDI disk size is larger than its blocks")
        if offset_bmap + blocks * 4 > offset_data:
            self.fail("VDI block map overlaps the data area")
            return
        self.check_virtual_size(disk_size)
        self.blocks_allocated = allocated
        self.data_end = offset_data + allocated * block_size
        self.want_table(offset_bmap, blocks * 4, self._bmap, "VDI block map")

    def _bmap(self, offset: int, data: bytes) -> None:
        table = table_entries(data, 4, False)
        used = [entry for entry in table if entry < BLOCK_ZERO]
        if used and max(used) >= self.blocks_allocated:
            self.fail("VDI block map points past the allocated blocks")

    def finish(self, size: int, tail: bytes) -> None:
        if self.data_end > size:
            self.fail(f"VDI data blocks end at {self.data_end}, beyond the {size}-byte "
                      f"image (truncated)")
