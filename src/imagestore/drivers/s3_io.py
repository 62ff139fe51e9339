"""Streaming I/O of the S3 driver: the upload writer, the writer's lease and the reader.

A writer cuts the stream into parts with the shared uploader (:mod:`.chunked`):
the store's ``concurrency`` parts in flight, each retried on ``Transient``,
back-pressure on the source, part sizes growing as an upload of unknown size
grows. A stream that ends before its first part is full becomes one
conditional PutObject of an *inline* image; a longer one is a multipart upload
under a unique data key, published by a conditional PutObject of the image's
*record* (see :mod:`.s3_layout`), then copied over it. Either way the commit point is one
``If-None-Match: *`` PutObject, which both moto and radosgw 16.2 honour, so of
concurrent adds of one id exactly one wins and a failed add publishes nothing.

A reader is one streaming ranged GET read ahead by a thread (1 MiB socket reads,
``read_ahead`` of them buffered); a broken transfer surfaces as ``Transient`` and
the facade resumes it with a ranged GET from the byte where it stopped.
"""

from __future__ import annotations

import json
import logging
import queue
import threading
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from ..errors import NotFound, Transient
from ..location import Location
from .chunked import ChunkedUploader, PartSizes, Pending, ThreadParts
from .s3_client import PreconditionFailed, ViewBody, translate
from .s3_layout import inline_headers, new_token

if TYPE_CHECKING:
    from .s3 import S3Driver

__all__ = ["Lease", "S3Reader", "S3Writer"]

log = logging.getLogger("imagestore")


