"""Every retry of the package, and the error translation, written once for every driver.

:class:`RetryPolicy` is the one retry loop: the facade's retry of a whole idempotent
call, the part uploader's resend of a part, a read resumed at the byte where it broke
and the few resends a driver does itself all call :meth:`RetryPolicy.run` with a
``site`` name (the README's "who retries what" table lists exactly these sites).
:class:`Timeouts` are the store's ``connect`` and ``io`` timeouts every driver applies
to its client. No other module sleeps between attempts.

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
from contextvars import ContextVar
from dataclasses import dataclass, replace
from typing import TypeVar

from ..errors import BackendError, BackendUnavailable, ImageStoreError, Transient, from_os_error

__all__ = ["RetryPolicy", "Timeouts", "backoff_delay", "call_with_retries", "retry_listener", "translate"]

log = logging.getLogger("imagestore")
T = TypeVar("T")

OnRetry = Callable[[BaseException, int, float], None]
"""``on_retry(exc, attempt, delay)``: called before the wait that precedes retry ``attempt`` (1-based)."""

retry_listener: ContextVar[Callable[[str], None] | None] = ContextVar("imagestore_retry_listener", default=None)
"""Told the site of every retry in the current context: how the facade's observer counts retries
and resumes of the operation it measures (None: nobody listens)."""


@dataclass(frozen=True)
class RetryPolicy:
    """How often and how patiently to try again: ``retries`` after the first attempt, waiting
    ``backoff * 2**n`` seconds (capped at ``cap``, times 0.5-1.5 when ``jitter``) before retry n+1."""

    retries: int = 3
    backoff: float = 0.2
    cap: float = 30.0
    jitter: bool = True

    def __post_init__(self) -> None:
        if self.retries < 0 or self.backoff < 0 or self.cap < 0:
            raise ValueError("retries, backoff and cap must not be negative")

    @property
    def attempts(self) -> int:
        """Attempts in all: the first one and its retries."""
        return self.retries + 1

    def with_retries(self, retries: int) -> RetryPolicy:
        """The same backoff with another number of retries (0: try once)."""
        return replace(self, retries=retries)

    def delay(self, attempt: int) -> float:
        """Seconds to wait before retry ``attempt`` (0-based): exponential, capped, maybe jittered."""
        base = min(self.cap, self.backoff * (2 ** min(attempt, 62)))
        return float(base * (0.5 + random.random())) if self.jitter else float(base)

    def run(self, fn: Callable[[], T], *, site: str, what: str = "", retry_on: type[BaseException] | tuple[
            type[BaseException], ...] = Transient, retry_if: Callable[[BaseException], bool] | None = None,
            on_retry: OnRetry | None = None, quiet: bool = False) -> T:
        """``fn()``; when it raises ``retry_on`` (and ``retry_if(exc)`` allows), wait and call it
        again, up to ``retries`` times; the last error escapes unchanged.

        ``site`` names the retry site (see the README table); ``on_retry`` runs before each
        wait (to reopen, count or re-authenticate); ``quiet`` logs retries at debug level.
        """
        attempt = 0
        while True:
            try:
                return fn()
            except retry_on as exc:
                if attempt >= self.retries or (retry_if is not None and not retry_if(exc)):
                    raise
                delay = self.delay(attempt)
                attempt += 1
                if on_retry is not None:
                    on_retry(exc, attempt, delay)
                listener = retry_listener.get()
                if listener is not None:
                    listener(site)
                (log.debug if quiet else log.warning)("%s: %s failed (%s); retry %d of %d in %.2fs",
                                                      site, what or "call", exc, attempt, self.retries, delay)
                if delay > 0:
                    time.sleep(delay)


@dataclass(frozen=True)
class Timeouts:
    """A store's network timeouts in seconds: ``connect`` (to establish a connection or reach
    a monitor) and ``io`` (without an answer or a byte on an established one)."""

    connect: float = 10.0
    io: float = 60.0

    def __post_init__(self) -> None:
        if not (self.connect > 0 and self.io > 0):
            raise ValueError("timeouts must be positive")

    def override(self, connect: float | None = None, io: float | None = None) -> Timeouts:
        """These timeouts with a driver's own options, where set, in their place."""
        return Timeouts(connect=self.connect if connect is None else float(connect),
                        io=self.io if io is None else float(io))


def backoff_delay(attempt: int, backoff: float) -> float:
    """Seconds to wait before retry ``attempt`` (0-based) of the default policy with first pause ``backoff``."""
    return RetryPolicy(backoff=backoff).delay(attempt)


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


def call_with_retries(op: str, fn: Callable[[], T], *, policy: RetryPolicy, store: str,
                      image: str | None = None) -> T:
    """The facade's call of a driver method: ``fn`` retried on Transient by ``policy``, translated."""
    attempts = 0

    def once() -> T:
        nonlocal attempts
        attempts += 1
        return fn()

    try:
        return policy.run(once, site="facade", what=f"store {store}: {op}")
    except Exception as exc:
        error = translate(exc, op, store=store, image=image, attempts=attempts)
        if error is exc:
            raise
        raise error from exc
