"""Server-side clones between stores of one S3 endpoint, published like an add.

The bytes never pass through this process: one CopyObject up to the target's
``copy_part_size``, above it a multipart upload whose parts are UploadPartCopy
ranges of the source, ``concurrency`` in flight, each retried on ``Transient``
(:func:`~imagestore.spi.parts.run_parts`). The copy lands on a unique data key of the target
under a lease, and the target's record is published with one conditional
PutObject (then the data is copied over it, :func:`copy_object` again), so a
clone is atomic and exclusive exactly as an add is (CopyObject itself ignores
``If-None-Match`` on both moto and radosgw).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ...spi.contract import ClonePlan, CloneRequest
from ...errors import AlreadyExists, NotFound, PermissionDenied, Unsupported
from ...location import Location, validate_image_id
from ...results import CloneRefusal
from ...spi.parts import Pending, ThreadParts, run_parts
from .client import PreconditionFailed
from .core import MAX_PARTS, MiB, Resolved, S3Store, new_token
from .lease import Lease

__all__ = ["copy_object", "plan", "server_copy"]


def plan(source: S3Store, location: Location, target: S3Store) -> ClonePlan:
    """"server_copy" when ``target`` (an s3 store) is of the same endpoint and may read the source."""
    here, there = source.describe()["endpoint"], target.describe()["endpoint"]
    if here != there:
        return ClonePlan(None, f"another S3 endpoint ({there}, the image is at {here})",
                         CloneRefusal.DIFFERENT_ENDPOINT)
    found = source.resolve_location(location)
    try:
        target.client.call("head_object", "check the source is readable", location.image, Bucket=source.bucket,
                           Key=found.data_key)
    except PermissionDenied:
        return ClonePlan(None, f"the credentials of store {target.name!r} may not read bucket {source.bucket!r}",
                         CloneRefusal.PERMISSION)
    return ClonePlan("server_copy", f"same S3 endpoint {here}: server-side copy from bucket {source.bucket!r} "
                                    f"into bucket {target.bucket!r}")


def server_copy(source: S3Store, location: Location, target: S3Store, request: CloneRequest) -> Location:
    """Copy the image into ``target`` (an s3 store) as ``request.name`` inside the endpoint; its new location."""
    if source.describe()["endpoint"] != target.describe()["endpoint"]:
        raise Unsupported(f"store {target.name!r} is not on this S3 endpoint: no server-side copy",
                          store=source.name, image=location.image)
    name = validate_image_id(request.name)
    found = source.resolve_location(location)
    key = target.layout.image_key(name)
    try:
        target.client.call("head_object", "check the id is free", name, Bucket=target.bucket, Key=key)
    except NotFound:
        pass
    else:
        raise AlreadyExists("the clone target name is taken", store=target.name, image=name)
    _Copy(source, found, target, name).run(dict(request.metadata))
    return target.location_for(name)


class _Copy:
    """One server-side copy into a unique data key of the target, then its record."""

    def __init__(self, source: S3Store, found: Resolved, target: S3Store, name: str) -> None:
        self.src, self.found, self.dst, self.name = source, found, target, name
        self.token = new_token()
        self.data_key = target.layout.data_key(name, self.token)
        self.copy_source = {"Bucket": source.bucket, "Key": found.data_key}
        # an inline or plain image can be replaced under its key: copy only the version seen
        self.pin: dict[str, str] = {"CopySourceIfMatch": found.etag} if found.kind != "record" and found.etag \
            else {}

    def run(self, metadata: dict[str, str]) -> None:
        dst = self.dst
        lease = Lease(dst, self.name, self.token)
        lease.start()
        try:
            try:
                copy_object(dst, self.name, self.copy_source, self.found.size, self.data_key, {},
                            part_size=dst.copy_part_size, pin=self.pin)
            except PreconditionFailed:
                raise NotFound("the source image was replaced during the copy", store=self.src.name,
                               image=self.found.key.rsplit("/", 1)[-1]) from None
            dst.publish_record(self.name, self.token, self.found.size, metadata)
        except BaseException:
            dst.quietly(lambda: dst.client.call("delete_object", "delete the unpublished copy", self.name,
                                                Bucket=dst.bucket, Key=self.data_key),
                        "delete the unpublished copy")
            raise
        finally:
            lease.release()


def copy_object(dst: S3Store, image: str, source: Mapping[str, str], size: int, key: str,
                metadata: Mapping[str, str], *, part_size: int, pin: Mapping[str, str] | None = None,
                content_type: str = "application/octet-stream") -> None:
    """Copy ``source`` (bucket and key of this endpoint) to ``key`` of ``dst``'s bucket with
    ``metadata``, inside the endpoint: one CopyObject up to ``part_size`` bytes, else a
    multipart upload of UploadPartCopy ranges, ``concurrency`` in flight (aborted if it fails)."""
    extra = dict(pin or {})
    if size <= part_size:
        dst.retrying(lambda: dst.client.call(
            "copy_object", "server-side copy", image, Bucket=dst.bucket, Key=key, CopySource=dict(source),
            MetadataDirective="REPLACE", Metadata=dict(metadata), ContentType=content_type, **extra),
            "server-side copy")
        return
    resp = dst.retrying(lambda: dst.client.call(
        "create_multipart_upload", "start a multipart copy", image, Bucket=dst.bucket, Key=key,
        Metadata=dict(metadata), ContentType=content_type), "start a multipart copy")
    upload_id = str(resp["UploadId"])
    try:
        parts = _copy_parts(dst, image, source, size, key, upload_id, part_size, extra)
        dst.retrying(lambda: dst.client.call(
            "complete_multipart_upload", "complete the multipart copy", image, Bucket=dst.bucket, Key=key,
            UploadId=upload_id, MultipartUpload={"Parts": parts}), "complete the multipart copy")
    except BaseException:
        dst.quietly(lambda: dst.client.call("abort_multipart_upload", "abort the multipart copy", image,
                                            Bucket=dst.bucket, Key=key, UploadId=upload_id),
                    "abort the multipart copy")
        raise


def _copy_parts(dst: S3Store, image: str, source: Mapping[str, str], size: int, key: str, upload_id: str,
                part_size: int, pin: Mapping[str, str]) -> list[dict[str, Any]]:
    """UploadPartCopy of every range, ``concurrency`` in flight; the parts for Complete."""
    part = max(part_size, -(-size // MAX_PARTS))
    part = -(-part // MiB) * MiB
    ranges = [(start, min(size, start + part) - 1) for start in range(0, size, part)]
    pool = ThreadParts(dst.concurrency, name="imagestore-s3-copy")

    def one(number: int, first: int, last: int) -> dict[str, Any]:
        resp = dst.client.call("upload_part_copy", f"copy part {number}", image, Bucket=dst.bucket, Key=key,
                               UploadId=upload_id, PartNumber=number, CopySource=dict(source),
                               CopySourceRange=f"bytes={first}-{last}", **pin)
        return {"ETag": resp["CopyPartResult"]["ETag"], "PartNumber": number}

    def starter(number: int, first: int, last: int) -> Any:
        def start() -> Pending[dict[str, Any]]:
            return pool.run(one, number, first, last)
        return start

    try:
        return run_parts([starter(n, a, b) for n, (a, b) in enumerate(ranges, 1)], concurrency=dst.concurrency,
                         policy=dst.retry, label=f"store {dst.name!r}: copy of {image!r}")
    finally:
        pool.close()
