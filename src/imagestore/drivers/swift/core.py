"""What every part of the Swift driver shares: constants, the naming of containers, objects
and metadata headers, the claim timing, and the Protocols through which the writer,
copier, reader and sweeper reach the driver's client state (so none imports the backend).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Protocol
from urllib.parse import quote, unquote

import requests

from ...errors import ConfigError, ImageStoreError, Transient
from ...location import Location
from ...spi.parts import PartSizes
from ...spi.retry import RetryPolicy

__all__ = ["DEFAULT_MAX_FILE", "META_PREFIX", "MiB", "TOKEN_LEN", "Http", "Piece", "Place", "SwiftCore", "Timing",
           "container_name", "dec_key", "enc_key", "grow_every", "quote_path"]

MiB = 1 << 20
META_PREFIX = "x-object-meta-image-"
_META_SAFE = frozenset("abcdefghijklmnopqrstuvwxyz0123456789.")
DEFAULT_MAX_FILE = 5 * (1 << 30) + 2  # Swift's default max_file_size
TOKEN_LEN = 25  # len(claims.new_token())


@dataclass(frozen=True)
class Place:
    """The container of an image and the container of its segments."""

    container: str
    segments: str


@dataclass(frozen=True)
class Piece:
    """A stretch of the image stored as one object: its path and where it starts in the image."""

    path: str
    start: int
    size: int


@dataclass(frozen=True)
class Timing:
    """The claim protocol's clock: ``window`` bounds a counted claim PUT, ``lease`` is how
    long a claim or heartbeat lives unrenewed. Every writer of a container must use the
    same ``window``."""

    window: float = 2.0
    lease: float = 30.0

    @property
    def renew_every(self) -> float:
        """Seconds between renewals: three chances before a lease lapses."""
        return self.lease / 3

    @property
    def margin(self) -> float:
        """Slack for the one-second grain of ``X-Delete-At`` and the clock estimate."""
        return max(2.0, self.window)


def quote_path(*parts: str) -> str:
    """``container/object`` percent-quoted for a request path."""
    return "/".join(quote(p, safe="/") for p in parts)


def enc_key(key: str) -> str:
    """A metadata key as a header-name suffix that survives Swift's case and ``_``/``-`` folding."""
    return "".join(c if c in _META_SAFE else f"%{ord(c):02X}" for c in key)


def dec_key(text: str) -> str:
    """A metadata key back from its header-name suffix."""
    return unquote(text.lower())


def grow_every(first: int, largest: int, max_parts: int) -> int:
    """How many segments each size lasts before doubling: as many as possible while the
    manifest can still reach half of the most the cluster holds (``max_parts`` x ``largest``)."""
    if max_parts <= 1 or first >= largest:
        return 0
    target = max_parts * largest // 2
    for every in range(max_parts, 0, -1):
        cap = PartSizes(first, grow_every=every, largest=largest, max_parts=max_parts).capacity()
        if cap is not None and cap >= target:
            return every
    return 1


def container_name(value: object, key: str) -> str:
    """A configured container name, checked (no ``/``, at most 200 characters)."""
    if not isinstance(value, str) or not value or "/" in value or len(value) > 200:
        raise ConfigError(f"bad container name {value!r}", key=key)
    return value


class Http(Protocol):
    """Requests to the account (what :class:`.http.SwiftHttp` offers the driver's parts)."""

    def request(self, method: str, path: str, *, op: str, headers: Mapping[str, str] | None = None,
                params: Mapping[str, str] | None = None, data: bytes | memoryview | None = None,
                stream: bool = False, timeout: tuple[float, float] | None = None) -> requests.Response:
        """Send one request to ``STORAGE_URL/path``."""
        ...

    def error(self, resp: requests.Response, op: str, *, image: str | None = None) -> ImageStoreError | Transient:
        """The error an unexpected answer means."""
        ...

    def server_time(self) -> float:
        """The proxy's current time as far as known."""
        ...


class SwiftCore(Protocol):
    """The driver's client state and shared requests, as its writer, copier, reader and
    sweeper use them (the backend's driver is one; they never import it)."""

    @property
    def name(self) -> str:
        """The store's name (for messages)."""
        ...

    @property
    def http(self) -> Http:
        """Requests to the account."""
        ...

    @property
    def timing(self) -> Timing:
        """The claim protocol's clock."""
        ...

    @property
    def container(self) -> str:
        """The configured image container."""
        ...

    @property
    def segment_container(self) -> str:
        """The configured segments container."""
        ...

    @property
    def seed(self) -> int:
        """How many id characters name an image's containers (0: one container)."""
        ...

    @property
    def threshold(self) -> int:
        """The largest image sent as one PUT."""
        ...

    @property
    def concurrency(self) -> int:
        """Requests in flight per transfer."""
        ...

    @property
    def retry(self) -> RetryPolicy:
        """How a part (or a request inside a transfer) is resent after Transient."""
        ...

    @property
    def read_piece(self) -> int:
        """Bytes of one ranged GET."""
        ...


    def place(self, image_id: str) -> Place:
        """Where the image of this id lives."""
        ...

    def location_for(self, image_id: str) -> Location:
        """The location of the image of this id."""
        ...

    def part_sizes(self, image_id: str) -> PartSizes:
        """The segment sizes of an upload of ``image_id``."""
        ...

    def meta_headers(self, metadata: Mapping[str, str]) -> dict[str, str]:
        """The facade's metadata as object headers."""
        ...

    def published(self, place: Place, obj: str) -> bool:
        """Whether an image of this id exists (newest copy)."""
        ...

    def head(self, place: Place, obj: str, *, newest: bool = False) -> requests.Response:
        """HEAD of the image object; NotFound if there is none."""
        ...

    def listing(self, container: str, prefix: str = "") -> Iterator[dict[str, Any]]:
        """Every object row of a container listing under ``prefix``."""
        ...

    def delete_objects(self, container: str, names: list[str], *, image: str | None = None) -> int:
        """Delete objects of one container (missing ones are fine); how many existed."""
        ...
