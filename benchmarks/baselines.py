"""The raw limits imagestore is measured against: hand-written loops doing the same work.

Each is what a careful programmer would write without the library: same chunk
size, same syscalls, hashes in threads (hashlib releases the GIL on big buffers).
"""

from __future__ import annotations

import os
import queue
import threading
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from imagestore.engine.hashing import INTEGRITY, new_hash

_IN_FLIGHT = 4  # chunks queued per hash thread: bounds memory like the library's ring


class _Hashers:
    """One thread per algorithm, each fed the same chunks through a bounded queue; a lone BLAKE3
    (what a verified read computes) spreads over the cores as imagestore's reader lets it."""

    def __init__(self, algorithms: Iterable[str]) -> None:
        names = list(algorithms)
        self.hashes = [new_hash(a, parallel=names == [INTEGRITY]) for a in names]
        self.queues: list[queue.Queue[bytes | None]] = [queue.Queue(_IN_FLIGHT) for _ in self.hashes]
        self.threads = [threading.Thread(target=self._run, args=(h, q), daemon=True)
                        for h, q in zip(self.hashes, self.queues, strict=True)]
        for t in self.threads:
            t.start()

    @staticmethod
    def _run(h: Any, q: queue.Queue[bytes | None]) -> None:
        while (chunk := q.get()) is not None:
            h.update(chunk)

    def feed(self, chunk: bytes) -> None:
        for q in self.queues:
            q.put(chunk)

    def digests(self) -> dict[str, str]:
        for q in self.queues:
            q.put(None)
        for t in self.threads:
            t.join()
        return {h.name: h.hexdigest() for h in self.hashes}


def ideal_add(src: Path, dst: Path, chunk_size: int, algorithms: Iterable[str]) -> dict[str, str]:
    """Copy ``src`` to ``dst`` in ``chunk_size`` reads, hashing in threads, then fsync."""
    hashers = _Hashers(algorithms)
    with open(src, "rb", buffering=0) as fin, open(dst, "wb", buffering=0) as fout:
        while chunk := fin.read(chunk_size):
            hashers.feed(chunk)
            view = memoryview(chunk)
            while view:
                view = view[fout.write(view):]
        digests = hashers.digests()
        os.fsync(fout.fileno())
    return digests


def plain_read(path: Path | str, chunk_size: int) -> int:
    """A buffered read of the whole file in ``chunk_size`` pieces; returns the bytes read."""
    total = 0
    with open(path, "rb") as fh:
        while chunk := fh.read(chunk_size):
            total += len(chunk)
    return total


def plain_read_all(path: Path | str) -> bytes:
    """The whole file as one bytes object (what ``Store.get`` returns)."""
    with open(path, "rb") as fh:
        return fh.read()


def plain_read_hashed(path: Path | str, chunk_size: int, algorithm: str) -> str:
    """A buffered read that hashes in a thread, like a verified download; returns the digest."""
    hashers = _Hashers([algorithm])
    with open(path, "rb") as fh:
        while chunk := fh.read(chunk_size):
            hashers.feed(chunk)
    return hashers.digests()[algorithm]
