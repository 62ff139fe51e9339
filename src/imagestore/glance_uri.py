"""Reading glance_store's legacy location URIs, dropping any credentials they embed.

Forms read: ``file:///path``, ``filesystem:///path``, ``rbd://fsid/pool/image/snap``
and legacy ``rbd://image``, ``s3[+http|+https]://[key:secret@]host/bucket/key``,
``swift[+http|+https|+config]://[account:user:key@]auth/container/object``,
``http(s)://[user:pass@]host/path``. Secrets may contain ``/`` and ``@`` (glance
allows it), so user information is cut at the *last* ``@`` before the path.
"""

from __future__ import annotations

from urllib.parse import unquote

from .errors import InvalidLocation
from .location import Location

__all__ = ["parse_glance_uri"]


def _split_scheme(uri: str) -> tuple[str, str]:
    scheme, sep, rest = uri.partition("://")
    if not sep or not scheme:
        raise InvalidLocation("not a URI: missing '://'")
    return scheme.lower(), rest


def _drop_userinfo(rest: str) -> str:
    """Remove ``user:secret@`` from ``host/path`` where the secret may hold '/' or '@'."""
    if "@" not in rest:
        return rest
    return rest.rsplit("@", 1)[1]


def _segments(path: str, what: str) -> tuple[str, ...]:
    segs = tuple(unquote(s) for s in path.split("/"))
    if not path or any(not s for s in segs):
        raise InvalidLocation(f"{what}: empty path segment")
    return segs


def _rbd(rest: str, store: str | None) -> Location:
    if "@" in rest:
        raise InvalidLocation("rbd location: unexpected '@'")
    segs = _segments(rest.strip("/"), "rbd location")
    if len(segs) == 1:  # legacy rbd://image: pool and cluster come from the store
        return Location("rbd", "", segs, store)
    if len(segs) != 4:
        raise InvalidLocation(f"rbd location needs fsid/pool/image/snapshot, got {len(segs)} part(s)")
    fsid, pool, image, snap = segs
    return Location("rbd", fsid, (pool, image, snap), store)


def _objectstore(kind: str, rest: str, store: str | None) -> Location:
    rest = _drop_userinfo(rest)
    host, _, path = rest.partition("/")
    segs = _segments(path, f"{kind} location")
    if kind == "swift":
        # the auth URL may have a path of its own: container and object are the last two
        if len(segs) < 2:
            raise InvalidLocation("swift location needs container/object")
        segs = segs[-2:]
    elif len(segs) < 2:
        raise InvalidLocation("s3 location needs bucket/key")
    if not host:
        raise InvalidLocation(f"{kind} location has no host")
    return Location(kind, unquote(host), segs, store)


def parse_glance_uri(uri: str, store: str | None = None) -> Location:
    """The :class:`Location` for a glance_store URI; credentials are discarded."""
    if not isinstance(uri, str):
        raise InvalidLocation("a glance location is a string")
    scheme, rest = _split_scheme(uri.strip())
    rest = rest.split("?", 1)[0].split("#", 1)[0] if scheme != "file" else rest
    if scheme in ("file", "filesystem"):
        if not rest.startswith("/"):
            raise InvalidLocation("file location must be an absolute path (file:///...)")
        return Location("file", "", _segments(rest.lstrip("/"), "file location"), store)
    if scheme == "rbd":
        return _rbd(rest, store)
    if scheme in ("s3", "s3+http", "s3+https"):
        return _objectstore("s3", rest, store)
    if scheme in ("swift", "swift+http", "swift+https", "swift+config"):
        return _objectstore("swift", rest, store)
    if scheme in ("http", "https"):
        rest = _drop_userinfo(rest)
        host, _, path = rest.partition("/")
        if not host:
            raise InvalidLocation("http location has no host")
        return Location(scheme, host, _segments(path, "http location"), store)
    raise InvalidLocation(f"unknown glance location scheme {scheme!r}")
