"""Where an image lives: :class:`Location` (credential-free URI) and :class:`DirectAccess`.

A location string is ``scheme://host/seg/seg...?store=NAME``. Every segment is
percent-quoted, so ``Location.parse(str(loc)) == loc`` always holds. No form of
a location carries a credential: :meth:`Location.parse` refuses one and
:meth:`Location.from_glance` drops any it finds in a legacy glance_store URI.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal
from urllib.parse import quote, unquote, urlsplit

from .errors import InvalidLocation
from .glance_uri import split_glance_uri

__all__ = ["DirectAccess", "Location", "validate_image_id", "validate_store_name"]

SCHEMES = frozenset({"file", "memory", "rbd", "s3", "swift", "http", "https"})
"""The schemes of imagestore's own drivers; a third-party driver may use any other
lowercase name (letters, digits, ``-``; no ``+``, which marks glance_store forms)."""
_SCHEME_RE = re.compile(r"[a-z][a-z0-9-]{0,31}")
_ID_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,254}")
_STORE_RE = re.compile(r"[A-Za-z][A-Za-z0-9_-]{0,62}")


def validate_image_id(image_id: object) -> str:
    """Return ``image_id`` if it is a safe image name, else raise InvalidLocation.

    Ids are 1-255 characters of ``[A-Za-z0-9._-]`` starting with a letter or
    digit: no path separator, no ``..``, nothing a backend could read as a path.
    """
    if not isinstance(image_id, str) or not _ID_RE.fullmatch(image_id) or ".." in image_id:
        raise InvalidLocation(
            f"bad image id {image_id!r}: use 1-255 characters of letters, digits, '.', '_' "
            "or '-', starting with a letter or digit, without '..'"
        )
    return image_id


def validate_store_name(name: object) -> str:
    """Return ``name`` if it is a valid store name (letter first, then ``[A-Za-z0-9_-]``)."""
    if not isinstance(name, str) or not _STORE_RE.fullmatch(name):
        raise InvalidLocation(f"bad store name {name!r}")
    return name


def _q(text: str) -> str:
    return quote(text, safe=":+,=~")


@dataclass(frozen=True)
class Location:
    """An image's address: scheme, host (fsid, endpoint, ...), path segments and store name."""

    scheme: str
    host: str
    path: tuple[str, ...]
    store: str | None = None

    def __post_init__(self) -> None:
        if not _SCHEME_RE.fullmatch(self.scheme):
            raise InvalidLocation(f"bad location scheme {self.scheme!r}")
        if not self.path or any(not seg or seg in (".", "..") for seg in self.path):
            raise InvalidLocation(f"location {self.scheme}://{self.host} has an empty or relative path")
        if any("\x00" in seg for seg in (self.host, *self.path)):
            raise InvalidLocation("location contains a NUL byte")
        if self.store is not None:
            validate_store_name(self.store)

    @property
    def image(self) -> str:
        """The image's name in its store (for rbd ``pool/image/snap``, the image)."""
        if self.scheme == "rbd" and len(self.path) == 3:
            return self.path[1]
        return self.path[-1]

    def with_store(self, store: str | None) -> Location:
        """The same address, naming another (or no) store."""
        return Location(self.scheme, self.host, self.path, store)

    def __str__(self) -> str:
        text = f"{self.scheme}://{_q(self.host)}/{'/'.join(_q(seg) for seg in self.path)}"
        return f"{text}?store={self.store}" if self.store else text

    @classmethod
    def parse(cls, uri: str | Location) -> Location:
        """Parse a canonical location string (the form ``str(location)`` prints)."""
        if isinstance(uri, Location):
            return uri
        if not isinstance(uri, str):
            raise InvalidLocation(f"a location is a string, not {type(uri).__name__}")
        parts = urlsplit(uri)
        scheme = parts.scheme.lower()
        if not _SCHEME_RE.fullmatch(scheme):
            hint = " (a glance_store URI? use Location.from_glance)" if "+" in scheme else ""
            raise InvalidLocation(f"bad location scheme {parts.scheme!r}{hint}")
        if "@" in uri.split("?", 1)[0]:  # a secret may hold "/", so "@" can sit past the netloc
            raise InvalidLocation(
                "credentials are not allowed in a location (Location.from_glance drops them)"
            )
        if parts.fragment:
            raise InvalidLocation("a location has no fragment")
        store = None
        if parts.query:
            key, sep, value = parts.query.partition("=")
            if key != "store" or not sep or "&" in value:
                raise InvalidLocation(f"unexpected location query {parts.query!r}: only store=NAME")
            store = value
        raw = parts.path[1:] if parts.path.startswith("/") else parts.path
        segments = tuple(unquote(seg) for seg in raw.split("/"))
        return cls(scheme, unquote(parts.netloc), segments, store)

    @classmethod
    def from_glance(cls, uri: str, store: str | None = None) -> Location:
        """Parse any glance_store URI form and drop the credentials it may embed."""
        scheme, host, path = split_glance_uri(uri)
        return Location(scheme, host, path, store)


AccessKind = Literal["path", "rbd", "url"]


@dataclass(frozen=True, repr=False)
class DirectAccess:
    """What another service needs to reach an image's bits itself (never a store secret)."""

    kind: AccessKind
    path: str | None = None
    fsid: str | None = None
    pool: str | None = None
    image: str | None = None
    snapshot: str | None = None
    mon_hosts: tuple[str, ...] = ()
    url: str | None = field(default=None, repr=False)
    expires_at: datetime | None = None

    def __repr__(self) -> str:
        fields = {k: v for k, v in self.to_dict().items() if k != "kind"}
        if fields.get("url"):
            fields["url"] = "<signed URL hidden>"  # a bearer token for its consumer: not for logs
        inner = ", ".join(f"{k}={v!r}" for k, v in fields.items())
        return f"DirectAccess(kind={self.kind!r}, {inner})"

    def to_dict(self) -> dict[str, Any]:
        """The fields that apply to this kind, JSON-ready."""
        if self.kind == "path":
            return {"kind": "path", "path": self.path}
        if self.kind == "rbd":
            return {
                "kind": "rbd",
                "fsid": self.fsid,
                "pool": self.pool,
                "image": self.image,
                "snapshot": self.snapshot,
                "mon_hosts": list(self.mon_hosts),
            }
        return {
            "kind": "url",
            "url": self.url,
            "expires_at": self.expires_at.isoformat() if self.expires_at else None,
        }
