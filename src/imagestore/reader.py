"""Reading images back: a chunk iterator that verifies checksums at the end of the stream."""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from types import TracebackType

from .drivers.base import Reader
from .errors import ChecksumMismatch, SizeMismatch
from .hashing import ParallelHasher, compare
from .progress import Progress, Throttled

__all__ = ["ImageReader", "write_atomically"]

_IN_FLIGHT = 4


class ImageReader:
    """Iterate over an image's bytes; with ``expected`` set, raise ChecksumMismatch at the end.

    Verification hashes in a background thread while the caller handles the
    previous chunk, and also checks that exactly ``size`` bytes arrived.
    """

    def __init__(
        self,
        reader: Reader,
        *,
        size: int,
        chunk_size: int,
        expected: Mapping[str, str] | None,
        progress: Progress | None,
        store: str,
        image: str,
    ) -> None:
        self._reader = reader
        self.size = size
        self._chunk = chunk_size
        self._expected = dict(expected) if expected else None
        self._hasher = ParallelHasher(self._expected) if self._expected else None
        self._ticker = Throttled(progress, size)
        self._store = store
        self._image = image
        self._done = 0
        self._token = 0
        self._closed = False

    @property
    def verifying(self) -> bool:
        """Whether the stream is checked against checksums at the end."""
        return self._hasher is not None

    def read(self, n: int = -1) -> bytes:
        """Up to ``n`` bytes (all that is left for ``n < 0``); ``b""`` at the end after verifying."""
        if n < 0:
            if self._hasher is not None:
                return b"".join(iter(self))  # chunked, so hashing overlaps the reads
            parts = []
            while part := self.read(max(self.size - self._done, 1)):
                parts.append(part)  # a file reader returns the rest at once: one buffer, no join
            return parts[0] if len(parts) == 1 else b"".join(parts)
        if n == 0 or self._closed:
            return b""
        data = self._reader.read(n)
        if not data:
            self._finish()
            return b""
        self._account(data)
        return data

    def __iter__(self) -> Iterator[bytes]:
        while not self._closed:
            data = self._reader.read(self._chunk)
            if not data:
                self._finish()
                return
            self._account(data)
            yield data

    def _account(self, data: bytes) -> None:
        self._done += len(data)
        if self._done > self.size:
            self._fail_size()
        if self._hasher is not None:
            token = self._token % _IN_FLIGHT
            if self._token >= _IN_FLIGHT:
                self._hasher.wait(token)
            self._hasher.submit(token, data)
            self._token += 1
        self._ticker.advance(len(data))

    def _fail_size(self) -> None:
        self.close()
        raise SizeMismatch(
            f"read {self._done} bytes where {self.size} were expected", store=self._store, image=self._image
        )

    def _finish(self) -> None:
        if self._closed:
            return
        if self._done != self.size:
            self._fail_size()
        self._ticker.finish()
        if self._hasher is not None and self._expected is not None:
            actual = self._hasher.digests()
            bad = compare(self._expected, actual)
            if bad is not None:
                self.close()
                algo, want, got = bad
                raise ChecksumMismatch(
                    f"{algo} of the bytes read is {got}, expected {want}",
                    algorithm=algo, expected=want, actual=got, store=self._store, image=self._image,
                )
        self.close()

    def close(self) -> None:
        """Release the backend reader and the hash threads."""
        if self._closed:
            return
        self._closed = True
        if self._hasher is not None:
            self._hasher.close()
        self._reader.close()

    def __enter__(self) -> ImageReader:
        return self

    def __exit__(self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None) -> None:
        self.close()


def write_atomically(reader: ImageReader, path: str | os.PathLike[str]) -> int:
    """Write the stream to ``path`` via a temporary file, fsync, then rename; returns bytes."""
    target = os.fspath(path)
    directory = os.path.dirname(os.path.abspath(target))
    tmp = os.path.join(directory, f".{os.path.basename(target)}.imagestore-{os.getpid()}-{id(reader):x}.part")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o644)
    written = 0
    try:
        for chunk in reader:
            view = memoryview(chunk)
            while view:
                n = os.write(fd, view)
                view = view[n:]
                written += n
        os.fsync(fd)
        os.close(fd)
        fd = -1
        os.replace(tmp, target)
        dfd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
        try:
            os.fsync(dfd)
        finally:
            os.close(dfd)
    except BaseException:
        if fd >= 0:
            os.close(fd)
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
    return written
