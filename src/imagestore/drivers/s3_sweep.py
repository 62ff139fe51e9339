"""Sweeping an S3 store: dead writers' multipart uploads, unpublished data and stale leases.

The liveness rule: an upload (multipart upload or data object of token T) is a
live writer's while the lease ``.imagestore/uploads/<id>/T`` was refreshed less
than ``stale_after`` seconds ago (two heartbeats plus the connect and read
timeouts a refresh may take), by the server's clock (the ``Date`` of the
listing). Only uploads without a fresh lease and older than ``older_than`` are
removed, and data only when the image's record does not name it (checked with
a HEAD right before the delete).

The uploads and data are listed before the leases: a writer takes its lease
before it writes and drops it only after it published or cleaned up, so what
a listing shows without a fresh lease in the later one is a dead (or finished)
writer's. moto reports every multipart upload as initiated in 2010, so there
liveness, not age, is what protects a new upload.
"""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Iterator
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import TYPE_CHECKING, Any

from ..contract import SweepReport
from ..errors import NotFound
from .s3_layout import Layout

if TYPE_CHECKING:
    from .s3 import S3Driver

__all__ = ["sweep"]


def _server_now(resp: dict[str, Any]) -> datetime:
    """The server's time from a response's Date header (this machine's clock if there is none)."""
    date = resp.get("ResponseMetadata", {}).get("HTTPHeaders", {}).get("date")
    try:
        return parsedate_to_datetime(date) if date else datetime.now(UTC)
    except (TypeError, ValueError):
        return datetime.now(UTC)


def _objects(d: S3Driver, prefix: str, delimiter: str | None = None) -> Iterator[tuple[dict[str, Any], datetime]]:
    """Every object listed under ``prefix`` (one level with ``delimiter``), with the server's time."""
    token: str | None = None
    while True:
        params: dict[str, Any] = {"Bucket": d.bucket, "Prefix": prefix}
        if delimiter:
            params["Delimiter"] = delimiter
        if token:
            params["ContinuationToken"] = token
        resp = d.client.call("list_objects_v2", "list objects", **params)
        now = _server_now(resp)
        for obj in resp.get("Contents", []):
            yield obj, now
        if not resp.get("IsTruncated"):
            return
        token = resp.get("NextContinuationToken")


def _uploads(d: S3Driver, prefix: str) -> Iterator[dict[str, Any]]:
    """Every open multipart upload under ``prefix``."""
    marker: dict[str, Any] = {}
    while True:
        resp = d.client.call("list_multipart_uploads", "list multipart uploads", Bucket=d.bucket, Prefix=prefix,
                             **marker)
        yield from resp.get("Uploads", [])
        if not resp.get("IsTruncated"):
            return
        marker = {"KeyMarker": resp.get("NextKeyMarker", ""), "UploadIdMarker": resp.get("NextUploadIdMarker", "")}


def _upload_bytes(d: S3Driver, key: str, upload_id: str) -> int:
    """Bytes held by the parts of one upload."""
    total, marker = 0, 0
    while True:
        resp = d.client.call("list_parts", "list parts", Bucket=d.bucket, Key=key, UploadId=upload_id,
                             PartNumberMarker=marker)
        total += sum(int(p.get("Size", 0)) for p in resp.get("Parts", []))
        if not resp.get("IsTruncated"):
            return total
        marker = int(resp.get("NextPartNumberMarker", 0))


def _referenced(d: S3Driver, image: str) -> str | None:
    """The token the image's record names now (None: no image, or one not written by imagestore)."""
    try:
        return d.resolve(d.layout.image_key(image), image).token
    except NotFound:
        return None


def sweep(d: S3Driver, older_than: float, deadline: float | None) -> SweepReport:
    """Remove what dead writers left; stops (with what it removed) once ``deadline`` passes."""
    report = SweepReport()
    layout = d.layout

    def late() -> bool:
        return deadline is not None and time.monotonic() > deadline

    # what may be a writer's: listed before the leases (a writer leases before it writes)
    uploads = list(_uploads(d, layout.data_prefix))
    data: dict[str, list[tuple[str, str, int, datetime]]] = defaultdict(list)
    for obj, _ in _objects(d, layout.data_prefix):
        owner = Layout.split(obj["Key"], layout.data_prefix)
        if owner is not None:
            data[owner[0]].append((obj["Key"], owner[1], int(obj.get("Size", 0)), obj["LastModified"]))
    published = {obj["Key"][len(layout.prefix):] for obj, _ in _objects(d, layout.prefix, "/")}
    live: set[tuple[str, str]] = set()
    stale: list[tuple[str, float]] = []
    now: datetime | None = None
    for obj, now in _objects(d, layout.lease_prefix):
        owner = Layout.split(obj["Key"], layout.lease_prefix)
        if owner is None:
            continue
        idle = (now - obj["LastModified"]).total_seconds()
        if idle < d.stale_after:
            live.add(owner)
        else:
            stale.append((obj["Key"], idle))
    if now is None:
        now = _server_now(d.client.call("list_objects_v2", "list objects", Bucket=d.bucket,
                                        Prefix=layout.lease_prefix, MaxKeys=1))

    for up in uploads:
        if late():
            return report
        owner = Layout.split(up["Key"], layout.data_prefix)
        if owner is None or owner in live or (now - up["Initiated"]).total_seconds() < older_than:
            continue
        try:
            freed = _upload_bytes(d, up["Key"], up["UploadId"])
            d.client.call("abort_multipart_upload", "abort a dead upload", owner[0], Bucket=d.bucket,
                          Key=up["Key"], UploadId=up["UploadId"])
        except NotFound:
            continue  # completed or aborted since it was listed
        report += SweepReport(1, freed)

    for image, entries in data.items():
        if late():
            return report
        dead = [e for e in entries if (image, e[1]) not in live and (now - e[3]).total_seconds() >= older_than]
        if not dead or (image in published and len(entries) == 1):
            continue  # the common case: the one data object the record names
        named = _referenced(d, image)  # right before the deletes: a record published meanwhile counts
        for key, token, size, _ in dead:
            if token == named:
                continue
            d.client.call("delete_object", "delete dead data", image, Bucket=d.bucket, Key=key)
            report += SweepReport(1, size)

    for key, idle in stale:
        if late():
            return report
        if idle < older_than:
            continue
        d.client.call("delete_object", "delete a dead writer's lease", Bucket=d.bucket, Key=key)
        report += SweepReport(1, 0)
    return report
