"""Deterministic image bytes: a seed and a size name them, so a checker in another
process can regenerate what a writer was sending and compare byte for byte."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator

__all__ = ["chunks", "digests", "payload"]


def payload(size: int, seed: int = 1) -> bytes:
    """``size`` bytes that depend only on ``seed`` (sha512 chain; no two seeds share a block)."""
    out = bytearray()
    block = hashlib.sha512(f"imagestore-payload-{seed}".encode()).digest()
    while len(out) < size:
        block = hashlib.sha512(block).digest()
        out += block * 64
    return bytes(out[:size])


def chunks(data: bytes, size: int = 100_000) -> Iterator[bytes]:
    """``data`` in pieces of ``size`` bytes (the last one shorter), as an upload source."""
    for start in range(0, len(data), size):
        yield data[start:start + size]


def digests(data: bytes) -> dict[str, str]:
    """The store's default checksums of ``data`` (md5 and sha512)."""
    return {"md5": hashlib.md5(data).hexdigest(), "sha512": hashlib.sha512(data).hexdigest()}
