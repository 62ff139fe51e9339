"""Checksums computed beside the I/O: one thread per algorithm.

hashlib releases the GIL on large buffers, so md5 and sha512 of a chunk run on
other cores while the caller writes (or reads) that chunk. The caller hands in
chunks it will not touch until :meth:`ParallelHasher.release` says the hashers
are done with them (buffer reuse is the caller's business, see ``BufferRing``).
"""

from __future__ import annotations

import hashlib
import queue
import threading
from collections.abc import Iterable, Mapping
from typing import Any

from ..errors import ConfigError, InvalidArgument
from ..results import is_hex_digest
from ..spi.zeros import is_zero

__all__ = ["BLOCKS", "BLOCK_ENTRY", "BLOCK_SIZE", "COLLISION_RESISTANT", "DEFAULT_ALGORITHMS", "INTEGRITY",
           "BufferRing", "ParallelHasher", "new_hash", "validate_algorithms", "validate_digests"]

DEFAULT_ALGORITHMS: tuple[str, ...] = ("md5", "sha512")
# digests of 256 bits or more, no known collision attack: fit to name content (cache keys)
COLLISION_RESISTANT: frozenset[str] = frozenset({"sha256", "sha384", "sha512", "sha3_256", "sha3_384", "sha3_512",
                                                 "blake2b", "blake2s"})
# strongest first: the one verify-on-read prefers
_STRENGTH = ("sha512", "sha3_512", "blake2b", "sha384", "sha3_384", "sha256", "sha3_256",
             "blake2s", "sha224", "sha3_224", "sha1", "md5")


def validate_algorithms(names: Iterable[str], *, key: str = "checksums") -> tuple[str, ...]:
    """Return the algorithms as a tuple, or raise ConfigError naming a bad one."""
    algos = tuple(names)
    if not algos:
        raise ConfigError("at least one checksum algorithm is needed", key=key)
    for name in algos:
        if name not in hashlib.algorithms_guaranteed or name.startswith("shake_"):
            raise ConfigError(
                f"unknown checksum algorithm {name!r} (use hashlib names such as md5, sha256, sha512)",
                key=key,
            )
    if len(set(algos)) != len(algos):
        raise ConfigError("checksum algorithms repeat", key=key)
    return algos


def validate_digests(expected: object, *, store: str | None = None, image: str | None = None) -> None:
    """Refuse (InvalidArgument) an ``expected=`` that is not ``{hashlib name: hex digest}``, before any I/O."""
    if expected is None:
        return
    if not isinstance(expected, Mapping):
        raise InvalidArgument(f"expected must map algorithm to hex digest, not {type(expected).__name__}",
                              store=store, image=image)
    for name, digest in expected.items():
        if name == INTEGRITY:
            size = 64
        elif not isinstance(name, str) or name not in hashlib.algorithms_guaranteed or name.startswith("shake_"):
            raise InvalidArgument(f"unknown checksum algorithm {name!r} in expected (use hashlib names such as "
                                  "md5, sha256, sha512, or blake3)", store=store, image=image)
        else:
            size = hashlib.new(name).digest_size * 2
        if not is_hex_digest(digest, size):
            raise InvalidArgument(f"expected {name} must be {size} hex digits", store=store, image=image)



INTEGRITY = "blake3"
"""The library's integrity digest: recorded by every add beside the configured checksums and
preferred by verify-on-read (about ten times cheaper than sha512, and cryptographic)."""


BLOCKS = "blake3-blocks"
"""The block table's pseudo-algorithm: the BLAKE3 of each :data:`BLOCK_SIZE` block, computed in
the add pass beside the whole-image digest (its "hexdigest" is the table, hex-encoded)."""
BLOCK_SIZE = 1 << 20
"""The block size of the tables this version writes (each table records its own)."""
BLOCK_ENTRY = 16
"""Bytes of BLAKE3 output kept per block: 128 bits, as collision-resistant as md5 was meant to be
and far beyond what a corrupted or substituted block could match by chance."""


def new_hash(name: str, *, parallel: bool = False) -> Any:
    """A hash object for a hashlib name, ``blake3`` or ``blake3-blocks``; ``parallel`` lets BLAKE3
    spread one large update over the cores (reads, where the reader waits for it), else it stays on one."""
    if name == BLOCKS:
        return BlockTableHash(BLOCK_SIZE)
    if name != INTEGRITY:
        return hashlib.new(name)
    try:
        import blake3
    except ImportError as exc:  # a core dependency; a broken install gets a hint, not a traceback
        raise ConfigError("the blake3 package is missing: pip install blake3", key="checksums") from exc
    return blake3.blake3(max_threads=blake3.blake3.AUTO) if parallel else blake3.blake3()