class Lease:
    """A live writer's mark: an object refreshed every ``heartbeat`` seconds until released.

    ``sweep`` leaves alone every upload whose lease was refreshed within the driver's
    ``stale_after`` (two heartbeats plus the connect and read timeouts a refresh may take,
    by the server's clock), and removes dead writers' leftovers once old enough.
    """

    def __init__(self, driver: S3Driver, image_id: str, token: str) -> None:
        self._d = driver
        self.key = driver.layout.lease_key(image_id, token)
        self._body = json.dumps({"image": image_id, "token": token}).encode()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._image = image_id

    def _put(self) -> None:
        self._d.client.call("put_object", "put the upload lease", self._image, Bucket=self._d.bucket, Key=self.key,
                            Body=self._body, ContentType="application/json")

    def start(self) -> None:
        """Write the lease (retried like a part) and start refreshing it."""
        self._d.retrying(self._put, "put the upload lease")
        self._thread = threading.Thread(target=self._beat, name="imagestore-s3-lease", daemon=True)
        self._thread.start()

    def _beat(self) -> None:
        while not self._stop.wait(self._d.heartbeat):
            try:
                self._put()
            except Exception as exc:  # noqa: BLE001 - a missed beat is retried at the next one
                log.warning("store %s: refreshing the lease of an upload of %s failed: %s", self._d.name,
                            self._image, exc)

    def release(self) -> None:
        """Stop refreshing and delete the lease (a failure leaves it to go stale; sweep removes it)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        try:
            self._d.retrying(lambda: self._d.client.call("delete_object", "delete the upload lease", self._image,
                                                         Bucket=self._d.bucket, Key=self.key),
                             "delete the upload lease")
        except Exception as exc:  # noqa: BLE001 - a lease left behind goes stale and is swept
            log.warning("store %s: deleting the lease of an upload of %s failed: %s", self._d.name, self._image, exc)


class S3Writer:
    """One upload: inline PutObject below the first part, else multipart plus a record."""

    def __init__(self, driver: S3Driver, image_id: str, size: int | None) -> None:
        self._d = driver
        self._id = image_id
        self._token = new_token()
        self._key = driver.layout.image_key(image_id)
        self._data_key = driver.layout.data_key(image_id, self._token)
        self._state = "open"
        self._upload_id: str | None = None
        self._maybe_data = False  # a request that may have created the data object was sent
        self._inline = False  # the image was published inline (by the single PUT)
        self._metadata: Mapping[str, str] = {}
        self._pool: ThreadParts | None = None
        self._lease: Lease | None = None
        label = f"store {driver.name!r}: upload of {image_id!r}"
        if size is not None and size < driver.single_put_threshold:
            sizes = PartSizes(size + 1)  # never fills: the whole image goes in one PUT at commit
        else:
            sizes = driver.part_sizes(size)
            self._lease = Lease(driver, image_id, self._token)
            self._lease.start()
        self._parts: ChunkedUploader[dict[str, Any]] = ChunkedUploader(
            self._start, sizes, concurrency=driver.concurrency, retries=driver.retries, backoff=driver.retry_backoff,
            memory_budget=driver.concurrency * driver.part_size, single=self._single, label=label)

    # -- parts ----------------------------------------------------------------
    def _start(self, index: int, offset: int, data: memoryview) -> Pending[dict[str, Any]]:
        d = self._d
        if self._upload_id is None:
            resp = d.retrying(lambda: d.client.call("create_multipart_upload", "start a multipart upload", self._id,
                                                    Bucket=d.bucket, Key=self._data_key),
                              "start a multipart upload")
            self._upload_id = str(resp["UploadId"])
            self._pool = ThreadParts(d.concurrency, name="imagestore-s3-part")
        assert self._pool is not None
        return self._pool.run(self._send_part, index + 1, data)

    def _send_part(self, number: int, data: memoryview) -> dict[str, Any]:
        d = self._d
        resp = d.client.call("upload_part", f"upload part {number}", self._id, Bucket=d.bucket, Key=self._data_key,
                             UploadId=self._upload_id, PartNumber=number, Body=ViewBody(data),
                             ContentLength=len(data))
        return {"ETag": resp["ETag"], "PartNumber": number}

    def _single(self, data: memoryview) -> dict[str, Any]:
        """The whole image in one request: inline at the image's key when its metadata fits
        in headers (the publication itself), else the data object of a record."""
        d = self._d
        headers = inline_headers(self._token, self._metadata)
        if headers is not None:
            self._inline = True
            d.put_new(self._id, self._key, self._token, lambda: ViewBody(data), len(data), headers)
            return {}
        if self._lease is None:  # the record path needs a lease while its data is unpublished
            self._lease = Lease(d, self._id, self._token)
            self._lease.start()
        self._maybe_data = True
        d.retrying(lambda: d.client.call("put_object", "upload the image data", self._id, Bucket=d.bucket,
                                         Key=self._data_key, Body=ViewBody(data), ContentLength=len(data)),
                   "upload the image data")
        return {}

    # -- the Writer protocol ----------------------------------------------------
    def write(self, data: memoryview | bytes | bytearray) -> None:
        """Append ``data``; blocks while every part buffer is in flight."""
        if self._state != "open":
            raise ValueError(f"write on a {self._state} upload")
        self._parts.write(data)

    def commit(self, metadata: Mapping[str, str]) -> Location:
        """Finish the upload and publish it with one conditional PutObject; AlreadyExists if
        another writer published this id first (this upload is then removed)."""
        if self._state != "open":
            raise ValueError(f"commit on a {self._state} upload")
        d = self._d
        self._metadata = dict(metadata)
        try:
            parts = self._parts.finish()
            if self._upload_id is not None:
                self._maybe_data = True
                d.retrying(lambda: d.client.call("complete_multipart_upload", "complete the multipart upload",
                                                 self._id, Bucket=d.bucket, Key=self._data_key,
                                                 UploadId=self._upload_id, MultipartUpload={"Parts": parts}),
                           "complete the multipart upload")
                self._upload_id = None
            if not self._inline:
                d.publish_record(self._id, self._token, self._parts.size, self._metadata)
        except BaseException:
            self.abort()
            raise
        self._state = "committed"
        self._close()
        return d.location_for(self._id)

    def abort(self) -> None:
        """Stop the parts, abort the multipart upload, delete the data and the lease; twice is fine."""
        if self._state in ("aborted", "committed"):
            return
        self._state = "aborted"
        d = self._d
        self._parts.abort()
        try:
            if self._upload_id is not None:
                upload_id, self._upload_id = self._upload_id, None
                d.quietly(lambda: d.client.call("abort_multipart_upload", "abort the multipart upload", self._id,
                                                Bucket=d.bucket, Key=self._data_key, UploadId=upload_id),
                          "abort the multipart upload")
            if self._maybe_data:
                d.quietly(lambda: d.client.call("delete_object", "delete the unpublished data", self._id,
                                                Bucket=d.bucket, Key=self._data_key),
                          "delete the unpublished data")
        finally:
            self._close()

    def _close(self) -> None:
        if self._lease is not None:
            self._lease.release()
            self._lease = None
        if self._pool is not None:
            self._pool.close()
            self._pool = None


class S3Reader:
    """``[offset, offset + length)`` of one object as one streaming ranged GET, read ahead by a
    thread in ``chunk``-sized socket reads (at most ``depth`` of them waiting), so the network
    keeps going while the caller hashes or sends: memory is ``depth`` x ``chunk``.

    ``if_match`` pins the object's ETag (an inline or plain image can be replaced under its
    key): a replaced object is NotFound instead of two versions mixed. A stream cut short
    raises ``Transient`` after the bytes that did arrive; the facade then reopens at the byte
    it has, with a new ranged GET.
    """

    def __init__(self, driver: S3Driver, key: str, image: str, offset: int, length: int, *,
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
