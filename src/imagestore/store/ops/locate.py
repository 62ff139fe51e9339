"""``Store.locate``: what another service needs to reach the image's bits itself (a path, an RBD
spec, a presigned URL), refused on a store that gives no direct access."""

from __future__ import annotations

from ...errors import InvalidArgument, Unsupported
from ...location import DirectAccess, Location
from ..state import StoreState

__all__ = ["locate"]


def locate(state: StoreState, location: Location | str, *, ttl: float | None = None) -> DirectAccess:
    """The image's direct access; ``ttl`` asks for a presigned URL valid that many seconds."""
    loc = state.location(location)
    if not state.caps.direct_access:
        raise Unsupported("this store gives no direct access", store=state.name, image=loc.image)
    if ttl is not None:
        if not state.caps.presign:
            raise Unsupported("this store cannot presign URLs (no ttl)", store=state.name, image=loc.image)
        if isinstance(ttl, bool) or not isinstance(ttl, (int, float)) or not ttl > 0 or ttl == float("inf"):
            raise InvalidArgument(f"ttl must be a positive number of seconds, not {ttl!r}", store=state.name,
                                  image=loc.image)
    return state.call("locate", lambda: state.driver.locate(loc, ttl), loc.image)
