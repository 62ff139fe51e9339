"""Reading glance_store's legacy location URIs, dropping any credentials they embed.

Forms read: ``file:///path``, ``filesystem:///path``, ``rbd://fsid/pool/image/snap``
and legacy ``rbd://image``, ``s3[+http|+https]://[key:secret@]host/bucket/key``,
``swift[+http|+https|+config]://[account:user:key@]auth/container/object``,
``http(s)://[user:pass@]host/path``. Secrets may contain ``/`` and ``@`` (glance
allows it), so user information is cut at the *last* ``@`` before the path.
The result is plain :class:`GlanceParts`; :meth:`imagestore.Location.from_glance`
turns them into a Location (this module imports nothing of the location model).
"""

from __future__ import annotations

from typing import NamedTuple
from urllib.parse import unquote

from .errors import InvalidLocation

__all__ = ["GlanceParts", "split_glance_uri"]


class GlanceParts(NamedTuple):
    """A glance_store URI's address without its credentials: a Location's scheme, host and path."""

    scheme: str
    host: str
    path: tuple[str, ...]


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


def _rbd(rest: str) -> GlanceParts:
    if "@" in rest:
        raise InvalidLocation("rbd location: unexpected '@'")
    segs = _segments(rest.strip("/"), "rbd location")
    if len(segs) == 1:  # legacy rbd://image: pool and cluster come from the store
        return GlanceParts("rbd", "", segs)
    if len(segs) != 4:
        raise InvalidLocation(f"rbd location needs fsid/pool/image/snapshot, got {len(segs)} part(s)")
    fsid, pool, image, snap = segs
    return GlanceParts("rbd", fsid, (pool, image, snap))


def _objectstore(kind: str, rest: str) -> GlanceParts:
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
    return GlanceParts(kind, unquote(host), segs)


def split_glance_uri(uri: str) -> GlanceParts:
    """The address parts of a glance_store URI; credentials are discarded."""
    if not isinstance(uri, str):
        raise InvalidLocation("a glance location is a string")
    scheme, rest = _split_scheme(uri.strip())
    rest = rest.split("?", 1)[0].split("#", 1)[0] if scheme != "file" else rest
    if scheme in ("file", "filesystem"):
        if not rest.startswith("/"):
            raise InvalidLocation("file location must be an absolute path (file:///...)")
        return GlanceParts("file", "", _segments(rest.lstrip("/"), "file location"))
    if scheme == "rbd":
        return _rbd(rest)
    if scheme in ("s3", "s3+http", "s3+https"):
        return _objectstore("s3", rest)
    if scheme in ("swift", "swift+http", "swift+https", "swift+config"):
        return _objectstore("swift", rest)
    if scheme in ("http", "https"):
        rest = _drop_userinfo(rest)
        host, _, path = rest.partition("/")
        if not host:
            raise InvalidLocation("http location has no host")
        return GlanceParts(scheme, host, _segments(path, "http location"))
    raise InvalidLocation(f"unknown glance location scheme {scheme!r}")
