"""QEMU Enhanced Disk (QED): backing files, feature bits and the two-level table.

QED is deprecated in qemu but still opened by it, so it gets the same
scrutiny as qcow2: a backing file or an unknown feature is unsafe, and every
table and data cluster must lie inside the file.
"""

from __future__ import annotations

from .base import FormatParser, printable, table_entries, unpack
from .stream import ByteStream

__all__ = ["QedParser"]

MAGIC = b"QED\x00"
HEADER = 64
F_BACKING_FILE = 0x01
F_NEED_CHECK = 0x02
F_BACKING_NO_PROBE = 0x04
F_KNOWN = F_BACKING_FILE | F_NEED_CHECK | F_BACKING_NO_PROBE
MIN_CLUSTER, MAX_CLUSTER = 4096, 64 * 1024 * 1024
ZERO_CLUSTER = 1


def _power_of_two(value: int) -> bool:
    return value > 0 and value & (value - 1) == 0


class QedParser(FormatParser):
    """QED header, L1/L2 tables; virtual size is the header's image size."""

    name = "qed"

    def __init__(self, stream: ByteStream) -> None:
        super().__init__(stream)
        self.cluster_size = 0
        self.table_bytes = 0
        self.max_end = 0
        self.tables_seen: set[int] = set()

    @classmethod
    def probe(cls, head: bytes) -> bool:
        return head[:4] == MAGIC

    def start(self, head: bytes) -> None:
        if len(head) < HEADER:
            self.fail("QED header truncated")
            return
        (_, cluster, table_size, header_size, features, _compat, _autoclear, l1_offset,
         image_size, bf_offset, bf_size) = unpack("<4sIIIQQQQQII", head)
        if features & F_BACKING_FILE or bf_offset or bf_size:
            name = head[bf_offset : bf_offset + min(bf_size, 1023)] if bf_offset else b""
            self.fail(f"QED image has a backing file {printable(name)}")
        if features & ~F_KNOWN:
            self.fail(f"QED image has unknown feature bits {features & ~F_KNOWN:#x}")
        if not _power_of_two(cluster) or not MIN_CLUSTER <= cluster <= MAX_CLUSTER:
            self.fail(f"QED cluster size {cluster} is invalid")
            return
        if not _power_of_two(table_size) or table_size > 16:
            self.fail(f"QED table size {table_size} is invalid")
            return
        if header_size == 0 or header_size * cluster > 1 << 31:
            self.fail(f"QED header size {header_size} is invalid")
            return
        table_bytes = table_size * cluster
        entries = table_bytes // 8
        if image_size % 512 or image_size > cluster * entries * entries:
            self.fail(f"QED image size {image_size} is invalid")
        self.check_virtual_size(image_size)
        if l1_offset % cluster or l1_offset < header_size * cluster:
            self.fail(f"QED L1 table offset {l1_offset:#x} is invalid")
            return
        self.cluster_size, self.table_bytes = cluster, table_bytes
        self.max_end = header_size * cluster
        self.tables_seen.add(l1_offset)
        self.want_table(l1_offset, table_bytes, self._l1, "QED L1 table")

    def _l1(self, offset: int, data: bytes) -> None:
        for entry in table_entries(data, 8, False):
            if not entry:
                continue
            if self.overflowed:
                return
            if not self.claim_table(entry, self.tables_seen, "QED L2 table", self.cluster_size):
                return
            self.max_end = max(self.max_end, entry + self.table_bytes)
            self.want_table(entry, self.table_bytes, self._l2, "QED L2 table", missing_ok=True)

    def _l2(self, offset: int, data: bytes) -> None:
        used = [entry for entry in table_entries(data, 8, False) if entry > ZERO_CLUSTER]
        if not used:
            return
        if any(entry % self.cluster_size for entry in used):
            self.fail("QED data cluster offset is not cluster aligned")
            return
        self.max_end = max(self.max_end, max(used) + self.cluster_size)

    def finish(self, size: int, tail: bytes) -> None:
        if self.max_end > size:
            self.fail(f"QED tables reference offset {self.max_end} beyond the end of the "
                      f"{size}-byte image (truncated)")
