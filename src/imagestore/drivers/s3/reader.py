"""The S3 driver's reader: one streaming ranged GET of an object, read ahead by a thread.

1 MiB socket reads, ``read_ahead`` of them buffered; a broken transfer surfaces as
``Transient`` and the facade resumes it with a ranged GET from the byte where it stopped.
"""

from __future__ import annotations

import queue
import threading
from typing import Any

from ...errors import NotFound, Transient
from .client import PreconditionFailed, translate
from .core import S3Store

__all__ = ["S3Reader"]


class S3Reader:
    """``[offset, offset + length)`` of one object as one streaming ranged GET, read ahead by a
    thread in ``chunk``-sized socket reads (at most ``depth`` of them waiting), so the network
    keeps going while the caller hashes or sends: memory is ``depth`` x ``chunk``.

    ``if_match`` pins the object's ETag (an inline or plain image can be replaced under its
    key): a replaced object is NotFound instead of two versions mixed. A stream cut short
    raises ``Transient`` after the bytes that did arrive; the facade then reopens at the byte
    it has, with a new ranged GET.
    """

    def __init__(self, driver: S3Store, key: str, image: str, offset: int, length: int, *,
                 if_match: str | None) -> None:
        self._d, self._image, self._want = driver, image, length
        self._got = 0
        self._cur = b""
        self._queue: queue.Queue[bytes | BaseException | None] = queue.Queue(max(1, driver.read_ahead))
        self._stop = threading.Event()
        self._body: Any = None
        self._thread: threading.Thread | None = None
        if length <= 0:
            return
        extra = {"IfMatch": if_match} if if_match else {}
        try:
            resp = driver.client.call("get_object", "read", image, Bucket=driver.bucket, Key=key,
                                      Range=f"bytes={offset}-{offset + length - 1}", **extra)
        except PreconditionFailed:
            raise NotFound("the image was deleted or replaced since it was opened", store=driver.name,
                           image=image) from None
        self._body = resp["Body"]
        self._thread = threading.Thread(target=self._pump, name="imagestore-s3-read", daemon=True)
        self._thread.start()

    def _put(self, item: bytes | BaseException | None) -> bool:
        while not self._stop.is_set():
            try:
                self._queue.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def _pump(self) -> None:
        try:
            while not self._stop.is_set():
                chunk = _read(self._body, _CHUNK, self._d.name, self._image)
                if not self._put(chunk) or not chunk:
                    return
        except BaseException as exc:  # noqa: BLE001 - handed to the reader, raised in its thread
            self._put(exc)

    def read(self, n: int) -> bytes:
        """Up to ``n`` bytes; ``b""`` at the end (Transient if the stream ended early)."""
        if not self._cur:
            if self._thread is None or self._got >= self._want:
                return b""
            item = self._queue.get()
            if isinstance(item, BaseException):
                raise item
            if not item:
                raise Transient(f"the stream ended after {self._got} of {self._want} bytes")
            self._cur = item
        out, self._cur = (self._cur, b"") if len(self._cur) <= n else (self._cur[:n], self._cur[n:])
        self._got += len(out)
        return out

    def close(self) -> None:
        """Stop reading ahead and release the connection."""
        self._stop.set()
        body, self._body = self._body, None
        if body is not None:
            try:
                body.close()
            except Exception:  # noqa: BLE001 - a broken stream may fail to close
                pass
        if self._thread is not None:
            self._thread.join(30)
            self._thread = None


_CHUNK = 1 << 20  # bytes per socket read


def _read(body: Any, n: int, store: str, image: str) -> bytes:
    """One read of a botocore body; a dropped connection mid-body is Transient (the facade
    then resumes the read at the byte where it stopped)."""
    try:
        data: bytes = body.read(n)
        return data
    except Exception as exc:
        error = translate(exc, "read", store=store, image=image)
        if error is exc and isinstance(exc, (OSError, ValueError)):  # urllib3 closed the response under us
            error = Transient(f"read broke mid-body: {type(exc).__name__}: {exc}")
        if error is exc:
            raise
        raise error from exc
