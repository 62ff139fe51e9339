"""``imagestore.replicate``: copy a location held by a store, by the configured stores, or at an
http(s) URL (read through a throwaway read-only store) into a store."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..errors import InvalidLocation
from ..location import Location
from ..engine.progress import Progress
from ..results import Replica
from .args import CloneModeArg, parse_any
from .registry import Stores
from .store import Store

__all__ = ["replicate"]


def replicate(
    source: Location | str,
    to: Store,
    *,
    via: Store | Stores | None = None,
    name: str | None = None,
    mode: CloneModeArg = "auto",
    expected: Mapping[str, str] | None = None,
    format: str | None = None,
    progress: Progress | None = None,
    http_options: Mapping[str, Any] | None = None,
) -> Replica:
    """Copy ``source`` into ``to``: a location of ``via`` (a store, or the configured stores that
    hold it) or, without ``via``, an ``http(s)://`` URL read through a throwaway read-only http
    store (Glance's web-download: verified against ``expected``, inspected, size-capped by
    ``to``). ``name`` defaults to the last segment of the location."""
    if via is None:
        loc = parse_any(source)
        if loc.scheme not in ("http", "https"):
            raise InvalidLocation(f"{loc} is not an http(s) URL; say which store holds it (via=)")
        from ..drivers.http import HttpDriver

        store = Store(HttpDriver("web", **dict(http_options or {})))
        try:
            return store.replicate(loc, to, name=name, mode=mode, expected=expected, format=format,
                                   progress=progress)
        finally:
            store.close()
    if isinstance(via, Store):
        return via.replicate(source, to, name=name, mode=mode, expected=expected, format=format, progress=progress)
    holder, loc = via.resolve(source)
    return holder.replicate(loc, to, name=name, mode=mode, expected=expected, format=format, progress=progress)
