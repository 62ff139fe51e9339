"""The result of inspecting an image: :class:`FormatVerdict`, plus the shared limits."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

__all__ = ["BANNED_BY_DEFAULT", "DEFAULT_ALLOWED_FORMATS", "KNOWN_FORMATS", "MAX_VIRTUAL_SIZE", "FormatVerdict"]

#: Every disk format imagestore can detect (glance ``disk_format`` names).
KNOWN_FORMATS: frozenset[str] = frozenset(
    {"raw", "qcow2", "qed", "vmdk", "vhd", "vhdx", "vdi", "iso", "luks"}
)

#: Formats refused unless a store lists them in ``allowed_formats``: no consumer
#: boots them. QED is detected only to be refused (oslo.utils' format_inspector
#: bans it, and os-test-images marks it "should not be supported by any service").
BANNED_BY_DEFAULT: frozenset[str] = frozenset({"qed"})

#: What a store accepts when it sets no ``allowed_formats``.
DEFAULT_ALLOWED_FORMATS: frozenset[str] = KNOWN_FORMATS - BANNED_BY_DEFAULT

#: Largest virtual size accepted from any header: qemu keeps disk sizes in a
#: signed 64-bit byte count, so anything at or above 2**63 cannot be a real disk.
MAX_VIRTUAL_SIZE: int = 2**63 - 512


@dataclass(frozen=True)
class FormatVerdict:
    """What an image is and whether it is safe to hand to a hypervisor.

    ``format`` is a glance ``disk_format`` name (None only if nothing could be
    decided); ``reasons`` explains an unsafe verdict and is empty when safe;
    ``virtual_size`` is the guest-visible size in bytes; ``partition_table``
    names the partition table ("gpt"/"mbr") found at the start of the guest
    disk (raw disks, hybrid ISOs and fixed VHDs).
    """

    format: str | None
    safe: bool
    reasons: tuple[str, ...] = field(default=())
    virtual_size: int | None = None
    partition_table: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-ready dict (``reasons`` as a list)."""
        return {
            "format": self.format,
            "safe": self.safe,
            "reasons": list(self.reasons),
            "virtual_size": self.virtual_size,
            "partition_table": self.partition_table,
        }
