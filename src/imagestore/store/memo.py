"""What a Store remembers between calls, bounded, least recently used forgotten first: the verified
clone sources (so ``verify_source`` costs one stat the next time) and the authenticated block tables
(so a ranged read fetches an image's table once)."""

from __future__ import annotations

import threading
from collections import OrderedDict

__all__ = ["TABLE_CACHE_BYTES", "VERIFIED_MEMO_SIZE", "TableCache", "VerifiedMemo"]

VERIFIED_MEMO_SIZE = 4096
"""How many verified source versions one Store remembers; the least recently used is forgotten
first (and verified again by its next ``verify_source``), so a long-lived process stays bounded."""


class VerifiedMemo:
    """Source location -> version token whose bytes were verified, at most ``size`` of them (LRU)."""

    def __init__(self, size: int | None = None) -> None:
        self.size = VERIFIED_MEMO_SIZE if size is None else size  # read when made: patchable in tests
        self._items: OrderedDict[str, str] = OrderedDict()
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._items)

    def verified(self, key: str, version: str) -> bool:
        """Whether ``version`` of ``key`` was verified (and is remembered); marks it recently used."""
        with self._lock:
            if self._items.get(key) != version:
                return False
            self._items.move_to_end(key)
            return True

    def remember(self, key: str, version: str) -> None:
        """Record a verified version, forgetting the least recently used beyond ``size``."""
        with self._lock:
            self._items[key] = version
            self._items.move_to_end(key)
            while len(self._items) > self.size:
                self._items.popitem(last=False)


TABLE_CACHE_BYTES = 64 << 20
"""How many bytes of block tables one Store keeps in memory (a 1 GiB image's table is 16 KiB)."""


class TableCache:
    """Block tables by their descriptor (``"<block size>:<BLAKE3 of the table>"``): a table is
    fetched once and authenticated, then reused by every ranged read of any image that names it."""

    def __init__(self, limit: int | None = None) -> None:
        self.limit = TABLE_CACHE_BYTES if limit is None else limit
        self._items: OrderedDict[str, bytes] = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()

    def get(self, descriptor: str) -> bytes | None:
        """The authenticated table of ``descriptor``, if cached; marks it recently used."""
        with self._lock:
            table = self._items.get(descriptor)
            if table is not None:
                self._items.move_to_end(descriptor)
            return table

    def put(self, descriptor: str, table: bytes) -> None:
        """Keep an authenticated table, forgetting the least recently used beyond ``limit`` bytes."""
        if len(table) > self.limit:
            return
        with self._lock:
            old = self._items.pop(descriptor, None)
            self._bytes += len(table) - (len(old) if old is not None else 0)
            self._items[descriptor] = table
            while self._bytes > self.limit:
                _, dropped = self._items.popitem(last=False)
                self._bytes -= len(dropped)
