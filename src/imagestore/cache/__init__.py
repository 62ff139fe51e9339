"""A compute node's image cache (see :mod:`.imagecache`): verified, content-addressed,
shared by every process on the node; ``imagestore.cache`` exports the class and its reports.
"""

from __future__ import annotations

from .imagecache import ImageCache
from .reports import CacheEntry, EvictReport, RevalidateReport, VerifyReport

__all__ = ["CacheEntry", "EvictReport", "ImageCache", "RevalidateReport", "VerifyReport"]
