"""Authentication to Swift: tempauth (v1) or Keystone v3, with a token that is renewed.

Both give a storage URL and a token. :meth:`SwiftAuth.credentials` renews a token
that expires within the renewal margin (so a long transfer does not start a request
with a token about to lapse) and :meth:`SwiftAuth.renew` replaces a token the server
refused (a 401 in the middle of a transfer), once for all the threads that saw it.
Failures say which user at which URL, never the key or password.
"""

from __future__ import annotations

import threading
import time
from abc import ABC, abstractmethod
from dataclasses import dataclass

import requests

from ...spi.options import Secret
from ...errors import ConfigError, DriverNotInstalled, PermissionDenied, Transient

__all__ = ["KeystoneAuth", "SwiftAuth", "TempAuth", "V3Scope", "what_failed"]

RENEW_MARGIN = 120.0
"""Seconds before a token's expiry from which requests get a new token first (at most a
quarter of the token's life)."""


def what_failed(exc: BaseException) -> str:
    """A connection failure named by its kind, without the URL."""
    if isinstance(exc, requests.exceptions.ConnectTimeout):
        return "connection timed out"
    if isinstance(exc, requests.exceptions.ReadTimeout):
        return "no answer in time"
    if isinstance(exc, requests.exceptions.SSLError):
        return "TLS failure"
    if isinstance(exc, requests.exceptions.ConnectionError):
        text = str(exc.args[0] if exc.args else exc).lower()
        if "refused" in text:
            return "connection refused"
        if "reset" in text or "aborted" in text or "broken pipe" in text:
            return "connection reset"
        return "connection failed"
    return type(exc).__name__


class SwiftAuth(ABC):
    """Holds one (storage URL, token) pair for all threads of a store, renewing it when needed."""

    def __init__(self, auth_url: str, user: str, label: str, storage_url: str | None) -> None:
        self.auth_url = auth_url
        self.user = user
        self.label = label
        self._override = storage_url.rstrip("/") if storage_url else None
        self._lock = threading.Lock()
        self._url: str | None = None
        self._token: str | None = None
        self._expires: float | None = None  # monotonic deadline
        self._margin = RENEW_MARGIN
        self.renewals = 0
        """Tokens obtained so far (1 after the first authentication)."""

    def __repr__(self) -> str:
        return f"{type(self).__name__}(auth_url={self.auth_url!r}, user={self.user!r})"

    @abstractmethod
    def _fetch(self) -> tuple[str, str, float | None]:
        """Authenticate: (storage URL, token, seconds until the token expires or None)."""

    def use_timeout(self, timeout: tuple[float, float]) -> None:
        """Apply the store's (connect, io) timeouts to the authentication requests."""

    def _refresh(self) -> None:
        url, token, lifetime = self._fetch()
        self._url = self._override or url.rstrip("/")
        self._token = token
        self._expires = None if lifetime is None else time.monotonic() + lifetime
        self._margin = RENEW_MARGIN if lifetime is None else min(RENEW_MARGIN, lifetime / 4)
        self.renewals += 1

    def credentials(self) -> tuple[str, str]:
        """The storage URL and a token that is not about to expire."""
        with self._lock:
            stale = self._expires is not None and time.monotonic() > self._expires - self._margin
            if self._token is None or stale:
                self._refresh()
            assert self._url is not None and self._token is not None
            return self._url, self._token

    def renew(self, refused: str) -> None:
        """Get a new token because ``refused`` was rejected (unless another thread already did)."""
        with self._lock:
            if self._token == refused or self._token is None:
                self._refresh()

    @property
    def known_storage_url(self) -> str | None:
        """The storage URL if authentication happened already (no network call)."""
        return self._url

    @property
    def storage_url(self) -> str:
        """The storage URL (authenticates first if needed)."""
        return self.credentials()[0]

    def _denied(self, detail: str = "") -> PermissionDenied:
        extra = f": {detail}" if detail else ""
        return PermissionDenied(f"Swift authentication refused for user {self.user!r} at {self.auth_url}{extra}",
                                store=self.label)


