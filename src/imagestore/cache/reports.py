"""What the compute-node cache reports (defined with the other public results in
:mod:`imagestore.results`; re-exported here for existing imports)."""

from __future__ import annotations

from ..results import CacheEntry, EvictReport, RevalidateReport, VerifyReport

__all__ = ["CacheEntry", "EvictReport", "RevalidateReport", "VerifyReport"]
