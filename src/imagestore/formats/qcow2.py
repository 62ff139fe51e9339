"""QEMU qcow2 (v2 and v3): backing files, external data files, feature bits, tables.

Checks the header fields qemu itself validates, walks the header extensions
of the first cluster, the active L1/L2 tables and the refcount table, and
fails when anything refers outside the image or beyond its end.
"""

from __future__ import annotations

from .base import FormatParser, printable, table_entries, unpack
from .stream import HEAD_SIZE, ByteStream

__all__ = ["Qcow2Parser"]

MAGIC = b"QFI\xfb"
MIN_CLUSTER_BITS = 9
MAX_CLUSTER_BITS = 21
MAX_L1_BYTES = 32 * 1024 * 1024  # qemu QCOW_MAX_L1_SIZE
MAX_REFTABLE_BYTES = 8 * 1024 * 1024  # qemu QCOW_MAX_REFTABLE_SIZE
MAX_SNAPSHOTS = 65536

INCOMPAT_DIRTY = 1 << 0
INCOMPAT_CORRUPT = 1 << 1
INCOMPAT_DATA_FILE = 1 << 2
INCOMPAT_COMPRESSION = 1 << 3
INCOMPAT_EXTL2 = 1 << 4
INCOMPAT_KNOWN = (1 << 5) - 1

EXT_END = 0
EXT_BACKING_FORMAT = 0xE2792ACA
EXT_FEATURE_TABLE = 0x6803F857
EXT_CRYPTO = 0x0537BE77
EXT_BITMAPS = 0x23852875
EXT_DATA_FILE = 0x44415441

OFFSET_MASK = 0x00FFFFFFFFFFFE00  # bits 9-55 of L1/L2/refcount entries
COMPRESSED = 1 << 62


