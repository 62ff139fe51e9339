"""The result of inspecting an image: :class:`FormatVerdict` (defined with the other public
results in :mod:`imagestore.results`, re-exported here), plus the shared limits."""

from __future__ import annotations

from ..results import FormatVerdict

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
