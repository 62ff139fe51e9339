"""Validating one store's configuration: facade settings, driver options and secrets.

Every error is a :class:`ConfigError` naming the key (``stores.NAME.KEY``). A
secret is written ``{ env = "NAME" }`` and becomes a :class:`Secret`, whose
repr and str never show the value.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from .spi.contract import Option
from .spi.options import Secret, parse_duration, parse_size
from .spi.retry import RetryPolicy, Timeouts
from .errors import ConfigError
from .formats import DEFAULT_ALLOWED_FORMATS, KNOWN_FORMATS, FormatPolicy
from .engine.hashing import DEFAULT_ALGORITHMS, validate_algorithms

__all__ = ["Secret", "StoreSettings", "parse_duration", "parse_size", "validate_driver_options"]

def _resolve_secret(value: object, key: str) -> Secret:
    if isinstance(value, Secret):
        return value
    if isinstance(value, Mapping):
        if set(value) != {"env"} or not isinstance(value["env"], str):
            raise ConfigError("a secret is written { env = \"VARIABLE\" }", key=key)
        name = value["env"]
        if name not in os.environ:
            raise ConfigError(f"environment variable {name} is not set", key=key)
        return Secret(os.environ[name], name)
    if isinstance(value, str):
        raise ConfigError(
            'secrets are not written in the configuration; use { env = "VARIABLE" }', key=key
        )
    raise ConfigError('a secret is written { env = "VARIABLE" }', key=key)


def _check_type(value: object, option: Option, key: str) -> object:
    types = option.type if isinstance(option.type, tuple) else (option.type,)
    if float in types and isinstance(value, int) and not isinstance(value, bool):
        value = float(value)
    if isinstance(value, bool) and bool not in types:
        raise ConfigError(f"expected {'/'.join(t.__name__ for t in types)}, got a boolean", key=key)
    if not isinstance(value, types):
        names = "/".join(t.__name__ for t in types)
        raise ConfigError(f"expected {names}, got {type(value).__name__} {value!r}", key=key)
    if option.choices is not None and value not in option.choices:
        raise ConfigError(f"must be one of {', '.join(map(repr, option.choices))}, got {value!r}", key=key)
    return value


def validate_driver_options(
    options: Mapping[str, Option], values: Mapping[str, Any], prefix: str
) -> dict[str, Any]:
    """Check ``values`` against a driver's declared ``OPTIONS``; returns kwargs with defaults."""
    out: dict[str, Any] = {}
    for key, value in values.items():
        option = options.get(key)
        if option is None:
            raise ConfigError("unknown key", key=f"{prefix}.{key}")
        full = f"{prefix}.{key}"
        out[key] = _resolve_secret(value, full) if option.secret else _check_type(value, option, full)
    for key, option in options.items():
        if key in out:
            continue
        if option.required:
            raise ConfigError("is required", key=f"{prefix}.{key}")
        out[key] = option.default
    return out


