"""Deciding what a stream is when more than one format's signature matches.

Signatures live at different offsets (offset 0, byte 64 for VDI, 32 KiB for
ISO, 510 for MBR/GPT, the last 512 bytes for a fixed VHD), so one file can
carry several. The primary format is the one qemu's probing would pick; any
other match is a polyglot and makes the image unsafe, except the pairs listed
in :data:`BENIGN` (see the table in :mod:`imagestore.formats`).
"""

from __future__ import annotations

from collections.abc import Sequence

from .base import FormatParser
from .verdict import FormatVerdict

__all__ = ["BENIGN", "PRIORITY", "decide"]

#: Order in which a match becomes the primary format: a header at offset 0
#: wins (that is what qemu probes), then VDI (byte 64, also probed by qemu),
#: then a fixed VHD footer, then ISO.
PRIORITY: tuple[str, ...] = (
    "qcow2", "qed", "vmdk", "vhdx", "luks", "vhd", "vdi", "vhd-fixed", "iso",
)

#: Primary formats that may carry a partition table at the start of the
#: guest disk without that being a polyglot: hybrid ISOs (isohybrid) and
#: fixed VHDs of partitioned disks (a fixed VHD is a raw disk plus a footer).
BENIGN: frozenset[str] = frozenset({"raw", "iso", "vhd-fixed"})


def _label(parser: FormatParser) -> str:
    if parser.name == "vhd" and getattr(parser, "fixed", False):
        return "vhd-fixed"
    return parser.name


def decide(
    matches: Sequence[FormatParser], table: FormatParser | None, size: int
) -> FormatVerdict:
    """Combine the parsers whose signature matched into one verdict."""
    ordered = sorted(matches, key=lambda p: PRIORITY.index(_label(p)))
    if not ordered:
        if table is None:
            return FormatVerdict("raw", True, (), size, None)
        return FormatVerdict("raw", table.safe, tuple(table.reasons), size, table.partition_table)
    primary = ordered[0]
    reasons = list(primary.reasons)
    for other in ordered[1:]:
        label = "fixed VHD" if _label(other) == "vhd-fixed" else other.name
        reasons.append(f"image is also a valid {label} image (polyglot)")
    partition_table = None
    if table is not None:
        if _label(primary) in BENIGN:
            partition_table = table.partition_table
            reasons.extend(table.reasons)
        else:
            reasons.append(f"image also carries an {str(table.partition_table).upper()} "
                           f"partition table (polyglot)")
    return FormatVerdict(primary.name, not reasons, tuple(reasons), primary.virtual_size,
                         partition_table)
