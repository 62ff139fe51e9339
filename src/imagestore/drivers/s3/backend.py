"""S3 driver: images in one bucket of an S3 endpoint (AWS, Ceph radosgw, MinIO, moto).

An image is the object ``PREFIX<id>`` (glance_store's layout, so glance's
``s3://host/bucket/key`` locations resolve to it). Small images are written
*inline* there with one conditional PutObject (``If-None-Match: *``); bigger
ones go to a unique data key by multipart upload and are published by a
conditional PutObject of a small *record* at ``PREFIX<id>`` that names them
(:mod:`.core`), which the winner then replaces by a server-side copy of
its data, so the key ends up holding the image's bytes for any S3 client. The
commit point is therefore always one conditional PutObject, which radosgw 16.2
honours (it ignores the condition on CompleteMultipartUpload and CopyObject);
a store opens only on an endpoint that honours it (probed), unless
``atomic_create = "no"`` accepts adds that are not exclusive across processes.
Clones within one endpoint are server-side copies (CopyObject, or UploadPartCopy
in parallel for big images); ``locate`` gives a presigned GET URL.
"""

from __future__ import annotations

import logging
import math
import os
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any, ClassVar, TypeVar
from urllib.parse import urlsplit

from ...spi.capabilities import Capabilities
from ...spi.options import Secret, parse_duration, parse_size
from ...spi.contract import ClonePlan, CloneRequest, DeleteOutcome, DriverContext, Option, Stored, SweepReport
from ...errors import (
    AlreadyExists,
    BackendError,
    ConfigError,
    InUse,
    InvalidLocation,
    NotFound,
    PermissionDenied,
    Transient,
    Unsupported,
)
from ...location import DirectAccess, Location, validate_image_id
from ...results import CloneRefusal
from ...spi.driver import Driver
from ...spi.parts import PartSizes, call_retrying
from ...spi.retry import RetryPolicy, Timeouts
from .client import PreconditionFailed, S3Client, server_time
from .copier import copy_object, plan, server_copy
from .core import (
    INLINE,
    LARGEST_GROWN_PART,
    MARK,
    MAX_OBJECT,
    MAX_PART,
    MAX_PARTS,
    MAX_PRESIGN,
    MIN_PART,
    RECORD,
    SIZE,
    TOKEN,
    Layout,
    MiB,
    Resolved,
    inline_headers,
    meta_from_headers,
    new_token,
    parse_record_body,
    record_body,
    record_headers,
)
from .reader import S3Reader
from .sweeper import sweep
from .writer import S3Writer

__all__ = ["S3Driver"]

log = logging.getLogger("imagestore")
T = TypeVar("T")
_CACHE_TTL = 30.0  # seconds a stat's answer serves the open that follows it
_CACHE_MAX = 4096
_RESOLVE_ATTEMPTS = 4  # reads of an image key whose record keeps changing under the GET


def _positive(value: float, key: str, low: float, high: float) -> float:
    if not low <= float(value) <= high:
        raise ConfigError(f"must be between {low:g} and {high:g}, got {value!r}", key=key)
    return float(value)


def _size(value: object, key: str, low: int, high: int) -> int:
    size = parse_size(value, key)
    if not low <= size <= high:
        raise ConfigError(f"must be between {low} and {high} bytes, got {size}", key=key)
    return size


def _endpoint(value: str | None, key: str) -> tuple[str | None, str, bool]:
    """The endpoint URL, the location host it gives (netloc without a default port), https?"""
    if value is None:
        return None, "", True
    parts = urlsplit(value.strip())
    if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
        raise ConfigError(f"expected an http:// or https:// URL, got {value!r}", key=key)
    if parts.username or parts.password or "@" in parts.netloc:
        raise ConfigError("credentials do not belong in the endpoint URL; use access_key/secret_key", key=key)
    if parts.query or parts.fragment or parts.path.strip("/"):
        raise ConfigError("the endpoint is scheme://host[:port] only (the bucket is its own key)", key=key)
    scheme = parts.scheme.lower()
    host = parts.hostname.lower()
    if ":" in host:
        host = f"[{host}]"
    port = parts.port
    netloc = host if port is None or port == (443 if scheme == "https" else 80) else f"{host}:{port}"
    return f"{scheme}://{netloc}", netloc, scheme == "https"