class TempAuth(SwiftAuth):
    """v1 authentication (tempauth, swauth, radosgw's Swift API): ``X-Auth-User``/``X-Auth-Key``."""

    def __init__(self, auth_url: str, user: str, key: Secret, *, label: str, verify: bool | str,
                 timeout: tuple[float, float], storage_url: str | None = None) -> None:
        super().__init__(auth_url, user, label, storage_url)
        self._key = key
        self._verify = verify
        self._timeout = timeout

    def use_timeout(self, timeout: tuple[float, float]) -> None:
        """Apply the store's (connect, io) timeouts to the authentication requests."""
        self._timeout = timeout

    def _fetch(self) -> tuple[str, str, float | None]:
        headers = {"X-Auth-User": self.user, "X-Auth-Key": self._key.reveal()}
        try:
            with requests.Session() as session:
                session.trust_env = False
                resp = session.get(self.auth_url, headers=headers, timeout=self._timeout, verify=self._verify,
                                   allow_redirects=False)
        except requests.exceptions.RequestException as exc:
            raise Transient(f"Swift authentication at {self.auth_url}: {what_failed(exc)}") from None
        if resp.status_code in (401, 403):
            raise self._denied()
        if resp.status_code >= 500 or resp.status_code in (408, 429):
            raise Transient(f"Swift authentication at {self.auth_url}: {resp.status_code} {resp.reason}")
        url, token = resp.headers.get("X-Storage-Url"), resp.headers.get("X-Auth-Token")
        if resp.status_code // 100 != 2 or not url or not token:
            raise ConfigError(f"{self.auth_url} answered {resp.status_code} without a storage URL and token: "
                              "is it a v1 auth endpoint?", key=f"stores.{self.label}.auth_url")
        expires = resp.headers.get("X-Auth-Token-Expires")
        try:
            lifetime = float(expires) if expires else None
        except ValueError:
            lifetime = None
        return url, token, lifetime


@dataclass(frozen=True)
class V3Scope:
    """The Keystone v3 names or ids that say who the user is and which project it works in."""

    project_name: str | None = None
    project_id: str | None = None
    project_domain_name: str | None = None
    project_domain_id: str | None = None
    user_domain_name: str | None = None
    user_domain_id: str | None = None
    region: str | None = None
    interface: str = "public"


class KeystoneAuth(SwiftAuth):
    """Keystone v3 password authentication through keystoneauth1; the object-store endpoint
    comes from the catalog (``region``, ``interface``) unless ``storage_url`` is given."""

    def __init__(self, auth_url: str, user: str, password: Secret, scope: V3Scope, *, label: str,
                 verify: bool | str, timeout: tuple[float, float], storage_url: str | None = None) -> None:
        super().__init__(auth_url, user, label, storage_url)
        try:
            from keystoneauth1 import session as ks_session
            from keystoneauth1.identity import v3
        except ImportError as exc:
            raise DriverNotInstalled(f"Keystone v3 needs keystoneauth1 ({exc}); pip install 'imagestore[swift]'",
                                     store=label) from exc
        self._scope = scope
        self._plugin = v3.Password(
            auth_url=auth_url, username=user, password=password.reveal(),
            user_domain_name=scope.user_domain_name, user_domain_id=scope.user_domain_id,
            project_name=scope.project_name, project_id=scope.project_id,
            project_domain_name=scope.project_domain_name, project_domain_id=scope.project_domain_id,
        )
        self._session = ks_session.Session(auth=self._plugin, verify=verify, timeout=timeout[1], connect_retries=0)

    def use_timeout(self, timeout: tuple[float, float]) -> None:
        """Apply the store's io timeout to Keystone's requests (keystoneauth takes one number)."""
        self._session.timeout = float(timeout[1])

    def _fetch(self) -> tuple[str, str, float | None]:
        from keystoneauth1 import exceptions as ks

        self._plugin.invalidate()
        try:
            token = self._session.get_token()
            url = self._override or self._session.get_endpoint(service_type="object-store",
                                                               interface=self._scope.interface,
                                                               region_name=self._scope.region)
        except ks.Unauthorized:
            raise self._denied() from None
        except (ks.ConnectFailure, ks.ConnectTimeout, ks.RetriableConnectionFailure) as exc:
            raise Transient(f"Keystone at {self.auth_url}: {type(exc).__name__}") from None
        except ks.EndpointNotFound:
            raise ConfigError(f"the Keystone catalog has no object-store endpoint for interface "
                              f"{self._scope.interface!r} in region {self._scope.region!r}",
                              key=f"stores.{self.label}.region") from None
        except ks.HttpError as exc:
            if exc.http_status is not None and exc.http_status >= 500:
                raise Transient(f"Keystone at {self.auth_url}: {exc.http_status}") from None
            raise self._denied(f"{exc.http_status}") from None
        if not token or not url:
            raise self._denied("no token or no object-store endpoint")
        ref = self._plugin.auth_ref
        lifetime = None
        if ref is not None and ref.expires is not None:
            lifetime = max(0.0, ref.expires.timestamp() - time.time())
        return url, token, lifetime
