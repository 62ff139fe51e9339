"""glance_store's URI form of an imagestore location, one entry per backend scheme.

Glance records these URIs and Nova and Cinder parse them with their own code,
so each is exactly the credential-free form that glance_store's own driver for
that backend writes (``file:///root/ID``, ``rbd://FSID/POOL/IMAGE/SNAP``,
``s3[+https]://HOST/BUCKET/KEY``, ``swift+https://HOST/CONTAINER/OBJECT``), never
imagestore's ``?store=`` query. Reading goes the other way through
:meth:`imagestore.Location.from_glance`. Adding a backend is one :data:`FORMS` entry.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlsplit

from ..errors import InvalidLocation
from ..location import Location

__all__ = ["FORMS", "PROBE_ID", "GlanceForm", "form_for", "glance_uri", "is_secure", "url_prefix"]

_PROBES = ("00000000-imagestore-url-prefix-probe", "ffffffff-imagestore-url-prefix-probe")
"""Two image ids no upload uses, unlike from the first character on (so also in the container a
seeded object store derives from an id's first characters): what their URIs share, up to the last
``/``, is the prefix of every URI of the store."""
PROBE_ID = _PROBES[0]
"""An image id to ask a driver what its locations look like (no image of this id is made)."""
_URI_UNSAFE = "%?#"
"""Characters glance_store's file URIs carry raw and every parser then splits or decodes."""


@dataclass(frozen=True)
class GlanceForm:
    """How one backend's locations look to glance_store: its URI schemes and the writer."""

    schemes: tuple[str, ...]
    """Every scheme glance_store registers for the backend (the first is the one written)."""
    write: Callable[[Location, bool], str]
    """``(location, secure) -> URI``; ``secure`` is whether the endpoint speaks https."""


def _segment(text: str) -> str:
    """One path segment quoted as glance_store's rbd driver does (nothing kept but letters etc.)."""
    return quote(text, safe="")


def _file(loc: Location, secure: bool) -> str:
    """``file:///root/ID``: the raw absolute path, as glance_store's filesystem driver writes it."""
    if loc.host or any(ch in seg for seg in loc.path for ch in _URI_UNSAFE):
        raise InvalidLocation(f"{loc} has no glance_store file URI (a host, or one of {_URI_UNSAFE!r} in the path)")
    return "file:///" + "/".join(loc.path)


def _rbd(loc: Location, secure: bool) -> str:
    """``rbd://FSID/POOL/IMAGE/SNAP`` (Nova's and Cinder's four parts), or legacy ``rbd://IMAGE``."""
    if len(loc.path) == 1 and not loc.host:
        return "rbd://" + _segment(loc.path[0])
    if len(loc.path) != 3 or not loc.host:
        raise InvalidLocation(f"{loc} is not an rbd location fsid/pool/image/snapshot")
    return "rbd://" + "/".join(_segment(part) for part in (loc.host, *loc.path))


def _s3(loc: Location, secure: bool) -> str:
    """``s3://HOST/BUCKET/KEY`` (``s3+https`` for an https endpoint), without keys."""
    if not loc.host or len(loc.path) < 2:
        raise InvalidLocation(f"{loc} is not an s3 location host/bucket/key")
    return f"{'s3+https' if secure else 's3'}://{loc.host}/" + "/".join(_segment(seg) for seg in loc.path)


def _swift(loc: Location, secure: bool) -> str:
    """``swift+https://HOST/CONTAINER/OBJECT``: glance_store's credential-free (storage URL) form."""
    if not loc.host or len(loc.path) < 2:
        raise InvalidLocation(f"{loc} is not a swift location host/container/object")
    return f"{'swift+https' if secure else 'swift+http'}://{loc.host}/" + "/".join(_segment(s) for s in loc.path)


FORMS: Mapping[str, GlanceForm] = {
    "file": GlanceForm(("file", "filesystem"), _file),
    "rbd": GlanceForm(("rbd",), _rbd),
    "s3": GlanceForm(("s3", "s3+http", "s3+https"), _s3),
    "swift": GlanceForm(("swift", "swift+http", "swift+https", "swift+config"), _swift),
}
"""imagestore driver scheme -> glance_store form; a driver without an entry cannot back Glance."""


def form_for(scheme: str) -> GlanceForm:
    """The glance_store form of a driver scheme, else InvalidLocation naming the ones there are."""
    try:
        return FORMS[scheme]
    except KeyError:
        raise InvalidLocation(f"driver {scheme!r} has no glance_store URI form (there are: {', '.join(FORMS)})") \
            from None


def glance_uri(location: Location, *, secure: bool = False) -> str:
    """The URI glance_store records for ``location`` (no credentials, no ``?store=``)."""
    return form_for(location.scheme).write(location, secure)


_ENDPOINT_KEYS = ("endpoint", "endpoint_url", "auth_url", "storage_url", "url")


def is_secure(facts: Mapping[str, Any], host: str | None = None) -> bool:
    """Whether the endpoint a store's locations name is https, from its driver's ``describe()``:
    the URL whose host is ``host`` (a Swift store knows an auth and a storage URL), else the first."""
    urls = [v for v in (facts.get(key) for key in _ENDPOINT_KEYS) if isinstance(v, str) and "://" in v]
    if host is not None:
        urls = [u for u in urls if urlsplit(u).netloc == host] or urls
    return bool(urls) and urls[0].lower().startswith("https://")


def url_prefix(location_for: Callable[[str], Location], *, secure: bool = False) -> str:
    """The prefix every URI of a store starts with (Glance maps a URI to its backend by it).

    It ends at a ``/``, so a store under ``/srv/images`` never claims ``/srv/images2/...``.
    """
    first, second = (glance_uri(location_for(probe), secure=secure) for probe in _PROBES)
    shared = os.path.commonprefix([first, second])
    return shared[: shared.rindex("/") + 1]
