"""The retry layer, written once: idempotent driver calls that raise ``Transient`` are retried."""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable
from typing import TypeVar

from .drivers.base import Transient
from .errors import BackendUnavailable

__all__ = ["call_with_retries"]

log = logging.getLogger("imagestore")
T = TypeVar("T")


def call_with_retries(
    op: str, fn: Callable[[], T], *, retries: int, backoff: float, store: str, image: str | None = None
) -> T:
    """Run ``fn``; on ``Transient`` wait (exponential, jittered) and retry up to ``retries`` times."""
    attempt = 0
    while True:
        try:
            return fn()
        except Transient as exc:
            if attempt >= retries:
                raise BackendUnavailable(
                    f"{op} failed after {attempt + 1} attempt(s): {exc}", store=store, image=image
                ) from exc
            delay = backoff * (2**attempt) * (0.5 + random.random())
            log.warning("store %s: %s failed (%s); retrying in %.2fs", store, op, exc, delay)
            time.sleep(delay)
            attempt += 1
