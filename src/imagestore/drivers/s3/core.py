"""The S3 driver's shared core: its limits, where it keeps what, what its objects say about
themselves, and :class:`S3Store`, the part of the driver its reader, writer, copier and sweeper use.

Under the store's ``prefix`` (``""`` or ``dir/``):

* ``PREFIX<id>`` is the image, as glance_store lays it out. It is one of:
  an **inline** image (the bytes themselves, with ``x-amz-meta-imagestore: inline``
  and the facade's metadata), written by one conditional PutObject or copied over
  the image's record once that won; a **record** (``x-amz-meta-imagestore: record``,
  a small JSON body) naming the upload token whose data holds the bytes, written by
  one conditional PutObject after the data is complete (until the copy replaces it,
  or for good when the metadata passes 2 KiB, or from earlier versions); or a
  **plain** object that another writer (glance_store) put there.
* ``PREFIX.imagestore/data/<id>/<token>``: the data of one multipart upload or
  server-side copy; a unique key per attempt, so concurrent writers never touch
  each other's bytes.
* ``PREFIX.imagestore/uploads/<id>/<token>``: the lease of a live writer, refreshed
  every ``heartbeat`` seconds while it uploads; ``sweep`` treats an upload whose lease
  is missing or stale as dead.

An image id never starts with ``.``, so no id reaches the ``.imagestore/`` subtree.
"""

from __future__ import annotations

import json
import secrets
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal, Protocol, TypeVar

if TYPE_CHECKING:
    from ...location import Location
    from ...spi.parts import PartSizes
    from ...spi.retry import RetryPolicy

__all__ = ["INLINE", "MARK", "MAX_OBJECT", "MAX_PART", "MAX_PARTS", "MAX_PRESIGN", "META", "MIN_PART", "RECORD",
           "SIZE", "TOKEN", "Layout", "Requests", "Resolved", "S3Store", "inline_headers", "meta_from_headers",
           "new_token", "parse_record_body", "record_body", "record_headers"]

T = TypeVar("T")
KiB, MiB, GiB, TiB = 1 << 10, 1 << 20, 1 << 30, 1 << 40
MAX_PARTS = 10_000
MIN_PART = 5 * MiB
MAX_PART = 5 * GiB
MAX_OBJECT = 5 * TiB
LARGEST_GROWN_PART = 1 * GiB
"""Where growing parts stop growing: an unknown-size stream still reaches 5 TiB in 10,000 parts."""
MAX_PRESIGN = 7 * 86400  # SigV4's limit

MARK = "imagestore"
"""User-metadata key whose value says what an object of the store is."""
INLINE = "inline"
RECORD = "record"
TOKEN = "imagestore-token"
SIZE = "imagestore-size"
META = "imagestore-meta"  # the facade's metadata as JSON, when it fits in S3's 2 KiB
METADATA_LIMIT = 2048
"""S3's limit on user metadata: the UTF-8 bytes of every key and value, summed."""
Kind = Literal["inline", "record", "plain"]


def new_token() -> str:
    """A unique name for one upload attempt: its start time (for people) and 64 random bits."""
    return f"{int(time.time())}-{secrets.token_hex(8)}"


@dataclass(frozen=True)
class Layout:
    """The keys of one store: its prefix and the names derived from image ids and tokens."""

    prefix: str

    def image_key(self, image_id: str) -> str:
        return self.prefix + image_id

    def data_key(self, image_id: str, token: str) -> str:
        return f"{self.prefix}.imagestore/data/{image_id}/{token}"

    def lease_key(self, image_id: str, token: str) -> str:
        return f"{self.prefix}.imagestore/uploads/{image_id}/{token}"

    def probe_key(self, token: str) -> str:
        return f"{self.probe_prefix}{token}"

    @property
    def data_prefix(self) -> str:
        return f"{self.prefix}.imagestore/data/"

    @property
    def lease_prefix(self) -> str:
        return f"{self.prefix}.imagestore/uploads/"

    @property
    def probe_prefix(self) -> str:
        return f"{self.prefix}.imagestore/probe/"

    @staticmethod
    def split(key: str, under: str) -> tuple[str, str] | None:
        """``(image_id, token)`` of a data or lease key below ``under``, else None."""
        rest = key[len(under):] if key.startswith(under) else ""
        image, sep, token = rest.partition("/")
        if not sep or not image or not token or "/" in token:
            return None
        return image, token


