"""The memo of verified clone sources: which immutable versions a Store already read and checked,
so ``verify_source`` costs one stat the next time (bounded, least recently used forgotten first)."""

from __future__ import annotations

import threading
from collections import OrderedDict

__all__ = ["VERIFIED_MEMO_SIZE", "VerifiedMemo"]

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