class Qcow2Parser(FormatParser):
    """qcow2: unsafe with a backing file, data file, unknown features or bad tables."""

    name = "qcow2"

    def __init__(self, stream: ByteStream) -> None:
        super().__init__(stream)
        self.cluster_bits = 16
        self.cluster_size = 1 << 16
        self.extended_l2 = False
        self.external_data = False
        self.max_end = 0  # highest byte any table says the file holds
        self.l2_seen: set[int] = set()
        self.minimum_size = 0
        self.snapshots_offset = 0

    @classmethod
    def probe(cls, head: bytes) -> bool:
        return head[:4] == MAGIC

    def start(self, head: bytes) -> None:
        if len(head) < 72:
            self.fail("qcow2 header truncated")
            return
        (_, version, bf_offset, bf_size, cluster_bits, size, crypt, l1_size, l1_offset,
         rt_offset, rt_clusters, nb_snapshots, snapshots_offset) = unpack(">4sIQIIQIIQQIIQ", head)
        if version not in (2, 3):
            self.fail(f"unsupported qcow2 version {version}")
            return
        incompat = compat = 0
        refcount_order, header_length, compression = 4, 72, 0
        if version == 3:
            if len(head) < 104:
                self.fail("qcow2 v3 header truncated")
                return
            incompat, compat, _autoclear, refcount_order, header_length = unpack(">QQQII", head, 72)
            if header_length > 104 and len(head) > 104:
                compression = head[104]
        if not MIN_CLUSTER_BITS <= cluster_bits <= MAX_CLUSTER_BITS:
            self.fail(f"qcow2 cluster_bits {cluster_bits} out of range "
                      f"[{MIN_CLUSTER_BITS}, {MAX_CLUSTER_BITS}]")
            return
        cs = 1 << cluster_bits
        self.cluster_bits, self.cluster_size = cluster_bits, cs
        self.check_virtual_size(size)

        if bf_offset or bf_size:
            name = b""
            if 0 < bf_offset < len(head):
                name = head[bf_offset : bf_offset + min(bf_size, 1023)]
            self.fail(f"qcow2 image has a backing file {printable(name)}")
        if version == 3:
            if header_length < 104 or header_length > cs or header_length % 8:
                self.fail(f"qcow2 header length {header_length} is invalid")
                return
            unknown = incompat & ~INCOMPAT_KNOWN
            if unknown:
                self.fail(f"qcow2 image has unknown incompatible feature bits {unknown:#x}")
            if incompat & INCOMPAT_DATA_FILE:
                self.external_data = True
                self.fail("qcow2 image uses an external data file")
            if incompat & INCOMPAT_CORRUPT:
                self.fail("qcow2 image is marked corrupt")
            if incompat & INCOMPAT_COMPRESSION:
                if header_length <= 104 or compression not in (0, 1):
                    self.fail(f"qcow2 compression type {compression} is unknown")
            elif compression != 0:
                self.fail("qcow2 compression type set without its feature bit")
            if incompat & INCOMPAT_EXTL2:
                self.extended_l2 = True
                if cluster_bits < 14:
                    self.fail("qcow2 extended L2 entries need clusters of at least 16 KiB")
            if refcount_order > 6:
                self.fail(f"qcow2 refcount order {refcount_order} out of range")
        if crypt not in (0, 2):
            self.fail(f"qcow2 encryption method {crypt} is not supported (legacy AES or unknown)")

        # Tables: alignment, size limits, and that the L1 table covers the disk.
        entry_bits = 4 if self.extended_l2 else 3
        l2_coverage = cs << (cluster_bits - entry_bits)
        if self.virtual_size is not None and l1_size < -(-size // l2_coverage):
            self.fail(f"qcow2 L1 table ({l1_size} entries) too small for virtual size {size}")
        if l1_size * 8 > MAX_L1_BYTES:
            self.fail(f"qcow2 L1 table of {l1_size} entries is too large")
            return
        if l1_offset % cs or (l1_size and l1_offset == 0):
            self.fail(f"qcow2 L1 table offset {l1_offset:#x} is invalid")
            return
        if rt_offset % cs or rt_offset == 0:
            self.fail(f"qcow2 refcount table offset {rt_offset:#x} is invalid")
            return
        if rt_clusters * cs > MAX_REFTABLE_BYTES or rt_clusters == 0:
            self.fail(f"qcow2 refcount table of {rt_clusters} clusters is invalid")
            return
        if nb_snapshots > MAX_SNAPSHOTS:
            self.fail(f"qcow2 image claims {nb_snapshots} snapshots")
        if nb_snapshots and (snapshots_offset % cs or snapshots_offset == 0):
            self.fail(f"qcow2 snapshot table offset {snapshots_offset:#x} is invalid")
        if nb_snapshots:
            self.snapshots_offset = snapshots_offset
        self.minimum_size = header_length

        ext_start = header_length if version == 3 else 72
        if cs <= HEAD_SIZE and len(head) >= cs:
            self._extensions(0, head[:cs], ext_start)
        else:
            self.want(0, cs, lambda off, data: self._extensions(off, data, ext_start),
                      "qcow2 header cluster")
        if l1_size:
            self.want_table(l1_offset, l1_size * 8, self._l1, "qcow2 L1 table")
        self.want_table(rt_offset, rt_clusters * cs, self._reftable, "qcow2 refcount table")

    # -- header extensions ---------------------------------------------------

    def _extensions(self, offset: int, cluster: bytes, pos: int) -> None:
        if len(cluster) < self.cluster_size:
            self.fail("qcow2 header cluster truncated")
            return
        while True:
            if pos + 8 > len(cluster):
                self.fail("qcow2 header extensions run past the first cluster")
                return
            ext_type, ext_len = unpack(">II", cluster, pos)
            if ext_type == EXT_END:
                return
            body = pos + 8
            if body + ext_len > len(cluster):
                self.fail(f"qcow2 header extension {ext_type:#x} runs past the first cluster")
                return
            if ext_type == EXT_DATA_FILE:
                name = cluster[body : body + ext_len]
                self.fail(f"qcow2 image names an external data file {printable(name)}")
            elif ext_type == EXT_CRYPTO and ext_len >= 16:
                crypt_offset, crypt_len = unpack(">QQ", cluster, body)
                if crypt_offset % self.cluster_size:
                    self.fail("qcow2 encryption header offset is not cluster aligned")
                self.max_end = max(self.max_end, crypt_offset + crypt_len)
            pos = body + (ext_len + 7) // 8 * 8

    # -- tables --------------------------------------------------------------

    def _l1(self, offset: int, table: bytes) -> None:
        cs = self.cluster_size
        for entry in table_entries(table, 8, True):
            if not entry:
                continue
            if self.overflowed:
                return
            l2 = entry & OFFSET_MASK
            if not self.claim_table(l2, self.l2_seen, "qcow2 L2 table", cs):
                return
            self.max_end = max(self.max_end, l2 + cs)
            if not self.external_data:
                # An L2 table written before its L1 table (an L1 grown by a
                # resize moves to the end of the file) cannot be re-read:
                # its offset is still checked against the file size.
                self.want(l2, cs, self._l2, "qcow2 L2 table", missing_ok=True)

    def _l2(self, offset: int, data: bytes) -> None:
        cs, bits = self.cluster_size, self.cluster_bits
        x = 62 - (bits - 8)
        offset_mask = (1 << x) - 1
        sector_mask = (1 << (bits - 8)) - 1
        entries = table_entries(data, 8, True)
        bitmaps = entries[1::2] if self.extended_l2 else None
        if bitmaps is not None:
            entries = entries[::2]
        sub = cs // 32
        end = self.max_end
        for index, entry in enumerate(entries):
            if not entry:
                continue
            if entry & COMPRESSED:
                host = entry & offset_mask
                sectors = ((entry >> x) & sector_mask) + 1
                # qemu-img pads the file to a whole sector after compressed
                # data, so the last sector of every compressed cluster exists.
                end = max(end, (host & ~511) + sectors * 512)
            else:
                host = entry & OFFSET_MASK
                if host:
                    if host % cs:
                        self.fail(f"qcow2 data cluster {host:#x} is not cluster aligned")
                        return
                    if bitmaps is None:
                        end = max(end, host + cs)
                    else:
                        # Extended L2: only allocated subclusters are written.
                        allocated = bitmaps[index] & 0xFFFFFFFF
                        end = max(end, host + allocated.bit_length() * sub)
        self.max_end = end

    def _reftable(self, offset: int, table: bytes) -> None:
        cs = self.cluster_size
        for entry in table_entries(table, 8, True):
            block = entry & ~0x1FF
            if block:
                if block % cs:
                    self.fail(f"qcow2 refcount block {block:#x} is not cluster aligned")
                    return
                self.max_end = max(self.max_end, block + cs)

    def finish(self, size: int, tail: bytes) -> None:
        if self.max_end > size:
            self.fail(f"qcow2 tables reference offset {self.max_end} beyond the end of the "
                      f"{size}-byte image (truncated)")
        if self.minimum_size > size or (self.snapshots_offset and self.snapshots_offset >= size):
            self.fail("qcow2 header structures lie beyond the end of the image (truncated)")
