"""A read-only store of images behind ``http(s)://`` URLs, on fsspec's HTTP filesystem.

What it is for: importing a web image verified and inspected (Glance's web-download:
``imagestore.replicate("https://.../disk.qcow2", to=store)``) and reading glance_store's
legacy ``http://`` locations. ``stat`` is a HEAD (size from Content-Length, version from
ETag/Last-Modified, imagestore metadata from response headers when ``metadata_prefix``
names them); reads are one streaming GET, ranged with ``Range`` when the server honours
it. A server that ignores ``Range`` still gives the right bytes: the reader skips what
precedes the offset (a resumed transfer then costs a re-read of the prefix).

fsspec supplies the aiohttp session and its event-loop thread; TLS verification, a CA
bundle, redirects and timeouts are options. Credentials embedded in a URL are never
kept (locations refuse them), and a URL with a query string is not a location.

Redirects stay on the origin (scheme, host, port) of the URL that answered them unless
``allow_redirects = "any"`` (then only to public addresses) or the target host is in
``redirect_hosts``: a web image must not steer the service that reads it to an internal
address. A refused redirect is checked before anything connects to its target.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
import ssl
from collections.abc import Awaitable, Mapping
from types import SimpleNamespace
from typing import Any, ClassVar, TypeVar
from urllib.parse import quote

try:
    import aiohttp
    from fsspec.asyn import sync
    from fsspec.implementations.http import HTTPFileSystem
    from yarl import URL
except ImportError as exc:  # reported by the store registry as DriverNotInstalled
    raise ImportError(f"the http driver needs fsspec and aiohttp ({exc}): pip install 'imagestore[http]'") from exc

from ..spi.capabilities import Capabilities
from ..spi.contract import DeleteOutcome, DriverContext, Option, Stored
from ..errors import (
    BackendError,
    ConfigError,
    InvalidLocation,
    NotFound,
    PermissionDenied,
    Transient,
    Unsupported,
)
from ..location import DirectAccess, Location, validate_image_id
from ..spi.driver import Driver
from ..spi.retry import Timeouts

__all__ = ["HttpDriver", "HttpsDriver"]

T = TypeVar("T")
_SAFE = "-._~!$&'()*+,;=:@"
_RETRYABLE = {408, 425, 429, 500, 502, 503, 504}
_NETWORK_ERRORS = (aiohttp.ClientConnectionError, aiohttp.ClientPayloadError, asyncio.TimeoutError,
                   ConnectionError, TimeoutError)


class _RedirectRefused(Exception):
    """Raised on aiohttp's loop when a redirect breaks the store's policy (before it is followed)."""

    def __init__(self, source: URL, target: URL, reason: str) -> None:
        super().__init__(reason)
        self.source, self.target, self.reason = source, target, reason


def _shown(url: URL) -> str:
    """A URL fit for a message: no userinfo, query or fragment (a presigned URL's signature)."""
    try:
        return str(url.with_user(None).with_query(None).with_fragment(None))
    except ValueError:
        return "(an unparsable URL)"


def _public(address: str) -> bool:
    """Whether ``address`` is a global unicast address (not private, loopback, link-local...)."""
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip.is_global and not ip.is_multicast


def _is_ip(host: str) -> bool:
    """Whether ``host`` is an IP address literal (checked as it is, without a DNS lookup)."""
    try:
        ipaddress.ip_address(host.split("%", 1)[0])
    except ValueError:
        return False
    return True


def url_of(location: Location) -> str:
    """The URL a location of an http store names."""
    return f"{location.scheme}://{location.host}/" + "/".join(quote(seg, safe=_SAFE) for seg in location.path)


def _status_error(status: int, url: str, store: str, image: str) -> Exception:
    """The error for an HTTP error status (never the URL's query or userinfo: there is none)."""
    if status in (404, 410):
        return NotFound(f"HTTP {status} for {url}", store=store, image=image)
    if status in (401, 403):
        return PermissionDenied(f"HTTP {status} for {url}", store=store, image=image)
    if status in _RETRYABLE:
        return Transient(f"HTTP {status} for {url}")
    if 300 <= status < 400:
        return BackendError(f"HTTP {status} (a redirect not followed) for {url}", store=store, image=image)
    return BackendError(f"HTTP {status} for {url}", store=store, image=image)


class _HttpReader:
    """One streaming GET of ``length`` bytes from ``offset``; skips a prefix the server sent anyway."""

    def __init__(self, driver: HttpDriver, url: str, offset: int, length: int, image: str) -> None:
        self._d, self._url, self._image = driver, url, image
        self._left = length
        self._skip = 0
        self._broken = ""
        self._resp: aiohttp.ClientResponse | None = None
        if length > 0:
            self._resp = driver.run(self._open(offset, length), image)

    async def _open(self, offset: int, length: int) -> aiohttp.ClientResponse:
        d = self._d
        headers = {"Accept-Encoding": "identity"}
        if d.range_requests:
            headers["Range"] = f"bytes={offset}-{offset + length - 1}"
        session = await d.fs.set_session()
        resp: aiohttp.ClientResponse = await session.get(d.fs.encode_url(self._url), headers=headers,
                                                         **d.request_options())
        if resp.status == 206:
            start = resp.headers.get("Content-Range", "").removeprefix("bytes ").split("-", 1)[0]
            if not start.isdigit() or int(start) != offset:
                resp.release()
                raise BackendError(f"the server answered another range than bytes={offset}- for {self._url}",
                                   store=d.name, image=self._image)
        elif resp.status == 200:
            self._skip = offset  # Range ignored (or not sent): the whole body comes
        else:
            resp.release()
            raise _status_error(resp.status, self._url, d.name, self._image)
        return resp

    async def _read(self, n: int) -> bytes:
        resp = self._resp
        assert resp is not None
        while self._skip:
            dropped = await resp.content.read(min(self._skip, 1 << 20))
            if not dropped:
                return b""
            self._skip -= len(dropped)
        parts: list[bytes] = []
        got = 0
        want = min(n, self._left)
        while got < want:
            try:
                data = await resp.content.read(want - got)
            except _NETWORK_ERRORS as exc:
                if not parts:
                    raise
                self._broken = f"{type(exc).__name__}: {exc}"  # hand over what arrived; fail next time
                break
            if not data:
                break
            parts.append(data)
            got += len(data)
        return parts[0] if len(parts) == 1 else b"".join(parts)

    def read(self, n: int) -> bytes:
        if self._broken:
            raise Transient(self._broken)
        if self._resp is None or self._left <= 0:
            return b""
        data = self._d.run(self._read(n), self._image)
        self._left -= len(data)
        return data

    def close(self) -> None:
        resp, self._resp = self._resp, None
        if resp is not None:
            resp.close()


class HttpDriver(Driver):
    """Images behind http(s) URLs: HEAD for stat, streaming ranged GETs for reads, no writes."""

    scheme: ClassVar[str] = "http"
    OPTIONS: ClassVar[Mapping[str, Option]] = {
        "url_prefix": Option(str, default=None, help="only URLs under this prefix; image ids are PREFIX/ID"),
        "verify_tls": Option(bool, default=True, help="check the server's TLS certificate"),
        "ca_file": Option(str, default=None, help="PEM bundle of the CAs to trust (default: the system's)"),
        "follow_redirects": Option(bool, default=True, help="follow 3xx redirects"),
        "max_redirects": Option(int, default=5, help="most redirects followed for one request"),
        "allow_redirects": Option(str, default="same-origin", choices=("same-origin", "any"),
                                  help="where a redirect may go: the origin (scheme, host, port) that sent it, "
                                       "or any public address"),
        "redirect_hosts": Option(list, default=None,
                                 help="hosts (HOST or HOST:PORT) a redirect may go to besides, private ones too"),
        "read_timeout": Option((int, float), default=None,
                               help="seconds without data before a read fails (default: the store's io_timeout)"),
        "range_requests": Option(bool, default=True, help="send Range for ranged and resumed reads"),
        "metadata_prefix": Option(str, default=None,
                                  help="response headers holding imagestore metadata (checksums, format), "
                                       "e.g. 'x-object-meta-imagestore-'"),
    }

    def __init__(
        self,
        name: str,
        url_prefix: str | None = None,
        verify_tls: bool = True,
        ca_file: str | None = None,
        follow_redirects: bool = True,
        max_redirects: int = 5,
        allow_redirects: str = "same-origin",
        redirect_hosts: list[str] | None = None,
        connect_timeout: float | None = None,
        read_timeout: float | None = None,
        range_requests: bool = True,
        metadata_prefix: str | None = None,
    ) -> None:
        super().__init__(name)
        self.prefix: Location | None = None
        if url_prefix is not None:
            try:
                self.prefix = Location.parse(url_prefix.rstrip("/") + "/x")
            except InvalidLocation as exc:
                raise ConfigError(f"bad url_prefix: {exc}", key=f"stores.{name}.url_prefix") from None
            if self.prefix.scheme not in ("http", "https"):
                raise ConfigError("url_prefix must be an http:// or https:// URL", key=f"stores.{name}.url_prefix")
        if max_redirects < 0:
            raise ConfigError("must not be negative", key=f"stores.{name}.max_redirects")
        self.verify_tls = verify_tls
        self.ca_file = ca_file
        if allow_redirects not in ("same-origin", "any"):
            raise ConfigError('must be "same-origin" or "any"', key=f"stores.{name}.allow_redirects")
        if not all(isinstance(h, str) and h for h in redirect_hosts or ()):
            raise ConfigError("must be a list of host names", key=f"stores.{name}.redirect_hosts")
        self.follow_redirects = follow_redirects
        self.max_redirects = max_redirects
        self.allow_redirects = allow_redirects
        self.redirect_hosts = frozenset(h.lower() for h in redirect_hosts or ())
        self._timeouts = (connect_timeout, read_timeout)
        self.connect_timeout, self.read_timeout = self._apply_timeouts(Timeouts())
        self.range_requests = range_requests
        self.metadata_prefix = metadata_prefix.lower() if metadata_prefix else None
        self._fs: HTTPFileSystem | None = None

    def __repr__(self) -> str:
        return f"HttpDriver({self.name!r}, url_prefix={str(self.prefix)[:-2] if self.prefix else None!r})"

    # -- lifecycle ---------------------------------------------------------------
    def _apply_timeouts(self, timeouts: Timeouts) -> tuple[float, float]:
        """(connect, read) seconds for aiohttp: this driver's own values, else the store's."""
        mine = timeouts.override(*self._timeouts)
        return mine.connect, mine.io

    def _ssl(self) -> ssl.SSLContext | bool:
        if not self.verify_tls:
            return False
        return ssl.create_default_context(cafile=self.ca_file)

    async def _client(self, **kwargs: Any) -> aiohttp.ClientSession:
        kwargs.pop("loop", None)
        timeout = aiohttp.ClientTimeout(total=None, sock_connect=self.connect_timeout, sock_read=self.read_timeout)
        redirects = aiohttp.TraceConfig()
        redirects.on_request_redirect.append(self._check_redirect)
        return aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=self._ssl()), timeout=timeout,
                                     auto_decompress=False, trace_configs=[redirects], **kwargs)

    async def _check_redirect(self, session: aiohttp.ClientSession, ctx: SimpleNamespace,
                              params: aiohttp.TraceRequestRedirectParams) -> None:
        """Refuse a redirect that leaves the origin, unless the options allow its target
        (aiohttp calls this before it follows the redirect: nothing has connected to it)."""
        where = params.response.headers.get("Location") or params.response.headers.get("URI")
        if where is None:
            return  # aiohttp follows nothing then
        source = params.url
        try:
            target = source.join(URL(where))
        except ValueError:
            return  # aiohttp refuses it itself
        if (target.scheme, target.host, target.port) == (source.scheme, source.host, source.port):
            return
        host = (target.host or "").lower()
        if host in self.redirect_hosts or f"{host}:{target.port}" in self.redirect_hosts:
            return
        if self.allow_redirects != "any":
            raise _RedirectRefused(source, target, "it leaves the origin (allow_redirects = \"any\" or "
                                                   "redirect_hosts would allow it)")
        if target.scheme not in ("http", "https") or not host:
            raise _RedirectRefused(source, target, "it is not an http(s) URL")
        try:
            addresses = [host] if _is_ip(host) else [
                str(info[4][0]) for info in await asyncio.get_running_loop().getaddrinfo(
                    host, target.port, type=socket.SOCK_STREAM)]
        except OSError:
            raise _RedirectRefused(source, target, "its host does not resolve") from None
        if not all(_public(a) for a in addresses):
            raise _RedirectRefused(source, target, "it goes to a private, loopback or link-local address "
                                                   "(redirect_hosts would allow it)")

    def open(self, context: DriverContext) -> Capabilities:
        """Make the fsspec filesystem (the session connects on first request)."""
        self.connect_timeout, self.read_timeout = self._apply_timeouts(context.timeouts)
        if self.ca_file is not None:
            try:
                self._ssl()
            except (OSError, ssl.SSLError) as exc:
                raise ConfigError(f"cannot load ca_file: {exc}", key=f"stores.{self.name}.ca_file") from None
        self._fs = HTTPFileSystem(get_client=self._client, skip_instance_cache=True)
        return Capabilities(write=False, range_read=self.range_requests, direct_access=True, unknown_size=False,
                            atomic_create=True, persistent=True)

    @property
    def fs(self) -> HTTPFileSystem:
        """The fsspec filesystem (after :meth:`open`)."""
        if self._fs is None:
            raise BackendError("the http store is not open", store=self.name)
        return self._fs

    def run(self, coro: Awaitable[T], image: str | None = None) -> T:
        """Run a coroutine on fsspec's loop; network failures become Transient, a refused
        redirect PermissionDenied."""
        try:
            result: T = sync(self.fs.loop, lambda: coro)
            return result
        except _RedirectRefused as exc:
            raise self._refused(exc, image) from None
        except FileNotFoundError as exc:  # fsspec's wrapping of whatever failed
            if isinstance(exc.__cause__, _RedirectRefused):
                raise self._refused(exc.__cause__, image) from None
            raise
        except aiohttp.ClientConnectorCertificateError as exc:
            raise BackendError(f"TLS verification failed: {exc.certificate_error}", store=self.name) from None
        except aiohttp.ClientSSLError as exc:
            raise BackendError(f"TLS failed: {exc}", store=self.name) from None
        except aiohttp.TooManyRedirects:
            raise BackendError(f"more than {self.max_redirects} redirects", store=self.name) from None
        except _NETWORK_ERRORS as exc:
            raise Transient(f"{type(exc).__name__}: {exc}") from None

    def _refused(self, exc: _RedirectRefused, image: str | None) -> PermissionDenied:
        return PermissionDenied(f"redirect from {_shown(exc.source)} to {_shown(exc.target)} refused: {exc.reason}",
                                store=self.name, image=image)

    def request_options(self) -> dict[str, Any]:
        """aiohttp options of every request: redirects."""
        return {"allow_redirects": self.follow_redirects, "max_redirects": max(1, self.max_redirects)}

    def close(self) -> None:
        """Close the aiohttp session."""
        fs, self._fs = self._fs, None
        if fs is not None and fs._session is not None:
            HTTPFileSystem.close_session(fs.loop, fs._session)

    # -- description -------------------------------------------------------------
    def describe(self) -> dict[str, Any]:
        return {"url_prefix": str(self.prefix)[:-2] if self.prefix else None, "verify_tls": self.verify_tls,
                "range_requests": self.range_requests, "follow_redirects": self.follow_redirects,
                "allow_redirects": self.allow_redirects, "redirect_hosts": sorted(self.redirect_hosts)}

    def location_for(self, image_id: str) -> Location:
        """``URL_PREFIX/ID``; a store without ``url_prefix`` has URLs, not ids."""
        validate_image_id(image_id)
        if self.prefix is None:
            raise InvalidLocation("this http store has no url_prefix: give a URL, not an id", store=self.name)
        return Location(self.prefix.scheme, self.prefix.host, (*self.prefix.path[:-1], image_id), self.name)

    def owns(self, location: Location) -> bool:
        """Any http(s) URL, or those under ``url_prefix``."""
        if location.scheme not in ("http", "https"):
            return False
        if self.prefix is None:
            return True
        base = self.prefix.path[:-1]
        return (location.scheme, location.host) == (self.prefix.scheme, self.prefix.host) \
            and location.path[:len(base)] == base and len(location.path) > len(base)

    # -- data --------------------------------------------------------------------
    def _url(self, location: Location) -> str:
        if not self.owns(location):
            raise InvalidLocation(f"{location} is not under this http store's url_prefix", store=self.name)
        return url_of(location)

    async def _head(self, url: str, image: str) -> tuple[int | None, dict[str, str]]:
        session = await self.fs.set_session()
        async with session.head(self.fs.encode_url(url), headers={"Accept-Encoding": "identity"},
                                **self.request_options()) as resp:
            if resp.status in (405, 501):  # no HEAD: ask fsspec (it falls back to GET)
                return None, {}
            if resp.status >= 300:
                raise _status_error(resp.status, url, self.name, image)
            headers = {k.lower(): v for k, v in resp.headers.items()}
        encoded = headers.get("content-encoding", "identity") not in ("identity", "")
        length = headers.get("content-length", "")
        return (int(length) if length.isdigit() and not encoded else None), headers

    def stat(self, location: Location) -> Stored:
        """HEAD: the size, metadata headers and ETag/Last-Modified as the version."""
        url = self._url(location)
        size, headers = self.run(self._head(url, location.image), location.image)
        if size is None:
            try:
                info = self.run(self.fs._info(url), location.image)
            except FileNotFoundError:
                raise NotFound(f"no image at {url}", store=self.name, image=location.image) from None
            size = info.get("size")
        if size is None:
            raise Unsupported(f"the server gives no size for {url}", store=self.name, image=location.image)
        meta: dict[str, str] = {}
        if self.metadata_prefix:
            plen = len(self.metadata_prefix)
            meta = {k[plen:]: v for k, v in headers.items() if k.startswith(self.metadata_prefix) and len(k) > plen}
        tag = headers.get("etag") or headers.get("last-modified")
        return Stored(int(size), meta, f"{tag}:{size}" if tag else None)

    def open_reader(self, location: Location, offset: int, length: int) -> _HttpReader:
        """One GET from ``offset`` (with Range when enabled)."""
        return _HttpReader(self, self._url(location), offset, length, location.image)

    def open_writer(self, image_id: str, size: int | None) -> Any:
        raise Unsupported("an http store is read-only", store=self.name, image=image_id)

    def delete(self, location: Location) -> DeleteOutcome:
        raise Unsupported("an http store is read-only", store=self.name, image=location.image)

    def locate(self, location: Location, ttl: float | None = None) -> DirectAccess:
        """The URL itself: the consumer can fetch it."""
        return DirectAccess(kind="url", url=self._url(location))


class HttpsDriver(HttpDriver):
    """The same driver registered as ``https``, so that ``https://`` URLs resolve to it by scheme."""

    scheme: ClassVar[str] = "https"
