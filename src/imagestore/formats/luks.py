"""LUKS (version 1) encrypted disks, the only LUKS version qemu opens.

The header and key slots must be consistent the way qemu checks them; the
payload (the encrypted guest disk) starts at ``payload_offset`` sectors and
runs to the end of the file, so its size is the virtual size.
"""

from __future__ import annotations

from .base import FormatParser, unpack
from .stream import ByteStream

__all__ = ["LuksParser"]

MAGIC = b"LUKS\xba\xbe"
HEADER = 592
SECTOR = 512
SLOTS = 8
SLOT_ACTIVE = 0x00AC71F3
SLOT_INACTIVE = 0x0000DEAD
STRIPES = 4000
KEY_BYTES = (16, 24, 32, 48, 64)


def _text_ok(field: bytes) -> bool:
    text = field.split(b"\x00", 1)[0]
    return bool(text) and all(0x20 < byte < 0x7F for byte in text)


class LuksParser(FormatParser):
    """LUKS1 header and key-slot layout; LUKS2 is unsafe (qemu cannot open it)."""

    name = "luks"

    def __init__(self, stream: ByteStream) -> None:
        super().__init__(stream)
        self.payload = 0

    @classmethod
    def probe(cls, head: bytes) -> bool:
        return head[:6] == MAGIC

    def start(self, head: bytes) -> None:
        if len(head) < 8:
            self.fail("LUKS header truncated")
            return
        (version,) = unpack(">H", head, 6)
        if version != 1:
            self.fail(f"LUKS version {version} is not supported")
            return
        if len(head) < HEADER:
            self.fail("LUKS header truncated")
            return
        cipher, mode, hash_spec = head[8:40], head[40:72], head[72:104]
        payload_sectors, key_bytes = unpack(">II", head, 104)
        if not (_text_ok(cipher) and _text_ok(mode) and _text_ok(hash_spec)):
            self.fail("LUKS cipher, mode or hash name is not valid text")
        if key_bytes not in KEY_BYTES:
            self.fail(f"LUKS key size {key_bytes} is invalid")
            return
        payload = payload_sectors * SECTOR
        if payload < HEADER:
            self.fail(f"LUKS payload offset {payload} overlaps the header")
            return
        active: list[tuple[int, int]] = []
        for i in range(SLOTS):
            state, iterations, km_sector, stripes = unpack(">II32xII", head, 208 + 48 * i)
            if state not in (SLOT_ACTIVE, SLOT_INACTIVE):
                self.fail(f"LUKS key slot {i} state {state:#x} is invalid")
                continue
            start = km_sector * SECTOR
            end = start + key_bytes * stripes
            if stripes != STRIPES:
                self.fail(f"LUKS key slot {i} has {stripes} stripes (expected {STRIPES})")
            elif start < HEADER or end > payload:
                self.fail(f"LUKS key slot {i} key material lies outside the header area")
            if state == SLOT_ACTIVE:
                if iterations == 0:
                    self.fail(f"LUKS key slot {i} has zero iterations")
                for other_start, other_end in active:
                    if start < other_end and other_start < end:
                        self.fail(f"LUKS key slot {i} overlaps another key slot")
                active.append((start, end))
        if not active:
            self.fail("LUKS image has no active key slot")
        self.payload = payload

    def finish(self, size: int, tail: bytes) -> None:
        if not self.payload:
            return
        if size < self.payload:
            self.fail(f"LUKS payload offset {self.payload} is beyond the end of the "
                      f"{size}-byte image (truncated)")
            return
        data = size - self.payload
        if data % SECTOR:
            self.fail("LUKS payload is not a whole number of sectors (truncated)")
        self.check_virtual_size(data)
