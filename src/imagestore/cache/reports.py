"""What the compute-node cache reports: an entry as listed, and the outcome of an
eviction, a verification and a revalidation (each with the JSON form the CLI prints)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = ["CacheEntry", "EvictReport", "RevalidateReport", "VerifyReport"]


@dataclass(frozen=True)
class CacheEntry:
    """One cached image: its key (``ALGO-HEX``), path, sizes, format, origin and use."""

    key: str
    path: Path
    size: int
    allocated: int
    format: str | None
    virtual_size: int | None
    source: str
    how: str
    fetched_at: float
    last_used: float
    leases: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        """The JSON form printed by ``imagestore cache ls --json``."""
        return {"key": self.key, "path": str(self.path), "size": self.size, "allocated": self.allocated,
                "format": self.format, "virtual_size": self.virtual_size, "source": self.source, "how": self.how,
                "fetched_at": self.fetched_at, "last_used": self.last_used, "leases": list(self.leases)}


@dataclass(frozen=True)
class EvictReport:
    """What an eviction removed, and what it kept because it was open, leased or just used."""

    removed: tuple[str, ...] = ()
    bytes_freed: int = 0
    kept: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {"removed": list(self.removed), "bytes_freed": self.bytes_freed, "kept": list(self.kept)}


@dataclass(frozen=True)
class VerifyReport:
    """Entries re-hashed: the good, and the damaged ones (removed unless in use)."""

    ok: tuple[str, ...] = ()
    corrupt: tuple[str, ...] = ()
    removed: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {"ok": list(self.ok), "corrupt": list(self.corrupt), "removed": list(self.removed)}


@dataclass(frozen=True)
class RevalidateReport:
    """Entries re-inspected against a policy; ``refused`` maps key to reasons (all removed)."""

    accepted: tuple[str, ...] = ()
    refused: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    in_use: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {"accepted": list(self.accepted), "refused": {k: list(v) for k, v in self.refused.items()},
                "in_use": list(self.in_use)}