@dataclass(frozen=True)
class StoreSettings:
    """The facade's policy for one store: limits, checksums, format policy, retries, timeouts, sweeping.

    ``connect_timeout`` and ``io_timeout`` (seconds) reach every driver's client; a driver's
    own ``read_timeout``/``op_timeout`` option, when set, overrides ``io_timeout`` for it.
    """

    max_image_size: int | None = None
    checksums: tuple[str, ...] = DEFAULT_ALGORITHMS
    policy: FormatPolicy = FormatPolicy()
    inspect: bool = True
    verify_reads: bool = True
    chunk_size: int = 4 << 20
    concurrency: int | None = None
    retries: int = 3
    retry_backoff: float = 0.2
    connect_timeout: float = 10.0
    io_timeout: float = 60.0
    auto_sweep: bool = True
    sweep_older_than: float = 3600.0
    max_concurrent_adds: int | None = None
    idle_timeout: float | None = 300.0

    KEYS = frozenset({
        "max_image_size", "checksums", "allowed_formats", "cow_requires_raw", "inspect",
        "verify_reads", "chunk_size", "concurrency", "retries", "retry_backoff", "auto_sweep",
        "connect_timeout", "io_timeout", "sweep_older_than", "max_concurrent_adds", "idle_timeout",
    })

    @classmethod
    def from_mapping(cls, values: Mapping[str, Any], prefix: str) -> StoreSettings:
        """Build settings from the facade keys of one store's table."""
        kw: dict[str, Any] = {}
        if "max_image_size" in values:
            kw["max_image_size"] = parse_size(values["max_image_size"], f"{prefix}.max_image_size")
        if "checksums" in values:
            algos = values["checksums"]
            if not isinstance(algos, (list, tuple)) or not all(isinstance(a, str) for a in algos):
                raise ConfigError("expected a list of algorithm names", key=f"{prefix}.checksums")
            kw["checksums"] = validate_algorithms(algos, key=f"{prefix}.checksums")
        allowed = values.get("allowed_formats")
        if allowed is not None:
            if not isinstance(allowed, (list, tuple)) or not all(isinstance(a, str) for a in allowed):
                raise ConfigError("expected a list of format names", key=f"{prefix}.allowed_formats")
            unknown = sorted({a.lower() for a in allowed} - KNOWN_FORMATS)
            if unknown:
                raise ConfigError(
                    f"unknown format(s) {', '.join(unknown)}; known: {', '.join(sorted(KNOWN_FORMATS))}",
                    key=f"{prefix}.allowed_formats",
                )
        cow_raw = _check_type(values.get("cow_requires_raw", False), Option(bool), f"{prefix}.cow_requires_raw")
        kw["policy"] = FormatPolicy(
            allowed_formats=frozenset(a.lower() for a in allowed) if allowed is not None
            else DEFAULT_ALLOWED_FORMATS,
            cow_requires_raw=bool(cow_raw),
        )
        for key in ("inspect", "verify_reads", "auto_sweep"):
            if key in values:
                kw[key] = _check_type(values[key], Option(bool), f"{prefix}.{key}")
        if "chunk_size" in values:
            size = parse_size(values["chunk_size"], f"{prefix}.chunk_size")
            if not 64 << 10 <= size <= 64 << 20:
                raise ConfigError("must be between 64K and 64M", key=f"{prefix}.chunk_size")
            kw["chunk_size"] = size
        for key, low in (("concurrency", 1), ("retries", 0)):
            if key in values:
                val = _check_type(values[key], Option(int), f"{prefix}.{key}")
                if not low <= int(val) <= 64:  # type: ignore[call-overload]
                    raise ConfigError(f"must be between {low} and 64", key=f"{prefix}.{key}")
                kw[key] = val
        if "retry_backoff" in values:
            val = _check_type(values["retry_backoff"], Option(float), f"{prefix}.retry_backoff")
            if not 0 <= float(val) <= 60:  # type: ignore[arg-type]
                raise ConfigError("must be between 0 and 60 seconds", key=f"{prefix}.retry_backoff")
            kw["retry_backoff"] = val
        for key, most in (("connect_timeout", 600.0), ("io_timeout", 3600.0)):
            if key in values:
                val = _check_type(values[key], Option((int, float)), f"{prefix}.{key}")
                if isinstance(val, bool) or not 0 < float(val) <= most:  # type: ignore[arg-type]
                    raise ConfigError(f"must be more than 0 and at most {most:g} seconds", key=f"{prefix}.{key}")
                kw[key] = float(val)  # type: ignore[arg-type]
        if "sweep_older_than" in values:
            kw["sweep_older_than"] = parse_duration(values["sweep_older_than"], f"{prefix}.sweep_older_than")
        if "max_concurrent_adds" in values:
            val = _check_type(values["max_concurrent_adds"], Option(int), f"{prefix}.max_concurrent_adds")
            if int(val) < 1:  # type: ignore[call-overload]
                raise ConfigError("must be at least 1", key=f"{prefix}.max_concurrent_adds")
            kw["max_concurrent_adds"] = val
        if "idle_timeout" in values:
            idle = parse_duration(values["idle_timeout"], f"{prefix}.idle_timeout")
            kw["idle_timeout"] = idle or None  # 0 turns it off
        return cls(**kw)

    @property
    def retry(self) -> RetryPolicy:
        """The store's retry policy (``retries``, ``retry_backoff``)."""
        return RetryPolicy(retries=self.retries, backoff=self.retry_backoff)

    @property
    def timeouts(self) -> Timeouts:
        """The store's ``connect_timeout`` and ``io_timeout``."""
        return Timeouts(connect=self.connect_timeout, io=self.io_timeout)
