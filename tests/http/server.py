"""A real HTTP(S) file server for the http driver's tests, started by the tests on a free port.

It serves the files of one directory (a file store's root, so its images are reachable
by URL), with ``Range`` support switchable, the file store's ``user.imagestore.*`` xattrs
as ``X-Imagestore-*`` headers when asked, redirects, optional TLS with a throwaway CA, a
per-chunk delay and a one-shot connection drop, and it logs every request.
"""

from __future__ import annotations

import datetime
import os
import re
import socket
import ssl
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import unquote, urlsplit

META_PREFIX = "x-imagestore-"
_RANGE = re.compile(r"bytes=(\d+)-(\d*)$")


@dataclass
class Served:
    """One request as the server saw it."""

    method: str
    path: str
    range: str | None
    status: int
    sent: int = 0  # body bytes written so far; final once ``done`` is set
    done: threading.Event = field(default_factory=threading.Event, repr=False, compare=False)


@dataclass
class FileServer:
    """Settings and state shared with the handler threads (change them between requests)."""

    root: Path
    ranges: bool = True
    metadata: bool = False
    redirects: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0  # seconds slept per 64 KiB sent
    drop_after: int | None = None  # close the connection once after this many body bytes
    log: list[Served] = field(default_factory=list)
    url: str = ""
    lock: threading.Lock = field(default_factory=threading.Lock)

    def gets(self, path: str | None = None) -> list[Served]:
        return [r for r in self.log if r.method == "GET" and (path is None or r.path == path)]


def _handler(cfg: FileServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, fmt: str, *args: object) -> None:
            pass

        def _record(self, status: int) -> Served:
            entry = Served(self.command, urlsplit(self.path).path, self.headers.get("Range"), status)
            with cfg.lock:
                cfg.log.append(entry)
            self.current = entry
            return entry

        def _fail(self, status: int) -> None:
            self._record(status)
            self.send_response(status)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def do_HEAD(self) -> None:  # noqa: N802
            self._serve(body=False)

        def do_GET(self) -> None:  # noqa: N802
            self._serve(body=True)

        def _serve(self, body: bool) -> None:
            self.current: Served | None = None
            try:
                self._send(body)
            finally:
                if self.current is not None:
                    self.current.done.set()

        def _send(self, body: bool) -> None:
            path = unquote(urlsplit(self.path).path)
            if path in cfg.redirects:
                self._record(302)
                self.send_response(302)
                self.send_header("Location", cfg.redirects[path])
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            parts = [p for p in path.split("/") if p]
            if not parts or any(p.startswith(".") for p in parts):
                self._fail(404)
                return
            file = cfg.root.joinpath(*parts)
            if not file.is_file():
                self._fail(404)
                return
            st = file.stat()
            size = st.st_size
            start, end, status = 0, size, 200
            wanted = self.headers.get("Range")
            if wanted and cfg.ranges:
                m = _RANGE.match(wanted.strip())
                if m is None or int(m.group(1)) >= size:
                    self._fail(416)
                    return
                start = int(m.group(1))
                end = min(size, int(m.group(2)) + 1) if m.group(2) else size
                status = 206
            entry = self._record(status)
            self.send_response(status)
            self.send_header("Content-Length", str(end - start))
            self.send_header("Accept-Ranges", "bytes" if cfg.ranges else "none")
            self.send_header("ETag", f'"{st.st_ino:x}-{st.st_mtime_ns:x}"')
            mtime = datetime.datetime.fromtimestamp(st.st_mtime, datetime.UTC)
            self.send_header("Last-Modified", mtime.strftime("%a, %d %b %Y %H:%M:%S GMT"))
            if status == 206:
                self.send_header("Content-Range", f"bytes {start}-{end - 1}/{size}")
            if cfg.metadata:
                for key in os.listxattr(file):
                    if key.startswith("user.imagestore."):
                        value = os.getxattr(file, key).decode()
                        self.send_header(META_PREFIX + key[len("user.imagestore."):], value)
            self.end_headers()
            if not body:
                return
            with open(file, "rb") as fh:
                fh.seek(start)
                left = end - start
                while left > 0:
                    chunk = fh.read(min(left, 64 << 10))
                    if not chunk:
                        break
                    drop = cfg.drop_after
                    if drop is not None and entry.sent + len(chunk) > drop:
                        cfg.drop_after = None  # once
                        self.wfile.write(chunk[: max(0, drop - entry.sent)])
                        self.wfile.flush()
                        self.connection.shutdown(socket.SHUT_RDWR)
                        self.close_connection = True
                        return
                    try:
                        self.wfile.write(chunk)
                    except (BrokenPipeError, ConnectionResetError):
                        return
                    entry.sent += len(chunk)
                    left -= len(chunk)
                    if cfg.delay:
                        time.sleep(cfg.delay)

    return Handler


def make_tls(directory: Path) -> tuple[ssl.SSLContext, Path]:
    """A server context with a fresh self-signed certificate for 127.0.0.1, and the CA file."""
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "imagestore test server")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                           critical=False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    cert_file, key_file = directory / "cert.pem", directory / "key.pem"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(cert_file, key_file)
    return ctx, cert_file


@contextmanager
def serve(root: Path, *, tls: ssl.SSLContext | None = None, **settings: object) -> Iterator[FileServer]:
    """Run a file server for ``root`` on 127.0.0.1 (a free port) for the ``with`` body."""
    cfg = FileServer(root, **settings)  # type: ignore[arg-type]
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(cfg))
    server.daemon_threads = True
    if tls is not None:
        server.socket = tls.wrap_socket(server.socket, server_side=True)
    port = server.server_address[1]
    cfg.url = f"{'https' if tls else 'http'}://127.0.0.1:{port}"
    thread = threading.Thread(target=server.serve_forever, name="test-http-server", daemon=True)
    thread.start()
    try:
        yield cfg
    finally:
        server.shutdown()
        server.server_close()
        thread.join(10)
