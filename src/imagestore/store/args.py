"""Argument parsing shared by the operations: location strings in every accepted form, the
algorithms a caller asks for, counts and clone modes; each refusal names store and image."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Literal

from ..config import StoreSettings
from ..errors import InvalidArgument, InvalidLocation
from ..engine.hashing import INTEGRITY, validate_algorithms, validate_digests
from ..location import Location

__all__ = ["MODES", "CloneModeArg", "is_count", "parse_any", "with_algorithms"]

CloneModeArg = Literal["auto", "cow", "server_copy", "stream"]
MODES = ("auto", "cow", "server_copy", "stream")


def parse_any(ref: Location | str) -> Location:
    """A canonical location string, else a glance_store URI (whose credentials are dropped)."""
    if isinstance(ref, Location):
        return ref
    if not isinstance(ref, str):
        raise InvalidLocation(f"a location is a string, not {type(ref).__name__}")
    scheme = ref.partition("://")[0]
    # a canonical location never holds a raw "@" (it is percent-quoted): one means
    # glance_store's embedded credentials, whose secret may itself contain "/"
    glance_only = scheme.lower() == "filesystem" or "+" in scheme or "@" in ref.split("?", 1)[0]
    if glance_only:
        return Location.from_glance(ref)
    try:
        return Location.parse(ref)
    except InvalidLocation as first:
        try:
            return Location.from_glance(ref)
        except InvalidLocation:
            raise first from None


def with_algorithms(settings: StoreSettings, checksums: Sequence[str] | None, expected: Mapping[str, str] | None,
                    *, store: str, image: str) -> StoreSettings:
    """Settings that also compute the algorithms a caller named in ``checksums=`` and ``expected=``."""
    validate_digests(expected, store=store, image=image)
    if isinstance(checksums, str) or not isinstance(checksums, (Sequence, type(None))):
        raise InvalidArgument(f"checksums must be a list of algorithm names, not {checksums!r}", store=store,
                              image=image)
    more = [a for a in dict.fromkeys([*(checksums or ()), *(expected or {})])
            if a not in settings.checksums and a != INTEGRITY]  # BLAKE3 is always computed
    if not more:
        return settings
    try:  # an unknown name is the ConfigError of the store's own ``checksums`` key
        algorithms = validate_algorithms((*settings.checksums, *more), key="checksums")
    except TypeError:
        raise InvalidArgument(f"checksums must be algorithm names, not {checksums!r}", store=store,
                              image=image) from None
    return replace(settings, checksums=algorithms)


def is_count(value: object) -> bool:
    """Whether ``value`` is a non-negative int (bool is not a count)."""
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0
