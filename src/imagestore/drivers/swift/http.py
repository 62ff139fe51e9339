"""HTTP to one Swift account: a pooled session, token renewal on 401, and the mapping of
Swift's answers to imagestore errors.

Every request goes through :meth:`SwiftHttp.request`: connection failures, timeouts and
5xx answers become :class:`~imagestore.errors.Transient` (the caller or the facade
retries), a 401 renews the token once and sends the request again (bodies are bytes or
memoryviews, so they can be resent), and :meth:`SwiftHttp.error` turns any other
unexpected status into the error it means. No message holds a token or a key.
"""

from __future__ import annotations

import email.utils
import re
import threading
import time
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

import requests
from requests.adapters import HTTPAdapter

from ...errors import (
    BackendError,
    ImageStoreError,
    ImageTooLarge,
    NoSpace,
    NotFound,
    PermissionDenied,
    Transient,
)
from ...spi.retry import RetryPolicy
from .auth import SwiftAuth, what_failed

__all__ = ["Response", "SwiftHttp"]

Response = requests.Response
_RETRYABLE = frozenset({408, 429, 498, 500, 502, 503, 504})
_TAGS = re.compile(r"<[^>]+>")
_REAUTH = RetryPolicy(retries=1, backoff=0.0)
"""A 401 renews the token and resends the request once, at once (not a retry of a fault)."""


class _TokenRefused(Exception):
    """A 401 to ``token``: renew it and send again."""

    def __init__(self, token: str, response: Response) -> None:
        super().__init__("401 Unauthorized")
        self.token = token
        self.response = response


def _short(text: str, limit: int = 160) -> str:
    """A Swift error body as one short line (Swift answers small HTML or plain text)."""
    line = " ".join(_TAGS.sub(" ", text).split())
    return line[:limit]


class SwiftHttp:
    """Requests to one account's storage URL, ``pool`` connections kept alive."""

    def __init__(self, auth: SwiftAuth, *, pool: int, connect_timeout: float, read_timeout: float,
                 verify: bool | str, label: str) -> None:
        self.auth = auth
        self.label = label
        self.timeout = (connect_timeout, read_timeout)
        self.verify = verify
        self.session = requests.Session()
        self.session.trust_env = False  # no *_proxy or netrc surprises: the config says where Swift is
        adapter = HTTPAdapter(pool_connections=4, pool_maxsize=max(4, pool), max_retries=0)
        self.session.mount("http://", adapter)
        self.session.mount("https://", adapter)
        self._clock_lock = threading.Lock()
        self._clock_offset: float | None = None
        self.requests = 0
        """Requests sent so far (for tests and benchmarks)."""

    def close(self) -> None:
        """Drop the kept-alive connections."""
        self.session.close()

    # ------------------------------------------------------------ requests
    def request(self, method: str, path: str, *, op: str, headers: Mapping[str, str] | None = None,
                params: Mapping[str, str] | None = None, data: bytes | memoryview | None = None,
                stream: bool = False, timeout: tuple[float, float] | None = None) -> Response:
        """Send one request to ``STORAGE_URL/path``; a 401 renews the token and resends once.

        Returns the response whatever its status except 401 (renewed) and the retryable
        ones (raised as Transient); the caller reads the status it expects.
        """
        def send() -> Response:
            base, token = self.auth.credentials()
            url = f"{base}/{path}" if path else base
            sent = {**(headers or {}), "X-Auth-Token": token}
            try:
                self.requests += 1
                resp = self.session.request(method, url, headers=sent, params=params, data=data, stream=stream,
                                            timeout=timeout or self.timeout, verify=self.verify,
                                            allow_redirects=False)
            except requests.exceptions.RequestException as exc:
                raise Transient(f"{op}: {what_failed(exc)}") from None
            self._learn_clock(resp)
            if resp.status_code == 401:
                raise _TokenRefused(token, resp)
            if resp.status_code in _RETRYABLE:
                status, reason = resp.status_code, resp.reason
                resp.close()
                raise Transient(f"{op}: Swift answered {status} {reason}")
            return resp

        def renew(exc: BaseException, attempt: int, delay: float) -> None:
            assert isinstance(exc, _TokenRefused)
            exc.response.close()
            self.auth.renew(exc.token)

        try:
            return _REAUTH.run(send, site="swift-reauth", what=f"store {self.label}: {op}", retry_on=_TokenRefused,
                               on_retry=renew, quiet=True)
        except _TokenRefused as refused:  # refused again with a fresh token: the caller reads the 401
            return refused.response

    def error(self, resp: Response, op: str, *, image: str | None = None) -> ImageStoreError | Transient:
        """The error an unexpected answer means (the body is read and the response closed)."""
        status = resp.status_code
        try:
            body = _short(resp.text)
        except requests.exceptions.RequestException:
            body = ""
        finally:
            resp.close()
        store = self.label
        said = f"Swift answered {status} {resp.reason}" + (f" ({body})" if body else "")
        if status in (401, 403):
            return PermissionDenied(f"{op}: {said}", store=store, image=image)
        if status == 404:
            return NotFound(f"{op}: not found", store=store, image=image)
        if status == 413:
            if "quota" in body.lower():
                return NoSpace(f"{op}: the Swift container or account quota is full ({body})", store=store,
                               image=image)
            return ImageTooLarge(f"{op}: {said}", store=store, image=image)
        if status == 507:
            return NoSpace(f"{op}: {said}", store=store, image=image)
        if status in _RETRYABLE:
            return Transient(f"{op}: {said}")
        return BackendError(f"{op}: {said}", store=store, image=image)

    # ------------------------------------------------------------ the cluster
    def info(self) -> dict[str, Any]:
        """The proxy's ``/info`` (capabilities and limits); empty if the cluster hides it."""
        base, _ = self.auth.credentials()
        parts = urlsplit(base)
        try:
            resp = self.session.get(f"{parts.scheme}://{parts.netloc}/info", timeout=self.timeout,
                                    verify=self.verify)
        except requests.exceptions.RequestException as exc:
            raise Transient(f"GET /info: {what_failed(exc)}") from None
        if resp.status_code in _RETRYABLE:
            raise Transient(f"GET /info: Swift answered {resp.status_code}")
        if resp.status_code != 200:
            return {}
        try:
            found = resp.json()
        except ValueError:
            return {}
        return found if isinstance(found, dict) else {}

    def _learn_clock(self, resp: Response) -> None:
        """Remember how far the proxy's clock is from ours (its ``Date``, one-second grain)."""
        if self._clock_offset is not None:
            return
        date = resp.headers.get("Date")
        if not date:
            return
        try:
            server = email.utils.parsedate_to_datetime(date).timestamp()
        except (TypeError, ValueError):
            return
        with self._clock_lock:
            if self._clock_offset is None:
                self._clock_offset = server + 0.5 - time.time()

    def server_time(self) -> float:
        """The proxy's current time as far as we know it (our clock until an answer came)."""
        return time.time() + (self._clock_offset or 0.0)