@dataclass(frozen=True)
class Resolved:
    """What the object at an image's key is: where its bytes are, how many, its metadata."""

    kind: Kind
    key: str
    data_key: str
    size: int
    metadata: Mapping[str, str]
    etag: str
    token: str | None
    """The upload token (inline and record), None for a plain object."""
    modified: float | None = None
    """The object's LastModified (Unix time), as the HEAD said."""


def _meta_header(own: Mapping[str, str], metadata: Mapping[str, str]) -> dict[str, str] | None:
    """``own`` plus the facade's metadata as one compact JSON header value, or None if that
    would pass S3's 2 KiB user-metadata limit. One JSON value, because servers mangle
    metadata *names* (moto drops names with ``_``, radosgw turns ``_`` into ``-``, all
    lower-case them) but keep values as sent."""
    value = json.dumps(dict(metadata), sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    headers = {**own, META: value}
    if sum(len(k) + len(v) for k, v in headers.items()) > METADATA_LIMIT:
        return None
    return headers


def record_headers(token: str, size: int, metadata: Mapping[str, str]) -> dict[str, str]:
    """User metadata of a record: the marker, the token, the size, and the facade's metadata
    when it fits (else only the body holds it)."""
    own = {MARK: RECORD, TOKEN: token, SIZE: str(size)}
    return _meta_header(own, metadata) or own


def inline_headers(token: str, metadata: Mapping[str, str]) -> dict[str, str] | None:
    """User metadata of an inline image, or None when the metadata does not fit in headers."""
    return _meta_header({MARK: INLINE, TOKEN: token}, metadata)


def meta_from_headers(meta: Mapping[str, str]) -> dict[str, str] | None:
    """The facade's metadata carried in an object's headers (None: not there, or damaged)."""
    value = meta.get(META)
    if value is None:
        return None
    try:
        doc = json.loads(value)
    except ValueError:
        return None
    if not isinstance(doc, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in doc.items()):
        return None
    return doc


def record_body(image_id: str, token: str, size: int, metadata: Mapping[str, str]) -> bytes:
    """The JSON body of a record (the whole truth; the headers are a copy for one-request stats)."""
    doc = {"imagestore": 1, "image": image_id, "token": token, "size": size, "metadata": dict(metadata)}
    return json.dumps(doc, sort_keys=True, separators=(",", ":")).encode()


def parse_record_body(body: bytes) -> dict[str, Any]:
    """The record document, checked for shape; ValueError if it is not one."""
    doc = json.loads(body)
    if not isinstance(doc, dict) or doc.get("imagestore") != 1 or not isinstance(doc.get("token"), str) \
            or not isinstance(doc.get("size"), int) or not isinstance(doc.get("metadata"), dict):
        raise ValueError("not an imagestore record")
    return doc


class Requests(Protocol):
    """The store's S3 client as its workers use it (:class:`.client.S3Client`)."""

    def call(self, method: str, what: str, image: str | None = None, **params: Any) -> Any: ...


class S3Store(Protocol):
    """What the reader, writer, lease, copier and sweeper use of the driver (the backend's
    ``S3Driver``), so that none of them imports the backend: its settings, client and layout,
    and the few steps they share with it (retried requests, publication, resolution)."""

    name: str
    bucket: str
    layout: Layout
    concurrency: int
    retry: RetryPolicy
    part_size: int
    single_put_threshold: int
    copy_part_size: int
    heartbeat: float
    read_ahead: int
    sweep_cursor: Any

    @property
    def client(self) -> Requests: ...

    @property
    def stale_after(self) -> float: ...

    def describe(self) -> dict[str, Any]: ...

    def part_sizes(self, size: int | None) -> PartSizes: ...

    def retrying(self, fn: Callable[[], T], what: str) -> T: ...

    def quietly(self, fn: Callable[[], object], what: str) -> None: ...

    def put_new(self, image_id: str, key: str, token: str, body: Callable[[], Any], length: int,
                metadata: Mapping[str, str], content_type: str = ...) -> None: ...

    def publish_record(self, image_id: str, token: str, size: int, metadata: Mapping[str, str]) -> None: ...

    def finish_record(self, image_id: str, found: Resolved) -> None: ...

    def lease_live(self, image_id: str, token: str) -> bool: ...

    def location_for(self, image_id: str) -> Location: ...

    def resolve(self, key: str, image_id: str) -> Resolved: ...

    def resolve_location(self, location: Location, *, fresh: bool = ...) -> Resolved: ...
