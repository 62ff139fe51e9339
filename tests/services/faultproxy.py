"""A threaded TCP proxy that injects faults into HTTP/1.1 traffic, for imagestore's tests.

Put it in front of any server (moto, radosgw, Swift, ...) and point the client at
``proxy.endpoint``; everything passes through unchanged (the ``Host`` header too, so
SigV4 signatures made for the proxy's address stay valid) until a fault is armed::

    with FaultProxy("127.0.0.1", 7480) as proxy:
        s3 = server.client(endpoint=proxy.endpoint)
        proxy.drop_response(after=65536)   # the next response with a longer body is cut there
        proxy.storm(3)                     # the next 3 requests get a 503 SlowDown from the proxy
        proxy.requests, proxy.connections, proxy.log

It parses just enough HTTP to know where each message ends on a keep-alive
connection: the request line and headers, then a ``Content-Length`` or chunked
body (requests), and for responses also no body (``HEAD``, 1xx, 204, 304) or a body
until the server closes. Interim ``100 Continue`` responses are relayed as they
come, and a request sent with ``Expect: 100-continue`` that gets a final answer
instead carries no body. Pipelined requests are not supported (no client used here
pipelines). A connection whose first bytes are not an HTTP request (TLS, say) is
relayed as raw bytes: no faults, not counted in ``requests``.

Determinism: faults are armed in order and each one applies to the next
``times`` matching messages, in the order the proxy sees them (the request head
for ``storm``/``drop_request``, the final response head for ``drop_response``,
``lose_response`` and ``stall``). Each request takes at most one request fault
and one response fault: the earliest armed one that matches. Counters and
``Request.status`` are updated before the proxy forwards the message, so they are
final once the client has its answer. Body byte counts are wire bytes after the
header block (chunk framing included for chunked bodies).

Drops end both connections, the client's and the server's: ``how="reset"`` with a
TCP RST (the peer sees ECONNRESET; bytes still in flight may be lost with it, so it
gets *at most* the bytes forwarded), ``how="close"`` with a FIN (the peer gets
*exactly* the bytes forwarded, then EOF; a peer that is still sending may get an RST
after that, when the proxy closes a socket with unread bytes).
"""

from __future__ import annotations

import email.utils
import itertools
import select
import socket
import struct
import threading
import traceback
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Any
from urllib.parse import urlsplit

import pytest

__all__ = ["FaultProxy", "FaultProxyFactory", "Request", "fault_proxy"]

_HEAD_LIMIT = 64 * 1024  # larger header blocks are not HTTP as far as the proxy is concerned
_LINE_LIMIT = 8 * 1024  # chunk-size and trailer lines
_BUF = 64 * 1024
_S3_ERRORS = {
    503: ("SlowDown", "Please reduce your request rate."),
    500: ("InternalError", "We encountered an internal error. Please try again."),
}


@dataclass
class Request:
    """One HTTP request seen by the proxy (``FaultProxy.log``)."""

    index: int  #: 1-based order of arrival over all connections (since the last reset_counters)
    connection: int  #: 1-based number of the client connection it came on
    method: str
    target: str  #: the request target as sent, e.g. ``/bucket/key?partNumber=2&uploadId=...``
    headers: dict[str, str]  #: lower-case names; repeated headers joined with ", "
    fault: str | None = None  #: the fault applied to it: storm, drop_request, drop_response, lose_response, stall
    status: int | None = None  #: status of the final response (from the server or the proxy), None if none
    _answered: threading.Event = field(default_factory=threading.Event, repr=False, compare=False)

    @property
    def path(self) -> str:
        return self.target.split("?", 1)[0]

    @property
    def query(self) -> str:
        return self.target.partition("?")[2]


@dataclass
class _Fault:
    kind: str
    remaining: int | None  # None: every matching message until passthrough()
    match: Callable[[Request], bool] | None = None
    after: int | None = None
    how: str = "reset"
    seconds: float = 0.0
    status: int = 503
    body: bytes | None = None
    content_type: str = "application/xml"
    applied: int = 0


class _NotHttp(Exception):
    pass


class _Ended(Exception):
    """The connection ended (peer gone, or the proxy dropped it): stop quietly."""