def _prefix(value: str, key: str) -> str:
    """``""`` or ``seg/seg/`` (the image id is then the last segment of every location)."""
    segs = [s for s in value.strip("/").split("/")] if value.strip("/") else []
    if any(not s or s in (".", "..") or s.startswith(".") for s in segs):
        raise ConfigError(f"bad prefix {value!r}: segments must be non-empty and not start with '.'", key=key)
    return "".join(f"{s}/" for s in segs)


class S3Driver(Driver):
    """Images in one bucket of one S3 endpoint; one boto3 client per store, shared by all threads."""

    scheme: ClassVar[str] = "s3"
    OPTIONS: ClassVar[Mapping[str, Option]] = {
        "endpoint": Option(str, default=None, help="http(s)://host[:port] of the S3 service (default: AWS)"),
        "region": Option(str, default="us-east-1", help="region to sign requests for"),
        "bucket": Option(str, required=True, help="bucket holding the images"),
        "prefix": Option(str, default="", help="key prefix of the images ('' or 'dir/')"),
        "addressing_style": Option(str, default="auto", choices=("auto", "path", "virtual"),
                                   help="auto: path-style with an endpoint, virtual-hosted on AWS"),
        "verify": Option((bool, str), default=True, help="verify TLS (true/false) or path of a CA bundle"),
        "access_key": Option(str, secret=True, help="access key id (default: the AWS credential chain)"),
        "secret_key": Option(str, secret=True, help="secret access key (with access_key)"),
        "create_bucket": Option(bool, default=False, help="create the bucket when the store opens if missing"),
        "part_size": Option((int, str), default="16M", help="first multipart part size, 5M..5G"),
        "strict_part_size": Option(bool, default=False, help="keep every part the same size (no growth)"),
        "part_growth_every": Option(int, default=None,
                                    help="parts between doublings of the part size for unknown sizes "
                                         "(default: as late as still reaches 5 TiB in 10,000 parts)"),
        "single_put_threshold": Option((int, str), default="16M",
                                       help="images of a known size below this go in one PutObject"),
        "copy_part_size": Option((int, str), default="1G",
                                 help="server-side copies above this use UploadPartCopy parts of this size"),
        "read_timeout": Option((int, float), default=None,
                               help="seconds to wait for data on a connection (default: the store's io_timeout)"),
        "presign_ttl": Option((int, float, str), default="1h", help="lifetime of locate() URLs"),
        "request_checksum_calculation": Option(str, default="when_required",
                                               choices=("when_required", "when_supported"),
                                               help="boto3's own request checksums (some radosgw refuse them)"),
        "response_checksum_validation": Option(str, default="when_required",
                                               choices=("when_required", "when_supported"),
                                               help="boto3's own response checksum checks"),
        "atomic_create": Option(str, default="probe", choices=("probe", "yes", "no"),
                                help="whether the endpoint honours If-None-Match on PutObject: probed "
                                     "when the store opens (an endpoint that ignores it is refused), or "
                                     "declared; 'no' accepts adds whose id check does not hold across processes"),
        "heartbeat": Option((int, float), default=10.0, help="seconds between refreshes of a writer's lease"),
    }
    RECORD_TYPE: ClassVar[str] = "application/vnd.imagestore.record+json"
    default_concurrency: ClassVar[int] = 8
    """Parts (and read-ahead GETs) in flight per stream when the store sets no ``concurrency``."""
    read_ahead: int = 8
    """1 MiB socket reads a reader keeps buffered ahead of its caller."""

    def __init__(
        self,
        name: str,
        *,
        bucket: str,
        endpoint: str | None = None,
        region: str = "us-east-1",
        prefix: str = "",
        addressing_style: str = "auto",
        verify: bool | str = True,
        access_key: Secret | None = None,
        secret_key: Secret | None = None,
        create_bucket: bool = False,
        part_size: int | str = "16M",
        strict_part_size: bool = False,
        part_growth_every: int | None = None,
        single_put_threshold: int | str = "16M",
        copy_part_size: int | str = "1G",
        connect_timeout: float | None = None,
        read_timeout: float | None = None,
        presign_ttl: float | str = "1h",
        request_checksum_calculation: str = "when_required",
        response_checksum_validation: str = "when_required",
        atomic_create: str = "probe",
        heartbeat: float = 10.0,
    ) -> None:
        super().__init__(name)
        key = f"stores.{name}"
        if not bucket or "/" in bucket or bucket != bucket.strip():
            raise ConfigError(f"bad bucket name {bucket!r}", key=f"{key}.bucket")
        if (access_key is None) != (secret_key is None):
            raise ConfigError("give both access_key and secret_key, or neither (the AWS credential chain)",
                              key=f"{key}.{'secret_key' if secret_key is None else 'access_key'}")
        if isinstance(verify, str) and not os.path.isfile(verify):
            raise ConfigError(f"CA bundle {verify!r} is not a file", key=f"{key}.verify")
        self.endpoint_url, self.host, self.secure = _endpoint(endpoint, f"{key}.endpoint")
        self.region = region
        if self.endpoint_url is None:
            self.host = f"s3.{region}.amazonaws.com"
        self.bucket = bucket
        self.layout = Layout(_prefix(prefix, f"{key}.prefix"))
        self.addressing_style = (("path" if self.endpoint_url else "virtual") if addressing_style == "auto"
                                 else addressing_style)
        self.verify = verify
        self._keys = (access_key, secret_key)
        self.create_bucket = create_bucket
        self.part_size = _size(part_size, f"{key}.part_size", MIN_PART, MAX_PART)
        self.strict_part_size = strict_part_size
        self.single_put_threshold = _size(single_put_threshold, f"{key}.single_put_threshold", 1, MAX_PART)
        self.copy_part_size = _size(copy_part_size, f"{key}.copy_part_size", MIN_PART, MAX_PART)
        self._timeouts = (None if connect_timeout is None else _positive(connect_timeout, f"{key}.connect_timeout",
                                                                          0.1, 600),
                          None if read_timeout is None else _positive(read_timeout, f"{key}.read_timeout", 0.1, 3600))
        self.connect_timeout, self.read_timeout = self._apply_timeouts(Timeouts())
        ttl = parse_duration(presign_ttl, f"{key}.presign_ttl")
        self.presign_ttl = _positive(ttl, f"{key}.presign_ttl", 1, MAX_PRESIGN)
        self.checksum_calculation = request_checksum_calculation
        self.checksum_validation = response_checksum_validation
        self.atomic_create = atomic_create
        self.heartbeat = _positive(heartbeat, f"{key}.heartbeat", 0.2, 600)
        self.grow_every = self._growth(part_growth_every, f"{key}.part_growth_every")
        self.concurrency = self.default_concurrency
        self.retry = RetryPolicy()
        self._client: S3Client | None = None
        self._conditional = atomic_create != "no"
        self._cache: dict[str, tuple[float, Resolved]] = {}
        self._cache_lock = threading.Lock()
        self.sweep_cursor: Any = None
        """Where a sweep cut short by its deadline stopped (:mod:`.sweeper`): the next goes on there."""

    def _apply_timeouts(self, timeouts: Timeouts) -> tuple[float, float]:
        """(connect, read) seconds for botocore: this driver's own values, else the store's."""
        mine = timeouts.override(*self._timeouts)
        return mine.connect, mine.io

    # -- part sizes -------------------------------------------------------------
    def _growth(self, every: int | None, key: str) -> int:
        """Parts between doublings for unknown sizes: the configured value, checked to reach
        5 TiB, else the latest that does (so parts stay small as long as they can)."""
        if self.strict_part_size:
            return 0
        largest = max(self.part_size, LARGEST_GROWN_PART)

        def reach(n: int) -> int:
            cap = PartSizes(self.part_size, grow_every=n, largest=largest, max_parts=MAX_PARTS).capacity()
            return cap or 0

        if every is not None:
            if every < 1:
                raise ConfigError("must be at least 1", key=key)
            if reach(every) < MAX_OBJECT:
                raise ConfigError(f"with part_size {self.part_size} an upload of unknown size would stop at "
                                  f"{reach(every)} bytes (5 TiB needs a smaller value)", key=key)
            return every
        lo, hi = 1, MAX_PARTS  # the largest n that still reaches 5 TiB
        while lo < hi:
            mid = (lo + hi + 1) // 2
            lo, hi = (mid, hi) if reach(mid) >= MAX_OBJECT else (lo, mid - 1)
        return lo

    def part_sizes(self, size: int | None) -> PartSizes:
        """Parts of one multipart upload: equal for a known size (or strict), else growing."""
        if size is not None:
            equal = max(self.part_size, -(-size // MAX_PARTS))
            equal = -(-equal // MiB) * MiB
            return PartSizes(min(equal, MAX_PART), max_parts=MAX_PARTS)
        if self.strict_part_size:
            return PartSizes(self.part_size, max_parts=MAX_PARTS)
        return PartSizes(self.part_size, grow_every=self.grow_every, largest=max(self.part_size, LARGEST_GROWN_PART),
                         max_parts=MAX_PARTS)

    # -- lifecycle ----------------------------------------------------------------
    @property
    def client(self) -> S3Client:
        if self._client is None:
            raise BackendError("the store is not open", store=self.name)
        return self._client

    def open(self, context: DriverContext) -> Capabilities:
        """Make the client, check the bucket (create it if asked), probe conditional writes."""
        self.concurrency = context.concurrency or self.default_concurrency
        self.retry = context.retry
        self.connect_timeout, self.read_timeout = self._apply_timeouts(context.timeouts)
        access, secret = self._keys
        if self._client is None:
            self._client = S3Client(
                self.name, endpoint=self.endpoint_url, region=self.region,
                access_key=access.reveal() if access is not None else None,
                secret_key=secret.reveal() if secret is not None else None, verify=self.verify,
                addressing_style=self.addressing_style, connect_timeout=self.connect_timeout,
                read_timeout=self.read_timeout, pool=max(16, 4 * self.concurrency + 4),
                checksum_calculation=self.checksum_calculation, checksum_validation=self.checksum_validation)
        self._ensure_bucket()
        if self.atomic_create == "no":
            log.warning("store %s: atomic_create = \"no\": adds of one id from several processes at once can "
                        "all succeed, the last one replacing the others", self.name)
        writable = True
        if self.atomic_create == "probe":
            writable, self._conditional = self._probe()
            if writable and not self._conditional:
                raise ConfigError(
                    f"{self.describe()['endpoint']} ignores If-None-Match on PutObject, so two processes "
                    "adding one id could both succeed, the later replacing the earlier; atomic_create = \"no\" "
                    "opens the store anyway (an id is then checked free before each add, which does not hold "
                    "across processes)", key=f"stores.{self.name}.atomic_create")
        return Capabilities(
            write=writable,
            range_read=True,
            cow_clone=False,
            server_copy=True,
            direct_access=True,
            presign=True,
            atomic_create=self._conditional,
            unknown_size=True,
            deferred_delete=False,
            persistent=True,
            metadata_update=writable,
            max_object_size=MAX_OBJECT,
        )

    def _ensure_bucket(self) -> None:
        try:
            self.client.call("head_bucket", f"open bucket {self.bucket!r}", Bucket=self.bucket)
            return
        except NotFound:
            if not self.create_bucket:
                raise ConfigError(f"bucket {self.bucket!r} does not exist at {self.describe()['endpoint']} "
                                  "(create_bucket = true makes it)", key=f"stores.{self.name}.bucket") from None
        params: dict[str, Any] = {"Bucket": self.bucket}
        if self.region != "us-east-1":
            params["CreateBucketConfiguration"] = {"LocationConstraint": self.region}
        try:
            self.client.call("create_bucket", f"create bucket {self.bucket!r}", **params)
        except BackendError as exc:
            if "BucketAlreadyOwnedByYou" not in str(exc):
                raise ConfigError(f"cannot create bucket {self.bucket!r}: {exc.message}",
                                  key=f"stores.{self.name}.bucket") from None

    def _probe(self) -> tuple[bool, bool]:
        """(writes allowed, ``If-None-Match: *`` honoured on PutObject), by writing a probe twice."""
        key = self.layout.probe_key(new_token())
        put: dict[str, Any] = {"Bucket": self.bucket, "Key": key, "Body": b"", "IfNoneMatch": "*"}
        try:
            self.client.call("put_object", "probe conditional writes", **put)
        except PermissionDenied:
            return False, False
        try:
            self.client.call("put_object", "probe conditional writes", **put)
            honoured = False
        except PreconditionFailed:
            honoured = True
        except BackendError:  # e.g. 501 NotImplemented for the header
            honoured = False
        finally:
            self.quietly(lambda: self.client.call("delete_object", "remove the probe", Bucket=self.bucket, Key=key),
                         "remove the probe")
        return True, honoured

    def close(self) -> None:
        """Close the connection pool."""
        if self._client is not None:
            self._client.close()

    def describe(self) -> dict[str, Any]:
        """Where the images are and how they are written (never a key)."""
        return {
            "endpoint": self.endpoint_url or f"https://{self.host}",
            "region": self.region,
            "bucket": self.bucket,
            "prefix": self.layout.prefix,
            "addressing_style": self.addressing_style,
            "part_size": self.part_size,
            "single_put_threshold": self.single_put_threshold,
            "credentials": "configured keys" if self._keys[0] is not None else "AWS credential chain",
            "atomic_create": "If-None-Match on PutObject" if self._conditional else "not honoured by the endpoint",
        }

    def __repr__(self) -> str:
        return (f"S3Driver({self.name!r}, endpoint={self.describe()['endpoint']!r}, bucket={self.bucket!r}, "
                f"prefix={self.layout.prefix!r})")

    # -- helpers for the writers ----------------------------------------------------
    def retrying(self, fn: Callable[[], T], what: str) -> T:
        """One request inside a streaming operation, retried on Transient like a part."""
        return call_retrying(fn, policy=self.retry, what=f"store {self.name!r}: {what}")

    def quietly(self, fn: Callable[[], object], what: str) -> None:
        """A clean-up request, retried, whose failure is only logged (sweep finishes the job)."""
        try:
            self.retrying(fn, what)
        except NotFound:
            pass
        except Exception as exc:  # noqa: BLE001 - the caller's own outcome matters more
            log.warning("store %s: %s failed (%s); sweep() removes what is left", self.name, what, exc)

    def put_new(self, image_id: str, key: str, token: str, body: Callable[[], Any], length: int,
                metadata: Mapping[str, str], content_type: str = "application/octet-stream") -> None:
        """Publish ``key`` with one ``If-None-Match: *`` PutObject: AlreadyExists if another
        writer's object is there (a retry of our own lost answer is recognised by ``token``)."""
        try:
            self.retrying(lambda: self.client.call(
                "put_object", "publish", image_id, Bucket=self.bucket, Key=key, Body=body(), ContentLength=length,
                Metadata=dict(metadata), ContentType=content_type, IfNoneMatch="*"), "publish")
        except PreconditionFailed:
            try:
                there = self.resolve(key, image_id)
            except NotFound:
                there = None
            if there is None or there.token != token:
                raise AlreadyExists("another upload published this id first", store=self.name,
                                    image=image_id) from None
        self._forget(key)

    def publish_record(self, image_id: str, token: str, size: int, metadata: Mapping[str, str]) -> None:
        """Publish the record of a complete data object (the commit: exactly one writer wins),
        then turn it into the image's final object (:meth:`finish_record`)."""
        key = self.layout.image_key(image_id)
        body = record_body(image_id, token, size, metadata)
        self.put_new(image_id, key, token, lambda: body, len(body), record_headers(token, size, metadata),
                     content_type=self.RECORD_TYPE)
        found = Resolved("record", key, self.layout.data_key(image_id, token), size, dict(metadata), "", token)
        try:
            self.finish_record(image_id, found)
        except NotFound:
            self.quietly(lambda: self.client.call("delete_object", "unpublish", image_id, Bucket=self.bucket,
                                                  Key=key), "unpublish")
            raise BackendError("the upload's data was removed before it was published (its writer stalled past "
                               f"its lease, {self.stale_after:g} s, and a sweep took it)", store=self.name,
                               image=image_id) from None
        except Exception as exc:  # noqa: BLE001 - the add won: its record serves reads until sweep finishes it
            log.warning("store %s: %s stays a record (readable by imagestore only) until `imagestore sweep`: "
                        "its final copy failed: %s", self.name, image_id, exc)

    def finish_record(self, image_id: str, found: Resolved) -> None:
        """Replace a published record by the image's bytes, so that the key holds the image as
        any S3 client (glance_store, rclone) reads it: one server-side copy of the data over
        the record with the image's metadata (a multipart copy above 5 GiB), then the data
        goes. NotFound if the data is gone; a record whose metadata passes 2 KiB stays."""
        headers = inline_headers(str(found.token), found.metadata)
        if headers is None:
            return
        copy_object(self, image_id, {"Bucket": self.bucket, "Key": found.data_key}, found.size, found.key,
                    headers, part_size=MAX_PART)
        self._forget(found.key)
        self.quietly(lambda: self.client.call("delete_object", "delete the copied data", image_id,
                                              Bucket=self.bucket, Key=found.data_key), "delete the copied data")

    def lease_live(self, image_id: str, token: str) -> bool:
        """Whether the writer of ``token`` refreshed its lease within :attr:`stale_after`, by the
        server's clock (the Date of the lease's HEAD)."""
        try:
            head = self.client.call("head_object", "check an upload's lease", image_id, Bucket=self.bucket,
                                    Key=self.layout.lease_key(image_id, token))
        except NotFound:
            return False
        return bool((server_time(head) - head["LastModified"]).total_seconds() < self.stale_after)

    # -- locations ------------------------------------------------------------------
    def location_for(self, image_id: str) -> Location:
        """``s3://HOST/BUCKET/[PREFIX/]ID?store=NAME``: glance_store's form, without credentials."""
        validate_image_id(image_id)
        segs = tuple(s for s in self.layout.prefix.split("/") if s)
        return Location("s3", self.host, (self.bucket, *segs, image_id), store=self.name)

    def _hosts(self) -> set[str]:
        if self.endpoint_url is not None:
            return {self.host}
        return {self.host, "s3.amazonaws.com", f"s3-{self.region}.amazonaws.com"}

    def owns(self, location: Location) -> bool:
        """An s3 location of this endpoint, bucket and prefix naming one image id."""
        if location.scheme != "s3" or location.host.lower() not in self._hosts():
            return False
        segs = tuple(s for s in self.layout.prefix.split("/") if s)
        path = location.path
        if len(path) != len(segs) + 2 or path[0] != self.bucket or path[1:-1] != segs:
            return False
        try:
            validate_image_id(path[-1])
        except InvalidLocation:
            return False
        return True

    def _key_of(self, location: Location) -> str:
        if not self.owns(location):
            raise InvalidLocation(f"location {location} is not in this s3 store (bucket {self.bucket!r})",
                                  store=self.name)
        return self.layout.image_key(location.path[-1])

    # -- what an image key holds --------------------------------------------------------
    def resolve(self, key: str, image_id: str) -> Resolved:
        """HEAD the image's key (and GET a record whose metadata did not fit in its headers).

        The GET is pinned to the HEAD's ETag; a 412 means the object changed in between (a
        record replaced by the image's final bytes, or the id deleted and added again), so
        the key is read again, a few times at most, then ``Transient``."""
        reread = RetryPolicy(retries=_RESOLVE_ATTEMPTS - 1, backoff=0.0)
        try:
            found = reread.run(lambda: self._resolve_once(key, image_id), site="s3-record-reread",
                               what=f"store {self.name!r}: read the record of {image_id!r}",
                               retry_on=PreconditionFailed, quiet=True)
        except PreconditionFailed:
            raise Transient(f"store {self.name!r}: the record of {image_id!r} changed at every read") from None
        with self._cache_lock:
            if len(self._cache) >= _CACHE_MAX:
                self._cache.clear()
            self._cache[key] = (time.monotonic(), found)
        return found

    def _resolve_once(self, key: str, image_id: str) -> Resolved:
        head = self.client.call("head_object", "stat", image_id, Bucket=self.bucket, Key=key)
        meta = {k.lower(): v for k, v in (head.get("Metadata") or {}).items()}
        etag = str(head.get("ETag", "")).strip('"')
        size = int(head.get("ContentLength", 0))
        modified = head["LastModified"].timestamp() if head.get("LastModified") is not None else None
        mark = meta.get(MARK)
        carried = meta_from_headers(meta)
        if mark == INLINE and meta.get(TOKEN) and carried is not None:
            return Resolved("inline", key, key, size, carried, etag, meta[TOKEN], modified)
        if mark == RECORD and meta.get(TOKEN):
            token = meta[TOKEN]
            if carried is not None and (meta.get(SIZE) or "").isdigit():
                return Resolved("record", key, self.layout.data_key(image_id, token), int(meta[SIZE]), carried,
                                etag, token, modified)
            body = self.client.call("get_object", "read the image record", image_id, Bucket=self.bucket,
                                    Key=key, IfMatch=head.get("ETag", "*"))["Body"]
            try:
                doc = parse_record_body(body.read())
            except ValueError as exc:
                raise BackendError(f"the record of the image is damaged: {exc}", store=self.name,
                                   image=image_id) from None
            return Resolved("record", key, self.layout.data_key(image_id, doc["token"]), doc["size"],
                            {str(k): str(v) for k, v in doc["metadata"].items()}, etag, doc["token"])
        # written by someone else (glance_store): the object is the image
        return Resolved("plain", key, key, size, meta, etag, None, modified)

    def _resolved(self, key: str, image_id: str) -> Resolved:
        """What a stat of the last few seconds found at ``key``, else a fresh :meth:`resolve`."""
        with self._cache_lock:
            hit = self._cache.get(key)
        if hit is not None and time.monotonic() - hit[0] < _CACHE_TTL:
            return hit[1]
        return self.resolve(key, image_id)

    def _forget(self, key: str) -> None:
        with self._cache_lock:
            self._cache.pop(key, None)

    def resolve_location(self, location: Location, *, fresh: bool = True) -> Resolved:
        """:meth:`resolve` for a location of this store."""
        key = self._key_of(location)
        return self.resolve(key, location.image) if fresh else self._resolved(key, location.image)

    # -- data -------------------------------------------------------------------------
    def open_writer(self, image_id: str, size: int | None) -> S3Writer:
        """Start an upload; AlreadyExists early (one HEAD) if the id is taken."""
        validate_image_id(image_id)
        if size is not None and size < 0:
            raise ValueError("size must be >= 0")
        key = self.layout.image_key(image_id)
        try:
            self.client.call("head_object", "check the id is free", image_id, Bucket=self.bucket, Key=key)
        except NotFound:
            return S3Writer(self, image_id, size)
        raise AlreadyExists("an image with this id exists", store=self.name, image=image_id)

    def open_reader(self, location: Location, offset: int, length: int) -> S3Reader:
        """One streaming ranged GET of the image's bytes from ``offset``, read ahead by a thread."""
        found = self.resolve_location(location, fresh=False)
        try:
            return S3Reader(self, found.data_key, location.image, offset, length,
                            if_match=found.etag if found.kind != "record" else None)
        except NotFound:
            if found.kind != "record":
                raise
        found = self.resolve_location(location)  # the add finished: its record became the image
        return S3Reader(self, found.data_key, location.image, offset, length,
                        if_match=found.etag if found.kind != "record" else None)

    def list_images(self) -> Iterator[str]:
        """The keys directly under the store's prefix, but its own ``.imagestore/`` objects."""
        prefix, token = self.layout.prefix, None
        while True:
            params: dict[str, Any] = {"Bucket": self.bucket, "Prefix": prefix}
            if token:
                params["ContinuationToken"] = token
            resp = self.client.call("list_objects_v2", "list images", **params)
            for obj in resp.get("Contents", []):
                name = obj["Key"][len(prefix):]
                if name and "/" not in name and not name.startswith(".imagestore"):
                    yield name
            token = resp.get("NextContinuationToken")
            if not resp.get("IsTruncated") or not token:
                return

    def stat(self, location: Location) -> Stored:
        """Size and metadata from one HEAD; the version is the object's ETag."""
        found = self.resolve_location(location)
        return Stored(found.size, found.metadata, f"{found.kind}:{found.etag}", found.modified)

    def update_metadata(self, location: Location, changes: Mapping[str, str]) -> None:
        """Copy the image onto itself with the new metadata (S3 cannot change an object's metadata
        in place), pinned to the ETag just read: a server-side copy, multipart above 5 GiB."""
        found = self.resolve_location(location)
        if found.kind != "inline":
            why = ("its add is still finishing or its metadata passes S3's 2 KiB (a record; `imagestore sweep` "
                   "finishes it)" if found.kind == "record" else "it was not written by imagestore")
            raise Unsupported(f"the image's metadata cannot be changed: {why}", store=self.name,
                              image=location.image)
        headers = inline_headers(str(found.token), {**found.metadata, **changes})
        if headers is None:
            raise Unsupported("the image's metadata would pass S3's 2 KiB of user metadata", store=self.name,
                              image=location.image)
        self._forget(found.key)
        try:
            copy_object(self, location.image, {"Bucket": self.bucket, "Key": found.key}, found.size, found.key,
                        headers, part_size=MAX_PART, pin={"CopySourceIfMatch": found.etag})
        except PreconditionFailed:
            raise BackendError("the image was replaced while its metadata was being changed; nothing was changed",
                               store=self.name, image=location.image) from None
        finally:
            self._forget(found.key)

    def delete(self, location: Location) -> DeleteOutcome:
        """Delete the image (a record first, so the image is gone at once, then its data)."""
        found = self.resolve_location(location)
        self._forget(found.key)
        if found.kind == "record" and found.token and self.lease_live(location.image, found.token):
            raise InUse("the image's add is still finishing (its record is being replaced by its bytes)",
                        store=self.name, image=location.image)
        self.client.call("delete_object", "delete", location.image, Bucket=self.bucket, Key=found.key)
        if found.kind == "record":
            self.quietly(lambda: self.client.call("delete_object", "delete the image data", location.image,
                                                  Bucket=self.bucket, Key=found.data_key), "delete the image data")
        return DeleteOutcome.DELETED

    # -- clone / locate / sweep ------------------------------------------------------------
    def plan_clone(self, location: Location, target: Driver) -> ClonePlan:
        """"server_copy" into a store of the same endpoint whose credentials can read the source."""
        if not isinstance(target, S3Driver):
            return ClonePlan(None, f"target store {target.name!r} is not an s3 store", CloneRefusal.DIFFERENT_BACKEND)
        return plan(self, location, target)

    def clone(self, location: Location, target: Driver, request: CloneRequest) -> Location:
        """Server-side copy into the target store, published atomically like an add."""
        if request.mode != "server_copy":
            raise Unsupported(f"the s3 driver clones only with mode 'server_copy', not {request.mode!r}",
                              store=self.name)
        if not isinstance(target, S3Driver):
            raise Unsupported(f"store {target.name!r} is not on this S3 endpoint: no server-side copy",
                              store=self.name, image=location.image)
        return server_copy(self, location, target, request)

    def locate(self, location: Location, ttl: float | None = None) -> DirectAccess:
        """A presigned GET URL of the image's bytes, valid ``ttl`` (default ``presign_ttl``) seconds."""
        seconds = self.presign_ttl if ttl is None else float(ttl)
        if seconds > MAX_PRESIGN:
            raise Unsupported(f"a presigned URL lasts at most {MAX_PRESIGN} s (7 days)", store=self.name,
                              image=location.image)
        found = self.resolve_location(location, fresh=False)
        whole = max(1, math.ceil(seconds))
        expires = datetime.now(UTC) + timedelta(seconds=whole)
        url = self.client.presign(self.bucket, found.data_key, whole)
        return DirectAccess(kind="url", url=url, expires_at=expires)

    def sweep(self, older_than: float, deadline: float | None = None) -> SweepReport:
        """Abort dead writers' multipart uploads and remove their unpublished data and leases."""
        return sweep(self, older_than, deadline)

    @property
    def stale_after(self) -> float:
        """Seconds after its last refresh from which a lease is a dead writer's: two missed
        heartbeats plus the longest a refresh can take (connect and read timeouts)."""
        return 2 * self.heartbeat + self.connect_timeout + self.read_timeout
