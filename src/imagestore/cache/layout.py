"""Where a compute-node cache keeps things, and the sidecar that describes each entry.

``DIR/entries/ALGO-HEX`` is an image, named by its digest (content-addressed), with
``DIR/entries/ALGO-HEX.json`` beside it: where it came from, its format and the seal
(device, inode, size, mtime, ctime) taken when it was published. ``DIR/locks/KEY.lock``
serialises fetches of one key across processes, ``DIR/leases/KEY/HOLDER`` are leases,
``DIR/tmp/`` holds downloads in progress (each flocked by its writer).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from ..errors import InvalidLocation
from ..engine.hashing import COLLISION_RESISTANT

__all__ = ["KEY_RE", "Layout", "Sidecar", "key_for", "seal_of", "write_file_atomically"]

KEY_RE = re.compile(r"(?P<algo>[a-z0-9_]{2,16})-(?P<hex>[0-9a-f]{32,128})")


def key_for(algo: str, digest: str) -> str:
    """The cache key of an image whose ``algo`` digest is ``digest``; only a collision-resistant
    algorithm names content (two images with one md5 or sha1 would share an entry)."""
    if algo not in hashlib.algorithms_guaranteed or algo.startswith("shake_"):
        raise InvalidLocation(f"unknown checksum algorithm {algo!r}")
    if algo not in COLLISION_RESISTANT:
        raise InvalidLocation(f"{algo} is not collision-resistant: it cannot name a cache entry")
    hexdigest = digest.strip().lower()
    if len(hexdigest) != hashlib.new(algo).digest_size * 2 or not re.fullmatch(r"[0-9a-f]+", hexdigest):
        raise InvalidLocation(f"{hexdigest!r} is not a {algo} hex digest")
    return f"{algo}-{hexdigest}"


def seal_of(st: os.stat_result) -> list[int]:
    """What must not change between publishing an entry and using it."""
    return [st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns]


@dataclass
class Sidecar:
    """The description of one entry (JSON beside it)."""

    key: str
    size: int
    format: str | None
    virtual_size: int | None
    source: str
    how: str
    fetched_at: float
    seal: list[int]

    @classmethod
    def load(cls, path: Path) -> Sidecar | None:
        """The sidecar at ``path``, or None if it is missing or unreadable."""
        try:
            data: dict[str, Any] = json.loads(path.read_text())
            return cls(**data)
        except (OSError, ValueError, TypeError):
            return None

    def dump(self, path: Path) -> None:
        """Write it atomically (temporary file, fsync, rename)."""
        write_file_atomically(path, json.dumps(asdict(self), sort_keys=True).encode())


def write_file_atomically(path: Path, data: bytes) -> None:
    """Replace ``path`` with ``data``: write a temporary beside it, fsync, rename."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o644)
    try:
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)


class Layout:
    """The directory tree of one cache."""

    def __init__(self, root: Path, dir_mode: int) -> None:
        self.root = root
        self.entries = root / "entries"
        self.locks = root / "locks"
        self.leases = root / "leases"
        self.tmp = root / "tmp"
        for d in (root, self.entries, self.locks, self.leases, self.tmp):
            d.mkdir(mode=dir_mode, parents=True, exist_ok=True)

    def entry(self, key: str) -> Path:
        return self.entries / key

    def sidecar(self, key: str) -> Path:
        return self.entries / f"{key}.json"

    def lock(self, key: str) -> Path:
        return self.locks / f"{key}.lock"

    def lease_dir(self, key: str) -> Path:
        return self.leases / key

    def published(self) -> list[str]:
        """Every published entry's key."""
        try:
            names = os.listdir(self.entries)
        except FileNotFoundError:
            return []
        return sorted(n for n in names if KEY_RE.fullmatch(n))

    def fsync_dir(self, directory: Path) -> None:
        fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
