"""Option value types a driver parses its settings with: sizes, durations and secrets.

They live on the driver side of the line so that a driver needs nothing from the
facade's configuration module; ``imagestore.config`` re-exports them.
"""

from __future__ import annotations

import re

from ..errors import ConfigError

__all__ = ["Secret", "parse_duration", "parse_size"]

_SIZE_RE = re.compile(r"(\d+)\s*([KMGTP]?)(i?B?)?", re.IGNORECASE)
_UNITS = {"": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40, "P": 1 << 50}
_DURATION_RE = re.compile(r"(\d+(?:\.\d+)?)\s*(s|m|h|d)?", re.IGNORECASE)
_SECONDS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}


class Secret:
    """A configuration value that must never be printed; ``reveal()`` gives it to a driver."""

    __slots__ = ("_source", "_value")

    def __init__(self, value: str, source: str = "") -> None:
        self._value = value
        self._source = source

    def reveal(self) -> str:
        """The secret itself, for the driver that authenticates with it."""
        return self._value

    def __repr__(self) -> str:
        return f"Secret(env={self._source!r})" if self._source else "Secret('***')"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(("Secret", self._value))


def parse_size(value: object, key: str) -> int:
    """Bytes from an int or a string like ``"10G"``/``"512MiB"`` (binary units)."""
    if isinstance(value, bool):
        raise ConfigError("expected a size in bytes or a string like '10G'", key=key)
    if isinstance(value, int):
        if value <= 0:
            raise ConfigError("must be a positive size", key=key)
        return value
    if isinstance(value, str):
        match = _SIZE_RE.fullmatch(value.strip())
        if match:
            size = int(match.group(1)) * _UNITS[match.group(2).upper()]
            if size > 0:
                return size
    raise ConfigError(f"expected a size in bytes or a string like '10G', got {value!r}", key=key)


def parse_duration(value: object, key: str) -> float:
    """Seconds from a number or a string like ``"90s"``, ``"10m"``, ``"1h"``, ``"2d"``."""
    if isinstance(value, bool):
        raise ConfigError("expected a duration such as 30s, 10m, 1h", key=key)
    if isinstance(value, (int, float)):
        if value < 0:
            raise ConfigError("must not be negative", key=key)
        return float(value)
    if isinstance(value, str):
        match = _DURATION_RE.fullmatch(value.strip())
        if match:
            return float(match.group(1)) * _SECONDS[(match.group(2) or "").lower()]
    raise ConfigError(f"expected a duration such as 30s, 10m, 1h, got {value!r}", key=key)
