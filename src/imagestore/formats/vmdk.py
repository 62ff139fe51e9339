"""VMware VMDK: hosted sparse extents (monolithicSparse, streamOptimized) and descriptors.

Only two kinds are self-contained: a monolithicSparse or streamOptimized file
whose embedded descriptor has a single SPARSE extent (the file itself) and no
parent. A bare descriptor file is unsafe whatever it says: its extents are
other files (OSSA-2015-014 style host-file reads). Sparse files get their
grain directory and grain tables walked so that truncation is caught; stream
optimized files must end with their footer and end-of-stream marker.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from .base import FormatParser, printable, table_entries, unpack
from .stream import ByteStream

__all__ = ["Descriptor", "VmdkParser", "looks_like_descriptor", "parse_descriptor"]

MAGIC = b"KDMV"
COWD_MAGIC = b"COWD"
HEADER = 512
GD_AT_END = 0xFFFFFFFFFFFFFFFF
MAX_DESCRIPTOR = 1024 * 1024
MAX_GRAIN_SECTORS = 0x200000
MAX_GD_BYTES = 32 * 1024 * 1024
FLAG_NEWLINE_TEST = 1 << 0
FLAG_REDUNDANT_GT = 1 << 1
FLAG_COMPRESSED = 1 << 16
FLAG_MARKERS = 1 << 17
MARKER_FOOTER = 3
SELF_CONTAINED = frozenset({"monolithicsparse", "streamoptimized"})

_EXTENT = re.compile(
    r'^(RW|RDONLY|NOACCESS)\s+(\d+)\s+([A-Za-z]+)(?:\s+"([^"]*)"(?:\s+(\d+))?)?\s*$',
    re.IGNORECASE,
)
_FIELD = re.compile(r"^([A-Za-z0-9_.]+)\s*=\s*(.*)$")
_VERSION_LINE = re.compile(rb"^\s*version\s*=", re.IGNORECASE)


@dataclass
class Descriptor:
    """A parsed VMDK descriptor: header fields, extents and lines not understood."""

    fields: dict[str, str] = field(default_factory=dict)
    extents: list[tuple[str, int, str, str | None]] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    @property
    def create_type(self) -> str:
        return self.fields.get("createtype", "")


def parse_descriptor(text: str) -> Descriptor:
    """Parse descriptor text cautiously: every line must be understood."""
    desc = Descriptor()
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        extent = _EXTENT.match(line)
        if extent:
            access, sectors, kind, name, _offset = extent.groups()
            desc.extents.append((access.upper(), int(sectors), kind.upper(), name))
            continue
        pair = _FIELD.match(line)
        if pair:
            desc.fields[pair.group(1).lower()] = pair.group(2).strip().strip('"')
            continue
        if len(desc.problems) < 3:
            desc.problems.append(f"unrecognised VMDK descriptor line {printable(line.encode(), 40)}")
    return desc


def looks_like_descriptor(head: bytes) -> bool:
    """True for a text descriptor: comments/blank lines, then ``version=``.

    This is qemu's probe for descriptor files, made a little more permissive
    (any blank line, and a "# Disk DescriptorFile" banner anywhere near the top).
    """
    if head[:1024].find(b"# Disk DescriptorFile") >= 0:
        return True
    for line in head[:4096].split(b"\n"):
        stripped = line.strip()
        if not stripped or stripped.startswith(b"#"):
            continue
        return bool(_VERSION_LINE.match(stripped))
    return False


def _decode(data: bytes) -> str | None:
    text = data.split(b"\x00", 1)[0]
    try:
        return text.decode("utf-8")
    except UnicodeDecodeError:
        return None


class VmdkParser(FormatParser):
    """VMDK sparse header, embedded descriptor, grain tables; bare descriptors are unsafe."""

    name = "vmdk"

    def __init__(self, stream: ByteStream) -> None:
        super().__init__(stream)
        self.header = b""
        self.capacity = 0
        self.grain = 0
        self.compressed = False
        self.markers = False
        self.last_grain = 0
        self.stream_footer = False
        self.max_end = 0
        self.tables_seen: set[int] = set()

    @classmethod
    def probe(cls, head: bytes) -> bool:
        return head[:4] in (MAGIC, COWD_MAGIC) or looks_like_descriptor(head)

    def start(self, head: bytes) -> None:
        if head[:4] == COWD_MAGIC:
            self.fail("legacy VMDK3 (COWD) sparse image: it can name a parent file")
            return
        if head[:4] != MAGIC:
            self._bare_descriptor(head)
            return
        if len(head) < HEADER:
            self.fail("VMDK header truncated")
            return
        (_, version, flags, capacity, grain, desc_sector, desc_sectors, gtes, rgd, gd,
         overhead) = unpack("<4sIIQQQQIQQQ", head)
        compress = unpack("<H", head, 77)[0]
        if version not in (1, 2, 3):
            self.fail(f"VMDK sparse version {version} is not supported")
            return
        if flags & FLAG_NEWLINE_TEST and head[73:77] != b"\n \r\n":
            self.fail("VMDK header line-end test failed (corrupted by a text-mode transfer)")
        self.check_virtual_size(capacity * 512)
        if grain == 0 or grain & (grain - 1) or grain > MAX_GRAIN_SECTORS:
            self.fail(f"VMDK grain size {grain} is invalid")
            return
        if not 1 <= gtes <= 512:
            self.fail(f"VMDK grain table size {gtes} is invalid")
            return
        if compress not in (0, 1) or (flags & FLAG_COMPRESSED and compress != 1):
            self.fail(f"VMDK compression algorithm {compress} is not supported")
        self.header = head[:HEADER]
        self.capacity, self.grain = capacity, grain
        self.compressed = bool(flags & FLAG_COMPRESSED)
        self.markers = bool(flags & FLAG_MARKERS)
        self.max_end = overhead * 512

        if desc_sector == 0 or desc_sectors == 0:
            self.fail("VMDK sparse extent has no embedded descriptor (part of a multi-file disk)")
        elif desc_sectors * 512 > MAX_DESCRIPTOR:
            self.fail(f"VMDK embedded descriptor of {desc_sectors} sectors is too large")
        else:
            self.want(desc_sector * 512, desc_sectors * 512, self._embedded_descriptor,
                      "VMDK embedded descriptor")

        if gd == GD_AT_END:
            self.stream_footer = True  # the footer at the end holds the real header
            return
        gd_entries = -(-capacity // (grain * gtes))
        if gd_entries * 4 > MAX_GD_BYTES:
            self.fail(f"VMDK grain directory of {gd_entries} entries is too large")
            return
        if gd == 0:
            self.fail("VMDK grain directory offset is missing")
            return
        if flags & FLAG_REDUNDANT_GT and rgd:
            self.max_end = max(self.max_end, rgd * 512 + gd_entries * 4)
        self.want_table(gd * 512, gd_entries * 4, lambda o, d: self._gd(d, gtes),
                        "VMDK grain directory")

    # -- descriptors ---------------------------------------------------------

    def _embedded_descriptor(self, offset: int, data: bytes) -> None:
        text = _decode(data)
        if text is None:
            self.fail("VMDK embedded descriptor is not valid UTF-8 text")
            return
        desc = parse_descriptor(text)
        for problem in desc.problems:
            self.fail(problem)
        kind = desc.create_type
        if kind.lower() not in SELF_CONTAINED:
            self.fail(f"VMDK createType {printable(kind.encode(), 40)} is not a self-contained type")
        if desc.fields.get("parentcid", "ffffffff").lower() != "ffffffff" \
                or "parentfilenamehint" in desc.fields:
            self.fail("VMDK image has a parent (parentCID / parentFileNameHint)")
        if len(desc.extents) != 1:
            self.fail(f"VMDK embedded descriptor lists {len(desc.extents)} extents (expected 1)")
            return
        access, sectors, kind, name = desc.extents[0]
        if kind != "SPARSE" or access == "NOACCESS":
            self.fail(f"VMDK extent of type {kind} is not the file itself")
        if not name or "/" in name or "\\" in name or ".." in name or ":" in name:
            self.fail(f"VMDK extent names another file {printable((name or '').encode(), 60)}")
        if sectors != self.capacity:
            self.fail("VMDK extent size disagrees with the header capacity")

    def _bare_descriptor(self, head: bytes) -> None:
        text = _decode(head) or ""
        desc = parse_descriptor(text)
        names = [printable((name or "").encode(), 60) for _, _, _, name in desc.extents[:3]]
        detail = f" ({', '.join(names)})" if names else ""
        self.fail(f"VMDK descriptor file (createType {printable(desc.create_type.encode(), 40)}) "
                  f"references external extent files{detail}")
        self.check_virtual_size(sum(sectors for _, sectors, _, _ in desc.extents) * 512)

    # -- grain directory / tables -------------------------------------------

    def _gd(self, data: bytes, gtes: int) -> None:
        for entry in table_entries(data, 4, False):
            if not entry:
                continue
            if self.overflowed:
                return
            if not self.claim_table(entry, self.tables_seen, "VMDK grain table"):
                return
            self.max_end = max(self.max_end, entry * 512 + gtes * 4)
            self.want(entry * 512, gtes * 4, self._gt, "VMDK grain table", missing_ok=True)

    def _gt(self, offset: int, data: bytes) -> None:
        used = [entry for entry in table_entries(data, 4, False) if entry > 1]
        if not used:
            return
        last = max(used) * 512
        if not self.compressed:
            self.max_end = max(self.max_end, last + self.grain * 512)
        elif last > self.last_grain:
            # A compressed grain starts with a marker (LBA, size): read it to
            # know where the grain ends.
            self.last_grain = last
            self.max_end = max(self.max_end, last + 1)
            self.want(last, 12, self._grain_marker, "VMDK compressed grain", missing_ok=True)

    def _grain_marker(self, offset: int, marker: bytes) -> None:
        _lba, size = unpack("<QI", marker)
        self.max_end = max(self.max_end, offset + 12 + size)

    # -- stream-optimized footer and size checks -----------------------------

    def finish(self, size: int, tail: bytes) -> None:
        if self.stream_footer:
            self._footer(size, tail)
        elif self.markers and (size % 512 or len(tail) < 512 or any(tail[-512:])):
            self.fail("VMDK stream does not end with an end-of-stream marker (truncated)")
        if self.max_end > size:
            self.fail(f"VMDK metadata or grains reference offset {self.max_end} beyond the "
                      f"end of the {size}-byte image (truncated)")

    def _footer(self, size: int, tail: bytes) -> None:
        if len(tail) < 1536 or size < HEADER + 1536:
            self.fail("VMDK stream footer missing (truncated)")
            return
        marker, footer, eos = tail[-1536:-1024], tail[-1024:-512], tail[-512:]
        _value, msize, mtype = unpack("<QII", marker)
        if msize or mtype != MARKER_FOOTER or any(marker[16:]):
            self.fail("VMDK stream footer marker missing (truncated)")
            return
        if any(eos):
            self.fail("VMDK end-of-stream marker missing (truncated)")
            return
        if footer[:56] != self.header[:56] or footer[64:79] != self.header[64:79]:
            self.fail("VMDK stream footer disagrees with the header")
            return
        (gd,) = unpack("<Q", footer, 56)
        if gd == GD_AT_END or gd == 0 or gd * 512 >= size - 1536:
            self.fail(f"VMDK stream footer grain directory offset {gd:#x} is invalid")
