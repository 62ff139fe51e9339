"""Every same-run limit a figure is compared with, documented here and nowhere else.

A limit is what a careful programmer gets from the machine or the backend's own
client without imagestore, timed in the same run, on the same data, interleaved
with the figure it bounds. :data:`LIMITS` names and describes each one; the
machine-wide ones are implemented here, the backend ones (librbd, boto3,
swiftclient) in ``backends.py`` under the same names.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from pathlib import Path

from imagestore.engine.hashing import new_hash

from .baselines import _Hashers, ideal_add, plain_read, plain_read_hashed

#: limit name -> what it measures (the README's table of limits is made from this)
LIMITS: dict[str, str] = {
    # machine
    "disk_write_fsync": "write the bytes to a new file in the store's filesystem in chunk-size writes, then fsync",
    "read_warm": "buffered read of the file in chunk-size pieces, page-cache warm",
    "read_cold": "the same read after posix_fadvise(DONTNEED) dropped the file's pages",
    "read_warm_hashed": "read_warm hashed with BLAKE3 (what a verified read checks) in a thread",
    "hash_md5": "md5 of the bytes from memory, one thread",
    "hash_sha256": "sha256 of the bytes from memory, one thread",
    "hash_sha512": "sha512 of the bytes from memory, one thread",
    "hash_parallel": "every checksum of the store at once, one thread each, from memory (the floor of any add)",
    # ideal adds: the backend's own write path while hashing in parallel threads
    "ideal_add_file": "read the source, write + fsync a new file in the store's filesystem, the store's "
                      "checksums in one thread each",
    "ideal_add_memory": "copy the source's chunks into memory while hashing in one thread per checksum",
    "ideal_add_rbd": "hand-written librbd aio write loop (rbdlib, store's object size and concurrency) of the "
                     "source into a new image, the same checksums in threads, then flush",
    "ideal_add_s3": "boto3 upload_fileobj (default TransferConfig) of the source through a reader that feeds "
                    "the same checksums in threads",
    "ideal_add_swift": "hand-written SLO upload with swiftclient (segments of the store's size, PUT by the "
                       "store's concurrency in threads) while hashing in threads, then the manifest",
    "ideal_add_generic": "hash_parallel: a driver without a known client is bounded by the hashing alone",
    # raw clients: no hashing at all
    "rbd_import": "rbd import --image-format 2 of the source file (hashes nothing)",
    "rbd_export": "rbd export of an image to /dev/null",
    "rbd_export_hashed": "rbd export to a pipe, read in chunk-size pieces hashed with BLAKE3 (what a verified "
                         "read checks) in a thread",
    "boto3_upload": "boto3 upload_fileobj of the source file (default TransferConfig; hashes nothing)",
    "boto3_get": "boto3 get_object, body read in chunk-size pieces",
    "boto3_get_hashed": "boto3_get hashed with BLAKE3 (what a verified read checks) in a thread",
    "swift_slo_upload": "swiftclient SwiftService.upload of the source file as an SLO (store's segment size)",
    "swift_get": "swiftclient get_object of the SLO, read in chunk-size pieces",
    "swift_get_hashed": "swift_get hashed with BLAKE3 (what a verified read checks) in a thread",
    "memory_read": "slicing a bytes object of that size into chunk-size copies",
    "memory_read_hashed": "memory_read hashed with BLAKE3 (what a verified read checks) in a thread",
    # peers
    "glance_store": "the same operation through glance_store 5.7's own driver for the same backend",
    "glance_api_glance_store": "the same upload/download through the same Glance with glance_store's own driver",
    "clone_cow_1g": "the store's own cow clone of a 1 GiB (smallest >= 1 GiB) image: O(1) means the big one "
                    "costs at most 2x",
    "rss_add_unknown_1g": "peak RSS growth of the same unknown-size add at 1 GiB (flat from 1 GiB means <= 1.1x)",
}


def chunks(pool: bytes, size: int, chunk: int, salt: int = 0) -> Iterator[memoryview]:
    """``size`` bytes cut from ``pool`` in ``chunk`` pieces (views copied to bytes by the caller if needed)."""
    done = 0
    offset = (salt * 4099 * 4096) % len(pool)
    view = memoryview(pool)
    while done < size:
        n = min(chunk, size - done, len(pool) - offset)
        yield view[offset:offset + n]
        done += n
        offset = (offset + n) % len(pool)


def disk_write_fsync(dst: Path, pool: bytes, size: int, chunk: int) -> None:
    with open(dst, "wb", buffering=0) as fh:
        for piece in chunks(pool, size, chunk):
            view = piece
            while view:
                view = view[fh.write(view):]
        os.fsync(fh.fileno())


def drop_cache(path: Path | str) -> None:
    """Evict a file's clean pages (the next read comes from the disk)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fdatasync(fd)
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
    finally:
        os.close(fd)


def read_warm(path: Path | str, chunk: int) -> int:
    return plain_read(path, chunk)


def read_cold(path: Path | str, chunk: int) -> int:
    drop_cache(path)
    return plain_read(path, chunk)


def read_warm_hashed(path: Path | str, chunk: int, algorithm: str) -> str:
    return plain_read_hashed(path, chunk, algorithm)


def hash_one(algorithm: str, pool: bytes, size: int, chunk: int) -> str:
    h = new_hash(algorithm)
    for piece in chunks(pool, size, chunk):
        h.update(piece)
    return h.hexdigest()


def hash_parallel(algorithms: Iterable[str], pool: bytes, size: int, chunk: int) -> dict[str, str]:
    hashers = _Hashers(algorithms)
    for piece in chunks(pool, size, chunk):
        hashers.feed(piece)  # type: ignore[arg-type]  # hashlib takes any buffer
    return hashers.digests()


def ideal_add_file(src: Path, dst: Path, chunk: int, algorithms: Iterable[str]) -> dict[str, str]:
    return ideal_add(src, dst, chunk, algorithms)


def ideal_add_memory(src: Path, chunk: int, algorithms: Iterable[str]) -> list[bytes]:
    hashers = _Hashers(algorithms)
    kept: list[bytes] = []
    with open(src, "rb", buffering=0) as fh:
        while data := fh.read(chunk):
            hashers.feed(data)
            kept.append(data)
    hashers.digests()
    return kept


def memory_read(blob: bytes, chunk: int, algorithm: str | None = None) -> int:
    hashers = _Hashers([algorithm]) if algorithm else None
    total = 0
    view = memoryview(blob)
    for i in range(0, len(blob), chunk):
        piece = bytes(view[i:i + chunk])
        if hashers:
            hashers.feed(piece)
        total += len(piece)
    if hashers:
        hashers.digests()
    return total


class HashingReader:
    """A non-seekable file-like reader of ``src`` that feeds every chunk it returns to hash threads."""

    def __init__(self, src: Path, algorithms: Iterable[str]) -> None:
        self.fh = open(src, "rb", buffering=0)  # noqa: SIM115 - closed by close()
        self.hashers = _Hashers(algorithms)

    def read(self, n: int = -1) -> bytes:
        data = self.fh.read() if n is None or n < 0 else self.fh.read(n)
        if data:
            self.hashers.feed(data)
        return data

    def readable(self) -> bool:
        return True

    def close(self) -> dict[str, str]:
        self.fh.close()
        return self.hashers.digests()