class _Reader:
    """Buffered reads from one socket: header blocks, lines and byte runs."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.buf = bytearray()

    def _fill(self) -> bool:
        data = self.sock.recv(_BUF)
        if not data:
            return False
        self.buf += data
        return True

    def head(self) -> bytes | None:
        """The next header block (with its CRLFCRLF); None at EOF before any byte of it."""
        while True:
            while self.buf.startswith(b"\r\n"):  # stray CRLFs between messages are allowed
                del self.buf[:2]
            end = self.buf.find(b"\r\n\r\n")
            if end >= 0:
                out = bytes(self.buf[: end + 4])
                del self.buf[: end + 4]
                return out
            if len(self.buf) > _HEAD_LIMIT:
                raise _NotHttp("header block too large")
            if not self._fill():
                if self.buf.strip():
                    raise _Ended("EOF inside a header block")
                return None

    def looks_like_http(self) -> bool:
        """Whether the stream starts like an HTTP request line (``TOKEN SP``), reading only as
        much as needed to tell: a TLS ClientHello or other protocol is known from its first bytes."""
        while True:
            start = bytes(self.buf.lstrip(b"\r\n")[:16])
            space = start.find(b" ")
            token = start if space < 0 else start[:space]
            if token and not (token.isalpha() and token.isupper()):
                return False
            if space > 0:
                return True
            if len(start) >= 16 or not self._fill():
                return False

    def line(self) -> bytes:
        while True:
            end = self.buf.find(b"\n")
            if end >= 0:
                out = bytes(self.buf[: end + 1])
                del self.buf[: end + 1]
                return out
            if len(self.buf) > _LINE_LIMIT:
                raise _Ended("line too long")
            if not self._fill():
                raise _Ended("EOF inside a chunked body")

    def some(self, limit: int) -> bytes:
        """Up to ``limit`` bytes (buffered ones first); b"" at EOF."""
        if not self.buf and not self._fill():
            return b""
        out = bytes(self.buf[:limit])
        del self.buf[:limit]
        return out


def _parse_head(head: bytes) -> tuple[list[str], dict[str, str]]:
    lines = head.decode("latin-1").split("\r\n")
    first = lines[0].split(" ", 2)
    headers: dict[str, str] = {}
    for line in lines[1:]:
        if not line:
            continue
        name, sep, value = line.partition(":")
        if not sep or not name or name != name.strip():
            raise _NotHttp(f"bad header line {line[:80]!r}")
        key = name.lower()
        value = value.strip()
        headers[key] = f"{headers[key]}, {value}" if key in headers else value
    return first, headers


def _framing(headers: dict[str, str], *, request: bool) -> tuple[str, int]:
    """("chunked", 0), ("length", n), ("none", 0) or ("close", 0) for a message with these headers."""
    te = headers.get("transfer-encoding", "")
    if te:
        if te.lower().rsplit(",", 1)[-1].strip() == "chunked":
            return "chunked", 0
        return ("close", 0) if not request else ("none", 0)
    if "content-length" in headers:
        values = {v.strip() for v in headers["content-length"].split(",")}
        if len(values) != 1 or not next(iter(values)).isdigit():
            raise _Ended(f"bad Content-Length {headers['content-length']!r}")
        n = int(values.pop())
        return ("length", n) if n else ("none", 0)
    return ("none", 0) if request else ("close", 0)


def _body(reader: _Reader, kind: str, length: int) -> Iterator[bytes]:
    """The raw bytes of a message body, as they come."""
    if kind == "length":
        left = length
        while left:
            data = reader.some(min(left, _BUF))
            if not data:
                raise _Ended("EOF inside a body")
            left -= len(data)
            yield data
    elif kind == "chunked":
        while True:
            line = reader.line()
            yield line
            try:
                size = int(line.split(b";", 1)[0].strip(), 16)
            except ValueError:
                raise _Ended(f"bad chunk size line {line[:40]!r}") from None
            if size == 0:
                while True:  # trailers, up to the empty line
                    line = reader.line()
                    yield line
                    if line in (b"\r\n", b"\n"):
                        return
            left = size + 2  # the data and its CRLF
            while left:
                data = reader.some(min(left, _BUF))
                if not data:
                    raise _Ended("EOF inside a chunk")
                left -= len(data)
                yield data
    elif kind == "close":
        while data := reader.some(_BUF):
            yield data


class _Conn:
    """One client connection, its upstream connection and the two pumps between them."""

    def __init__(self, proxy: FaultProxy, client: socket.socket, number: int) -> None:
        self.proxy = proxy
        self.client = client
        self.number = number
        self.upstream: socket.socket | None = None
        self.pending: deque[Request] = deque()
        self.ending = False  # the proxy ends this connection: pumps stop without propagating EOF
        self.how = "close"
        self.lock = threading.Lock()
        self.responder: threading.Thread | None = None
        self.raw = False
        self.thread = threading.Thread(target=self._run, name=f"faultproxy-{proxy.port}-c{number}", daemon=True)

    # ---------------------------------------------------------------- ending
    def end(self, how: str, *, force: bool = False) -> None:
        """Make both pumps stop; the sockets are closed by the connection thread (no fd reuse races).

        ``force`` (the proxy closing) also wakes a pump blocked in a send."""
        with self.lock:
            if self.ending and not force:
                return
            self.ending = True
            self.how = how
            socks = [s for s in (self.client, self.upstream) if s is not None]
        for s in socks:
            try:
                if how == "reset":
                    s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                    # SHUT_RD wakes a blocked recv and sends nothing; the close sends the RST
                    s.shutdown(socket.SHUT_RDWR if force else socket.SHUT_RD)
                else:
                    s.shutdown(socket.SHUT_RDWR)  # FIN now
            except OSError:
                pass

    def _close(self) -> None:
        for s in (self.client, self.upstream):
            if s is not None:
                try:
                    s.close()
                except OSError:
                    pass

    # ---------------------------------------------------------------- sending
    def send(self, sock: socket.socket, data: bytes, direction: str) -> None:
        if self.ending:
            raise _Ended("ending")
        try:
            rate = self.proxy._rate(direction)
            if not rate:
                sock.sendall(data)
                return
            view = memoryview(data)
            while view:
                step = max(1, rate // 20)  # 50 ms worth of bytes, then wait
                sock.sendall(view[:step])
                sent = min(step, len(view))
                view = view[sent:]
                if self.proxy._stopped.wait(sent / rate):
                    raise _Ended("proxy closed")
                new = self.proxy._rate(direction)  # switchable mid-message
                if not new:
                    sock.sendall(view)
                    return
                rate = new
        except OSError as exc:
            raise _Ended(str(exc)) from exc

    # ---------------------------------------------------------------- requests
    def _run(self) -> None:
        try:
            self._requests()
        except (_Ended, _NotHttp, OSError):
            self.end("reset")
        except Exception:  # a bug in the proxy: reported by the fixture
            self.proxy._error(traceback.format_exc())
            self.end("reset")
        finally:
            if self.responder is not None:
                self.responder.join(timeout=30)
                if self.responder.is_alive():
                    self.end("reset", force=True)
                    self.responder.join(timeout=5)
            self._close()
            self.proxy._forget(self)

    def _connect_upstream(self) -> None:
        if self.upstream is not None:
            return
        try:
            up = socket.create_connection(self.proxy.target, timeout=10)
        except OSError as exc:
            self.proxy._count("upstream_failures")
            raise _Ended(f"upstream {self.proxy.target}: {exc}") from exc
        up.settimeout(None)
        up.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        with self.lock:
            self.upstream = up
            if self.ending:
                raise _Ended("ending")
        self.responder = threading.Thread(target=self._responses_guarded, daemon=True,
                                          name=f"faultproxy-{self.proxy.port}-c{self.number}-up")
        self.responder.start()

    def _requests(self) -> None:
        reader = _Reader(self.client)
        if not reader.looks_like_http():
            if reader.buf:
                self._raw(bytes(reader.buf))
            return
        first = True
        while True:
            try:
                head = reader.head()
            except _NotHttp:
                if not first:
                    raise
                return self._raw(bytes(reader.buf))
            if head is None or self.ending:
                if not self.ending and self.upstream is not None:
                    try:
                        self.upstream.shutdown(socket.SHUT_WR)  # the client is done: tell the server
                    except OSError:
                        pass
                return
            try:
                (method, target, version), headers = _parse_head(head)
                if not version.startswith("HTTP/1.") or not method.isalpha():
                    raise ValueError(version)
            except (ValueError, _NotHttp):
                if not first:
                    raise _NotHttp("not an HTTP request") from None
                return self._raw(head + bytes(reader.buf))
            first = False
            req = self.proxy._register(self.number, method, target, headers)
            kind, length = _framing(headers, request=True)
            fault = self.proxy._take("request", req, kind, length)
            if fault is not None and fault.kind == "storm":
                return self._storm(req, fault, reader, kind, length)
            self._connect_upstream()
            self.pending.append(req)
            assert self.upstream is not None
            self.send(self.upstream, self.proxy._strip(head), "request")
            expects = kind != "none" and req.headers.get("expect", "").lower() == "100-continue"
            if expects and not reader.buf and not self._body_comes(req):
                continue  # a final answer came instead of 100 Continue: the client sends no body
            budget = fault.after if fault is not None else None
            for data in _body(reader, kind, length):
                if budget is not None and len(data) >= budget:
                    if budget:
                        self.send(self.upstream, data[:budget], "request")
                    raise self._drop(fault)
                if budget is not None:
                    budget -= len(data)
                self.send(self.upstream, data, "request")
            if budget is not None:  # a chunked body shorter than the cut: drop before the response
                raise self._drop(fault)

    def _body_comes(self, req: Request) -> bool:
        """After ``Expect: 100-continue``: False if the server's final response is relayed before
        any body byte arrives (the client then sends none), True when body bytes arrive."""
        poller = select.poll()
        poller.register(self.client, select.POLLIN)
        while not self.ending:
            readable = poller.poll(50)
            if req._answered.is_set():  # set before the client can see the answer: checked first
                return False
            if readable:
                return True
        raise _Ended("ending")

    def _drop(self, fault: _Fault | None) -> _Ended:
        assert fault is not None
        self.end(fault.how)
        return _Ended(fault.kind)

    def _storm(self, req: Request, fault: _Fault, reader: _Reader, kind: str, length: int) -> None:
        """Answer ``req`` without the server, then close the connection cleanly."""
        if req.headers.get("expect", "").lower() != "100-continue":
            for _ in _body(reader, kind, length):  # read the body: unread bytes would turn the close into an RST
                pass
        status = fault.status
        reason = "Slow Down" if status == 503 else HTTPStatus(status).phrase
        body = fault.body
        if body is None:
            code, message = _S3_ERRORS.get(status, (reason.replace(" ", ""), reason))
            body = (f'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>{code}</Code><Message>{message}'
                    f"</Message><RequestId>faultproxy-{req.index}</RequestId></Error>").encode()
        head = (f"HTTP/1.1 {status} {reason}\r\n"
                f"Date: {email.utils.formatdate(usegmt=True)}\r\n"
                f"Server: faultproxy\r\n"
                f"x-amz-request-id: faultproxy-{req.index}\r\n"
                f"Content-Type: {fault.content_type}\r\n"
                f"Content-Length: {len(body)}\r\n"
                f"Connection: close\r\n\r\n").encode()
        req.status = status
        self.send(self.client, head if req.method == "HEAD" else head + body, "response")
        with self.lock:
            self.ending = True
            self.how = "close"
        if self.upstream is not None:
            try:
                self.upstream.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        try:
            self.client.shutdown(socket.SHUT_WR)
            self.client.settimeout(5)
            while self.client.recv(_BUF):  # until the client closes its side
                pass
        except OSError:
            pass

    def _raw(self, first: bytes) -> None:
        """Not HTTP: relay bytes both ways, no faults, not counted."""
        self.raw = True
        self._connect_upstream()
        assert self.upstream is not None
        if first:
            self.send(self.upstream, first, "request")
        while data := self.client.recv(_BUF):
            self.send(self.upstream, data, "request")
        try:
            self.upstream.shutdown(socket.SHUT_WR)
        except OSError:
            pass

    # ---------------------------------------------------------------- responses
    def _responses_guarded(self) -> None:
        try:
            if self.raw:
                assert self.upstream is not None
                while data := self.upstream.recv(_BUF):
                    self.send(self.client, data, "response")
                if not self.ending:
                    self.client.shutdown(socket.SHUT_WR)
            else:
                self._responses()
        except (_Ended, _NotHttp, OSError):
            self.end("reset")
        except Exception:
            self.proxy._error(traceback.format_exc())
            self.end("reset")

    def _responses(self) -> None:
        assert self.upstream is not None
        reader = _Reader(self.upstream)
        while True:
            head = reader.head()
            if head is None or self.ending:
                if not self.ending:
                    self.client.shutdown(socket.SHUT_WR)  # the server closed: so does the proxy
                return
            (version, code, *_), headers = _parse_head(head)
            if not version.startswith("HTTP/1.") or not code.isdigit() or len(code) != 3:
                raise _NotHttp(f"bad status line {head[:80]!r}")
            status = int(code)
            if 100 <= status < 200:
                self.send(self.client, head, "response")  # 100 Continue and friends
                if status == 101:
                    while data := reader.some(_BUF):
                        self.send(self.client, data, "response")
                    return
                continue
            req = self.pending.popleft() if self.pending else None  # None: a response nobody asked for
            if (req is not None and req.method == "HEAD") or status in (204, 304):
                kind, length = "none", 0
            else:
                kind, length = _framing(headers, request=False)
            fault = None
            if req is not None:
                req.status = status
                fault = self.proxy._take("response", req, kind, length)
            if fault is not None and fault.kind == "lose_response":
                raise self._drop(fault)
            if fault is not None and fault.kind == "stall" and fault.after is None:
                if self.proxy._stopped.wait(fault.seconds):
                    raise _Ended("proxy closed")
                fault = None
            if req is not None:
                req._answered.set()
            self.send(self.client, head, "response")
            budget = fault.after if fault is not None else None
            for data in _body(reader, kind, length):
                if budget is not None and len(data) >= budget:
                    assert fault is not None
                    if budget:
                        self.send(self.client, data[:budget], "response")
                    if fault.kind == "drop_response":
                        raise self._drop(fault)
                    if self.proxy._stopped.wait(fault.seconds):  # stall at the offset, then go on
                        raise _Ended("proxy closed")
                    data = data[budget:]
                    budget = None
                    if not data:
                        continue
                elif budget is not None:
                    budget -= len(data)
                self.send(self.client, data, "response")
            if kind == "close":
                if not self.ending:
                    self.client.shutdown(socket.SHUT_WR)
                return


class FaultProxy:
    """A TCP proxy on 127.0.0.1 in front of ``target_host:target_port`` with switchable HTTP faults.

    Use as a context manager (or ``start()``/``close()``). ``port``/``endpoint`` are the
    proxy's address. All fault methods can be called at any time from the test thread.
    """

    def __init__(self, target_host: str, target_port: int, *, host: str = "127.0.0.1") -> None:
        self.target = (target_host, int(target_port))
        self._host = host
        self._lock = threading.Lock()
        self._stopped = threading.Event()
        self._faults: list[_Fault] = []
        self._rates: dict[str, int | None] = {"request": None, "response": None}
        self._stripped: set[bytes] = set()  # lower-case names of request headers not forwarded
        self._log: list[Request] = []
        self._conns: set[_Conn] = set()
        self._numbers = itertools.count(1)
        self._counters = {"connections": 0, "upstream_failures": 0}
        self.errors: list[str] = []  #: tracebacks of the proxy's own bugs (the fixture fails on them)
        self._listener = socket.create_server((host, 0))
        self._listener.settimeout(0.1)
        self.port: int = self._listener.getsockname()[1]
        self._acceptor = threading.Thread(target=self._accept, name=f"faultproxy-{self.port}", daemon=True)
        self._started = False

    # ---------------------------------------------------------------- life cycle
    @property
    def endpoint(self) -> str:
        """``http://127.0.0.1:PORT``: where clients should connect."""
        return f"http://{self._host}:{self.port}"

    def start(self) -> FaultProxy:
        if not self._started:
            self._started = True
            self._acceptor.start()
        return self

    def __enter__(self) -> FaultProxy:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Stop accepting, reset every open connection, wait for the threads."""
        if self._stopped.is_set():
            return
        self._stopped.set()
        if self._started:
            self._acceptor.join(timeout=5)
        self._listener.close()
        with self._lock:
            conns = list(self._conns)
        for c in conns:
            c.end("reset", force=True)
        for c in conns:
            c.thread.join(timeout=10)

    def retarget(self, host: str, port: int) -> None:
        """Forward new connections to ``host:port`` and reset the open ones: the service behind
        the proxy went away (or moved), while the proxy keeps counting what clients try."""
        with self._lock:
            self.target = (host, int(port))
            conns = list(self._conns)
        for c in conns:
            c.end("reset", force=True)

    def _accept(self) -> None:
        while not self._stopped.is_set():
            try:
                sock, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            sock.settimeout(None)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            with self._lock:
                self._counters["connections"] += 1
                conn = _Conn(self, sock, next(self._numbers))
                self._conns.add(conn)
            conn.thread.start()

    def _forget(self, conn: _Conn) -> None:
        with self._lock:
            self._conns.discard(conn)

    # ---------------------------------------------------------------- faults
    def passthrough(self) -> None:
        """Disarm every fault, the throttle and header stripping: plain forwarding from now on."""
        with self._lock:
            self._faults.clear()
            self._rates = {"request": None, "response": None}
            self._stripped = set()

    def strip_header(self, name: str) -> None:
        """Remove the header ``name`` from every request from now on (an endpoint that ignores a
        header, e.g. ``If-None-Match``; signed headers then fail on servers that check SigV4)."""
        with self._lock:
            self._stripped = self._stripped | {name.lower().encode()}

    def _strip(self, head: bytes) -> bytes:
        stripped = self._stripped
        if not stripped:
            return head
        lines = head.split(b"\r\n")
        return b"\r\n".join(line for i, line in enumerate(lines)
                             if i == 0 or line.split(b":", 1)[0].strip().lower() not in stripped)

    def _arm(self, fault: _Fault) -> None:
        if fault.remaining is not None and fault.remaining < 1:
            raise ValueError("times must be >= 1 (or None: until passthrough())")
        with self._lock:
            self._faults.append(fault)

    def storm(self, times: int | None = 1, status: int = 503, *, body: bytes | None = None,
              content_type: str = "application/xml", match: Callable[[Request], bool] | None = None) -> None:
        """Answer the next ``times`` requests with ``status`` from the proxy itself, never forwarded.

        A valid HTTP/1.1 response with ``Connection: close``; the body is an S3 error
        document (``SlowDown`` for 503, ``InternalError`` for 500) unless ``body`` is given.
        """
        if not 400 <= status <= 599:
            raise ValueError("a storm answers with an error status (4xx/5xx)")
        self._arm(_Fault("storm", times, match, status=status, body=body, content_type=content_type))

    def drop_request(self, after: int, *, times: int | None = 1, how: str = "reset",
                     match: Callable[[Request], bool] | None = None) -> None:
        """Forward the head and ``after`` bytes of the body of the next request whose body is
        longer than that, then drop the connection (mid-request drop: the server never gets it all).

        A chunked body of unknown length matches too; if it ends before ``after`` bytes, the
        connection is dropped after the whole body, before the response."""
        self._check(after, how)
        self._arm(_Fault("drop_request", times, match, after=after, how=how))

    def drop_response(self, after: int, *, times: int | None = 1, how: str = "reset",
                      match: Callable[[Request], bool] | None = None) -> None:
        """Relay the head and ``after`` bytes of the body of the next response whose body is
        longer than that, then drop the connection (mid-body drop)."""
        self._check(after, how)
        self._arm(_Fault("drop_response", times, match, after=after, how=how))

    def lose_response(self, *, times: int | None = 1, how: str = "reset",
                      match: Callable[[Request], bool] | None = None) -> None:
        """Forward the next request whole, but drop the connection instead of relaying its
        response: the server acted on it, the client never learns the outcome."""
        self._check(0, how)
        self._arm(_Fault("lose_response", times, match, how=how))

    def stall(self, seconds: float, *, after: int | None = None, times: int | None = 1,
              match: Callable[[Request], bool] | None = None) -> None:
        """Hold the next response for ``seconds``: before its head (``after=None``), or after
        ``after`` bytes of its body (only responses with a longer body), then go on."""
        if seconds < 0 or (after is not None and after < 0):
            raise ValueError("seconds and after must be >= 0")
        self._arm(_Fault("stall", times, match, after=after, seconds=seconds))

    def throttle(self, bytes_per_second: int | None, *, direction: str = "both") -> None:
        """Forward at most ``bytes_per_second`` per connection and direction (None: no limit).

        ``direction``: ``"request"`` (client to server), ``"response"`` or ``"both"``."""
        if bytes_per_second is not None and bytes_per_second < 1:
            raise ValueError("bytes_per_second must be >= 1 or None")
        if direction not in ("request", "response", "both"):
            raise ValueError(f"direction {direction!r}")
        with self._lock:
            for d in ("request", "response"):
                if direction in (d, "both"):
                    self._rates[d] = bytes_per_second

    @staticmethod
    def _check(after: int, how: str) -> None:
        if after < 0:
            raise ValueError("after must be >= 0")
        if how not in ("reset", "close"):
            raise ValueError(f"how must be 'reset' or 'close', not {how!r}")

    @property
    def pending_faults(self) -> int:
        """How many fault applications are still armed (unlimited faults count 1)."""
        with self._lock:
            return sum(1 if f.remaining is None else f.remaining for f in self._faults)

    def _rate(self, direction: str) -> int | None:
        return self._rates[direction]

    def _take(self, phase: str, req: Request, kind: str = "none", length: int = 0) -> _Fault | None:
        kinds = ("storm", "drop_request") if phase == "request" else ("drop_response", "lose_response", "stall")
        with self._lock:
            for f in self._faults:
                if f.kind not in kinds:
                    continue
                if f.kind == "drop_request" and kind == "length" and length <= (f.after or 0):
                    continue
                if f.kind == "drop_request" and kind == "none":
                    continue
                too_short = kind == "none" or (kind == "length" and length <= (f.after or 0))
                if f.kind in ("drop_response", "stall") and f.after is not None and too_short:
                    continue
                if f.match is not None and not f.match(req):
                    continue
                f.applied += 1
                if f.remaining is not None:
                    f.remaining -= 1
                    if f.remaining == 0:
                        self._faults.remove(f)
                req.fault = f.kind
                return f
        return None

    # ---------------------------------------------------------------- counters
    def _register(self, conn: int, method: str, target: str, headers: dict[str, str]) -> Request:
        with self._lock:
            req = Request(len(self._log) + 1, conn, method, target, headers)
            self._log.append(req)
            return req

    def _count(self, name: str) -> None:
        with self._lock:
            self._counters[name] += 1

    def _error(self, text: str) -> None:
        with self._lock:
            self.errors.append(text)

    @property
    def connections(self) -> int:
        """Client connections accepted (since the last reset_counters)."""
        with self._lock:
            return self._counters["connections"]

    @property
    def upstream_failures(self) -> int:
        """Connections to the target that failed (the client connection was then reset)."""
        with self._lock:
            return self._counters["upstream_failures"]

    @property
    def requests(self) -> int:
        """HTTP requests seen, forwarded or not (since the last reset_counters)."""
        with self._lock:
            return len(self._log)

    @property
    def log(self) -> list[Request]:
        """A copy of the list of requests seen, in order of arrival."""
        with self._lock:
            return list(self._log)

    def reset_counters(self) -> None:
        """Start counting connections and requests from zero (armed faults stay armed)."""
        with self._lock:
            self._log.clear()
            self._counters = dict.fromkeys(self._counters, 0)


def _target(target: Any, port: int | None) -> tuple[str, int]:
    if port is not None:
        return str(target), int(port)
    if isinstance(target, tuple):
        return str(target[0]), int(target[1])
    if isinstance(target, str):
        parts = urlsplit(target if "//" in target else f"//{target}")
        if parts.hostname and parts.port:
            return parts.hostname, parts.port
    host, tport = getattr(target, "host", None), getattr(target, "port", None)
    if host and tport:
        return str(host), int(tport)
    raise ValueError(f"cannot tell host and port of {target!r}")


@dataclass
class FaultProxyFactory:
    """What the ``fault_proxy`` fixture gives: call it to get a started proxy."""

    made: list[FaultProxy] = field(default_factory=list)

    def __call__(self, target: Any, port: int | None = None) -> FaultProxy:
        """A started proxy in front of ``(host, port)``, ``"http://host:port"`` or any object
        with ``host`` and ``port`` attributes (e.g. an S3 server of tests/services/s3.py)."""
        proxy = FaultProxy(*_target(target, port)).start()
        self.made.append(proxy)
        return proxy


@pytest.fixture
def fault_proxy() -> Iterator[FaultProxyFactory]:
    """Factory of FaultProxy instances for one test; closes them, and fails on a proxy bug."""
    factory = FaultProxyFactory()
    try:
        yield factory
    finally:
        errors: list[str] = []
        for proxy in factory.made:
            proxy.close()
            errors += proxy.errors
        if errors:
            pytest.fail("fault proxy internal error:\n" + "\n".join(errors), pytrace=False)
