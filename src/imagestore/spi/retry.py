"""The retry and error-translation layer, written once for every driver.

Whatever a driver raises leaves the facade as an :class:`ImageStoreError`:
``Transient`` after the allowed retries becomes ``BackendUnavailable``, an
``OSError`` becomes the error its errno means (``NoSpace``, ``PermissionDenied``,
``BackendError``...), and anything else a ``BackendError`` naming its class.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable
from typing import TypeVar

from ..errors import BackendError, BackendUnavailable, ImageStoreError, Transient, from_os_error

__all__ = ["backoff_delay", "call_with_retries", "translate"]

log = logging.getLogger("imagestore")
T = TypeVar("T")


def backoff_delay(attempt: int, backoff: float) -> float:
    """Seconds to wait before retry ``attempt`` (0-based): exponential, jittered, capped at 30 s."""
    return float(min(30.0, backoff * (2**attempt)) * (0.5 + random.random()))


def translate(exc: BaseException, op: str, *, store: str, image: str | None = None,
              attempts: int = 1) -> BaseException:
    """The exception a caller sees for ``exc`` raised by a driver during ``op``.

    ImageStoreErrors and non-``Exception`` exceptions (KeyboardInterrupt...) are
    returned unchanged.
    """
    if isinstance(exc, ImageStoreError) or not isinstance(exc, Exception):
        return exc
    if isinstance(exc, Transient):
        tries = f" after {attempts} attempt(s)" if attempts > 1 else ""
        return BackendUnavailable(f"{op} failed{tries}: {exc}", store=store, image=image)
    if isinstance(exc, OSError):
        return from_os_error(exc, op=op, store=store, image=image)
    return BackendError(f"{op} failed: {type(exc).__name__}: {exc}", store=store, image=image)


def call_with_retries(
    op: str, fn: Callable[[], T], *, retries: int, backoff: float, store: str, image: str | None = None
) -> T:
    """Run ``fn``; on ``Transient`` wait and retry up to ``retries`` times; translate what escapes."""
    attempt = 0
    while True:
        try:
            return fn()
        except Transient as exc:
            if attempt >= retries:
                raise translate(exc, op, store=store, image=image, attempts=attempt + 1) from exc
            delay = backoff_delay(attempt, backoff)
            log.warning("store %s: %s failed (%s); retrying in %.2fs", store, op, exc, delay)
            time.sleep(delay)
            attempt += 1
        except Exception as exc:
            error = translate(exc, op, store=store, image=image)
            if error is exc:
                raise
            raise error from exc