class BlockTableHash:
    """Hash-like: the BLAKE3 (:data:`BLOCK_ENTRY` bytes) of every ``block_size`` block fed to it;
    the last block may be short. ``table()`` (hex: ``hexdigest()``) is their concatenation.
    A whole block of zeros (a disk's unwritten space) gets its entry without being hashed."""

    def __init__(self, block_size: int) -> None:
        self.block_size = block_size
        self._hash = new_hash(INTEGRITY)
        self._left = block_size
        self._table = bytearray()
        self._zero_entry = b""  # the entry of a block of zeros, once there was one

    def update(self, data: bytes | memoryview) -> None:
        view = memoryview(data).cast("B")
        size = self.block_size
        while len(view):
            if self._left == size and len(view) >= size and not view[0] and is_zero(view[:size]):
                self._table += self._zero_entry or self._zero_block()
                view = view[size:]
                continue
            n = min(self._left, len(view))
            self._hash.update(view[:n])
            self._left -= n
            view = view[n:]
            if not self._left:
                self._close_block()

    def _zero_block(self) -> bytes:
        zero = new_hash(INTEGRITY)
        zero.update(bytes(self.block_size))
        self._zero_entry = bytes(zero.digest(BLOCK_ENTRY))
        return self._zero_entry

    def _close_block(self) -> None:
        self._table += self._hash.digest(BLOCK_ENTRY)
        self._hash = new_hash(INTEGRITY)
        self._left = self.block_size

    def table(self) -> bytes:
        """The table of every block fed so far (a partial last block counts as one)."""
        if self._left != self.block_size:
            self._close_block()
        return bytes(self._table)

    def hexdigest(self) -> str:
        return self.table().hex()


def strongest(names: Iterable[str]) -> str:
    """The strongest algorithm among ``names`` (used to verify reads)."""
    pool = list(names)
    for name in _STRENGTH:
        if name in pool:
            return name
    return pool[0]


_STOP = object()


class _HashThread(threading.Thread):
    def __init__(self, name: str, done: queue.SimpleQueue[Any], parallel: bool) -> None:
        super().__init__(name=f"imagestore-hash-{name}", daemon=True)
        self.algorithm = name
        self.hash = new_hash(name, parallel=parallel)
        self.inbox: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self.done = done
        self.error: BaseException | None = None

    def run(self) -> None:
        while True:
            item = self.inbox.get()
            if item is _STOP:
                return
            token, view = item
            try:
                if self.error is None:
                    self.hash.update(view)
            except BaseException as exc:  # noqa: BLE001 - reported to the caller in digests()
                self.error = exc
            self.done.put(token)


class ParallelHasher:
    """Feeds every chunk to one thread per algorithm; ``digests()`` joins them.

    ``parallel`` lets the BLAKE3 thread use every core for a chunk (verified reads, whose
    reader waits for nothing else); an add keeps it on one, beside md5 and sha512."""

    def __init__(self, algorithms: Iterable[str], *, parallel: bool = False) -> None:
        self._done: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._threads = [_HashThread(name, self._done, parallel) for name in algorithms]
        self._pending: dict[int, int] = {}
        for thread in self._threads:
            thread.start()
        self._closed = False

    def submit(self, token: int, view: memoryview | bytes) -> None:
        """Hash ``view`` in every thread; ``token`` comes back through :meth:`wait`."""
        self._pending[token] = self._pending.get(token, 0) + len(self._threads)
        for thread in self._threads:
            thread.inbox.put((token, view))

    def wait(self, token: int) -> None:
        """Block until every thread has finished with the chunk submitted as ``token``."""
        while self._pending.get(token, 0) > 0:
            done = self._done.get()
            self._pending[done] -= 1
        self._pending.pop(token, None)

    def digests(self) -> dict[str, str]:
        """Finish and return ``{algorithm: hexdigest}``."""
        self.close()
        for thread in self._threads:
            if thread.error is not None:
                raise thread.error
        return {t.algorithm: t.hash.hexdigest() for t in self._threads}

    def close(self) -> None:
        """Stop the threads (idempotent); safe on error paths."""
        if self._closed:
            return
        self._closed = True
        for thread in self._threads:
            thread.inbox.put(_STOP)
        for thread in self._threads:
            thread.join()

    def __enter__(self) -> ParallelHasher:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class BufferRing:
    """A few fixed buffers reused in turn, so a stream of any length costs bounded memory.

    A slot is handed out again only after the hashers released it, which lets the
    reader fill the next buffer while the previous one is still being hashed.
    """

    def __init__(self, hasher: ParallelHasher, chunk_size: int, slots: int = 4) -> None:
        self.hasher = hasher
        self.chunk_size = chunk_size
        self.buffers: list[bytearray | None] = [None] * slots  # allocated on first use
        self.turn = 0
        self.busy: set[int] = set()

    def next(self) -> int:
        """The next free slot, once the hashers are done with what it held."""
        slot = self.turn % len(self.buffers)
        self.turn += 1
        if slot in self.busy:
            self.hasher.wait(slot)
            self.busy.discard(slot)
        return slot

    def buffer(self, slot: int) -> memoryview:
        """The slot's buffer, for sources that read into memory of ours."""
        buf = self.buffers[slot]
        if buf is None:
            buf = self.buffers[slot] = bytearray(self.chunk_size)
        return memoryview(buf)

    def hash(self, slot: int, view: memoryview) -> None:
        """Hash ``view`` (which lives in ``slot``) in the background."""
        self.hasher.submit(slot, view)
        self.busy.add(slot)


def compare(expected: Mapping[str, str], actual: Mapping[str, str]) -> tuple[str, str, str] | None:
    """The first (algorithm, expected, actual) that differs, or None when all agree."""
    for name, want in expected.items():
        got = actual.get(name)
        if got is not None and got.lower() != want.lower():
            return name, want, got
    return None
