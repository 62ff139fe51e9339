"""ISO 9660 / UDF optical images: the volume descriptor set at sector 16.

The first 32 KiB (the "system area") of an ISO are free for boot code, which
is what makes ISO polyglots possible; the polyglot rules handle that. Here we
only read the primary volume descriptor and check the volume fits the file.
"""

from __future__ import annotations

from .base import FormatParser, unpack
from .stream import ByteStream

__all__ = ["IsoParser"]

SECTOR = 2048
DESCRIPTORS_START = 16 * SECTOR
ISO_IDS = (b"CD001",)
UDF_IDS = (b"BEA01", b"NSR02", b"NSR03", b"TEA01")
TYPE_PRIMARY = 1
TYPE_TERMINATOR = 255


class IsoParser(FormatParser):
    """ISO 9660 (size from the primary volume descriptor) or UDF (size = file size)."""

    name = "iso"

    def __init__(self, stream: ByteStream) -> None:
        super().__init__(stream)
        self.volume_size: int | None = None

    @classmethod
    def probe(cls, head: bytes) -> bool:
        ident = head[DESCRIPTORS_START + 1 : DESCRIPTORS_START + 6]
        return ident in ISO_IDS or ident in UDF_IDS

    def start(self, head: bytes) -> None:
        # Walk the volume descriptors the head holds (sectors 16..31).
        pos = DESCRIPTORS_START
        while pos + SECTOR <= len(head):
            kind, ident, version = head[pos], head[pos + 1 : pos + 6], head[pos + 6]
            if ident in UDF_IDS:
                pos += SECTOR
                continue
            if ident not in ISO_IDS:
                break
            if kind == TYPE_PRIMARY:
                if version != 1:
                    self.fail(f"ISO primary volume descriptor version {version} is invalid")
                (blocks_le,), (blocks_be,) = unpack("<I", head, pos + 80), unpack(">I", head, pos + 84)
                (block_le,), (block_be,) = unpack("<H", head, pos + 128), unpack(">H", head, pos + 130)
                if blocks_le != blocks_be or block_le != block_be:
                    self.fail("ISO volume descriptor both-endian fields disagree")
                    return
                if block_le not in (512, 1024, 2048):
                    self.fail(f"ISO logical block size {block_le} is invalid")
                    return
                self.volume_size = blocks_le * block_le
                return
            if kind == TYPE_TERMINATOR:
                break
            pos += SECTOR
        if head[DESCRIPTORS_START + 1 : DESCRIPTORS_START + 6] in ISO_IDS:
            self.fail("ISO 9660 image without a primary volume descriptor")

    def finish(self, size: int, tail: bytes) -> None:
        if self.volume_size is None:
            if not self.reasons:
                self.check_virtual_size(size)  # UDF: the whole file is the volume
            return
        if self.volume_size > size:
            self.fail(f"ISO volume of {self.volume_size} bytes is larger than the "
                      f"{size}-byte image (truncated)")
        # The guest sees the whole file as the medium (hybrid ISOs are often
        # padded), as qemu does.
        self.check_virtual_size(size)
