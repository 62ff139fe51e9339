"""Reading images back: a chunk iterator that resumes broken transfers and verifies checksums
at the end of the stream, or (an image with a block table) each block it reads before any of its
bytes leave."""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterator, Mapping
from types import TracebackType

from ..spi.contract import Reader
from ..errors import ChecksumMismatch, SizeMismatch, Transient
from .blocks import BlockCheck
from .hashing import ParallelHasher, compare
from .progress import Progress, Throttled
from ..spi.retry import RetryPolicy, retry_listener, translate
from ..spi.zeros import is_zero

__all__ = ["ImageReader", "ReadIncomplete", "write_atomically"]

log = logging.getLogger("imagestore")
_IN_FLIGHT = 4
Opener = Callable[[int, int], Reader]
"""Opens a driver reader for ``(offset, length)``; the facade's retries and errors apply."""


class _EndedEarly(Transient):
    """The driver's stream ended before the image's size: resumed like a broken read."""


class ReadIncomplete(Exception):
    """What a streamed read closed before its end reports to its observer (never raised)."""


class ImageReader:
    """Iterate over an image's bytes; with ``expected`` set, raise ChecksumMismatch at the end,
    before the last bytes are handed out (a caller that reads exactly ``size`` bytes and stops
    learns of a mismatch from that last read).

    A read that fails with a retryable error, or a stream that ends early, is
    resumed from the byte where it stopped (the driver reopens at that offset),
    as the store's retry policy allows (site ``read-resume``); verification hashes in a background
    thread while the caller handles the previous chunk, and exactly ``size``
    bytes must arrive.

    With ``blocks`` (a read, whole or ranged, of an image with a block table) the reader reads the
    whole blocks around the range instead, checks each against its digest before handing out any
    of its bytes, and returns only the ``size`` bytes asked for.
    """

    def __init__(
        self,
        opener: Opener,
        *,
        offset: int,
        size: int,
        chunk_size: int,
        expected: Mapping[str, str] | None,
        progress: Progress | None,
        store: str,
        image: str,
        retries: int = 3,
        backoff: float = 0.2,
        policy: RetryPolicy | None = None,
        blocks: BlockCheck | None = None,
    ) -> None:
        self._opener = opener
        self._blocks = blocks
        self._pending = b""
        self._pos = 0
        if blocks is not None:
            offset, self._span = blocks.span.offset, blocks.span.stop - blocks.span.offset
        else:
            self._span = size
        self._offset = offset
        self.size = size
        """How many bytes the reader hands out."""
        self._chunk = chunk_size
        self._expected = dict(expected) if expected else None
        self._store = store
        self._image = image
        self._policy = policy or RetryPolicy(retries=retries, backoff=backoff)
        self._listener = retry_listener.get()  # resumes count for the operation that opened the reader
        self._done = 0
        self._token = 0
        self._closed = False
        self._on_end: Callable[[BaseException | None, int], None] | None = None
        self._reader: Reader | None = None
        self._hasher: ParallelHasher | None = None
        self._reader = opener(offset, self._span)
        try:
            self._hasher = ParallelHasher(self._expected, parallel=True) if self._expected else None
        except BaseException:
            self._close_reader()  # a connection (and an S3 read-ahead thread) must not outlive the failure
            raise
        self._ticker = Throttled(progress, self._span)
        self.resumes = 0
        """How many times the transfer was resumed after a broken read."""

    def _raw_read(self, n: int) -> bytes:
        """Up to ``n`` bytes from the driver, resuming at the current offset after a failure."""
        reopen, failures = False, 0

        def attempt() -> bytes:
            nonlocal reopen
            if reopen:
                reopen = False
                try:
                    self._reader = self._opener(self._offset + self._done, self._span - self._done)
                except BaseException as exc:
                    self._ended(translate(exc, "read", store=self._store, image=self._image)
                                if isinstance(exc, Exception) else exc)
                    self.close()
                    raise
                self.resumes += 1
            reader = self._reader
            if reader is None:
                return b""
            data = reader.read(n)
            if data or self._done >= self._span:
                return data
            raise _EndedEarly(f"the stream ended after {self._done} of {self._span} bytes")

        def resume(exc: BaseException, attempt: int, delay: float) -> None:
            nonlocal reopen, failures
            failures = attempt
            log.warning("store %s: reading %s broke (%s); resuming at byte %d in %.2fs",
                        self._store, self._image, exc, self._done, delay)
            self._close_reader()
            reopen = True

        token = None
        if self._listener is not None and retry_listener.get() is not self._listener:
            token = retry_listener.set(self._listener)
        try:
            return self._policy.run(attempt, site="read-resume", what=f"store {self._store}: read {self._image}",
                                    retry_on=Exception, retry_if=lambda exc: isinstance(exc, Transient)
                                    and not self._closed, on_retry=resume, quiet=True)
        except _EndedEarly:
            return b""  # short: _finish reports the size mismatch
        except Exception as exc:
            error = translate(exc, "read", store=self._store, image=self._image, attempts=failures + 1)
            self._ended(error)
            self.close()
            if error is exc:
                raise
            raise error from exc
        finally:
            if token is not None:
                retry_listener.reset(token)

    def on_end(self, callback: Callable[[BaseException | None, int], None]) -> None:
        """Call ``callback(error, bytes_read)`` once when the stream ends: at its verified end
        (error None), when it fails (the error raised), or when it is closed early
        (:class:`ReadIncomplete`). The facade's observer counts a streamed read this way."""
        self._on_end = callback

    def _ended(self, exc: BaseException | None) -> None:
        callback, self._on_end = self._on_end, None
        if callback is not None:
            callback(exc, self._done)

    @property
    def verifying(self) -> bool:
        """Whether the stream is checked (against checksums at its end, or block by block)."""
        return self._hasher is not None or self._blocks is not None

    def read(self, n: int = -1) -> bytes:
        """Up to ``n`` bytes (all that is left for ``n < 0``); ``b""`` at the end after verifying."""
        if self._blocks is not None:
            return self._read_blocks(n)
        if n < 0:
            if self._hasher is not None:
                return b"".join(iter(self))  # chunked, so hashing overlaps the reads
            parts = []
            while part := self.read(max(self._span - self._done, 1)):
                parts.append(part)  # a file reader returns the rest at once: one buffer, no join
            return parts[0] if len(parts) == 1 else b"".join(parts)
        if n == 0 or self._closed:
            return b""
        data = self._raw_read(n)
        if not data:
            self._finish()
            return b""
        self._account(data)
        if self._done == self._span:
            self._complete()  # verified before the last byte leaves the reader
        return data

    def __iter__(self) -> Iterator[bytes]:
        if self._blocks is not None:
            if self._pos < len(self._pending):
                rest, self._pending = self._pending[self._pos:], b""
                yield rest
            while out := self._next_block():
                yield out
            return
        while not self._closed:
            data = self._raw_read(self._chunk)
            if not data:
                self._finish()
                return
            self._account(data)
            if self._done == self._span:
                self._complete()
            yield data

    def _read_blocks(self, n: int) -> bytes:
        """``read(n)`` of a block-verified range: from the last verified block, then the next."""
        if n < 0:
            return b"".join(iter(self))
        if n == 0:
            return b""
        if self._pos >= len(self._pending):
            self._pending, self._pos = self._next_block(), 0
        out = self._pending[self._pos:self._pos + n]
        self._pos += len(out)
        return out

    def _next_block(self) -> bytes:
        """The range's part of the next block, once the whole block is read and verified; b"" at the end."""
        check = self._blocks
        assert check is not None
        while True:
            if check.ready():
                try:
                    out = check.take()
                except ChecksumMismatch as exc:
                    self._ended(exc)
                    self.close()
                    raise
                if check.finished():
                    self._complete()  # the stream must end here, before the last block leaves
                return out
            if self._closed:
                return b""
            need = check.need()
            data = self._raw_read(need) if need else b""
            if not data:
                self._finish()
                return b""
            self._account(data)
            check.feed(data)

    def _account(self, data: bytes) -> None:
        self._done += len(data)
        if self._done > self._span:
            self._fail_size()
        if self._hasher is not None:
            token = self._token % _IN_FLIGHT
            if self._token >= _IN_FLIGHT:
                self._hasher.wait(token)
            self._hasher.submit(token, data)
            self._token += 1
        self._ticker.advance(len(data))

    def _fail_size(self) -> None:
        exc = SizeMismatch(f"read {self._done} bytes where {self._span} were expected", store=self._store,
                           image=self._image)
        self._ended(exc)
        self.close()
        raise exc

    def _complete(self) -> None:
        """All ``size`` bytes arrived: the stream must end here (a longer one is a SizeMismatch),
        then the checksums are compared, before the caller gets the last chunk."""
        if self._closed:
            return
        extra = self._raw_read(1)
        if extra:
            self._done += len(extra)
            self._fail_size()
        self._finish()

    def _finish(self) -> None:
        if self._closed:
            return
        if self._done != self._span:
            self._fail_size()
        self._ticker.finish()
        if self._hasher is not None and self._expected is not None:
            actual = self._hasher.digests()
            bad = compare(self._expected, actual)
            if bad is not None:
                algo, want, got = bad
                exc = ChecksumMismatch(
                    f"{algo} of the bytes read is {got}, expected {want}",
                    algorithm=algo, expected=want, actual=got, store=self._store, image=self._image,
                )
                self._ended(exc)
                self.close()
                raise exc
        self._ended(None)
        self.close()

    def _close_reader(self) -> None:
        reader, self._reader = self._reader, None
        if reader is not None:
            try:
                reader.close()
            except Exception as exc:  # noqa: BLE001 - closing a broken stream must not mask the read
                log.debug("store %s: closing a reader of %s failed: %s", self._store, self._image, exc)

    def close(self) -> None:
        """Release the backend reader and the hash threads."""
        if self._closed:
            return
        self._closed = True
        self._ended(ReadIncomplete(f"closed after {self._done} of {self._span} bytes"))
        if self._hasher is not None:
            self._hasher.close()
        if self._blocks is not None:
            self._blocks.close()
        self._close_reader()

    def __enter__(self) -> ImageReader:
        return self

    def __exit__(self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None) -> None:
        self.close()


_HOLE = 64 << 10
"""The shortest chunk of zeros :func:`write_atomically` leaves as a hole."""


def write_atomically(reader: ImageReader, path: str | os.PathLike[str], *, durable: bool = True) -> int:
    """Write the stream to ``path`` via a temporary file, then rename; returns bytes. Chunks of
    zeros become holes (the file is as sparse as the image's zeros allow); ``durable`` fsyncs the
    file and its directory (not for a scratch file that a crash takes with it)."""
    target = os.fspath(path)
    directory = os.path.dirname(os.path.abspath(target))
    tmp = os.path.join(directory, f".{os.path.basename(target)}.imagestore-{os.getpid()}-{id(reader):x}.part")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o644)
    written = 0
    try:
        for chunk in reader:
            view = memoryview(chunk)
            if len(view) >= _HOLE and is_zero(view):
                os.lseek(fd, len(view), os.SEEK_CUR)
                written += len(view)
                continue
            while view:
                n = os.write(fd, view)
                view = view[n:]
                written += n
        os.ftruncate(fd, written)  # a hole at the end is the file's length too
        if durable:
            os.fsync(fd)
        os.close(fd)
        fd = -1
        os.replace(tmp, target)
        if durable:
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
