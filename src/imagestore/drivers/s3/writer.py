"""The S3 driver's upload writer: parts of a multipart upload, or one PutObject, then the publication.

A writer cuts the stream into parts with the shared uploader (:mod:`imagestore.spi.parts`):
the store's ``concurrency`` parts in flight, each retried on ``Transient``,
back-pressure on the source, part sizes growing as an upload of unknown size
grows. A stream that ends before its first part is full becomes one
conditional PutObject of an *inline* image; a longer one is a multipart upload
under a unique data key, published by a conditional PutObject of the image's
*record* (see :mod:`.core`), then copied over it. Either way the commit point is one
``If-None-Match: *`` PutObject, which both moto and radosgw 16.2 honour, so of
concurrent adds of one id exactly one wins and a failed add publishes nothing.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ...location import Location
from ...spi.parts import ChunkedUploader, PartSizes, Pending, ThreadParts
from .client import ViewBody
from .core import S3Store, inline_headers, new_token
from .lease import Lease

__all__ = ["S3Writer"]


class S3Writer:
    """One upload: inline PutObject below the first part, else multipart plus a record."""

    def __init__(self, driver: S3Store, image_id: str, size: int | None) -> None:
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
            self._start, sizes, concurrency=driver.concurrency, policy=driver.retry,
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
