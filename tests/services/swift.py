"""A real OpenStack Swift all-in-one (SAIO) for the session, made by scripts/swift-start.sh.

``swift_saio`` is one SAIO for the whole session (started on the first test that asks
for it, on free ports, stopped at the end): v1 tempauth with three users, the
``slo``, ``dlo``, ``tempurl`` (sha256/sha512), ``copy``, ``bulk`` and
``container_quotas`` middlewares, and a short proxy ``node_timeout`` (3 s) so that
fault tests that pause the object server get their 503 quickly.

``swift_saio_factory(...)`` starts more SAIOs with other settings, for example small
constraints to test segment-size growth::

    saio = swift_saio_factory(constraints={"max_file_size": 1 << 20}, max_manifest_segments=3)
    ...
    swift_saio_factory.stop(saio)          # or leave it to the end of the session

Set ``IMAGESTORE_SWIFT_DIR`` to the DIR of a SAIO already started by swift-start.sh to
use it as ``swift_saio`` (it is then not stopped).

Loopback traffic must not go through an HTTP proxy: starting or reusing a SAIO adds
``127.0.0.1,localhost`` to ``NO_PROXY``/``no_proxy`` of the test process.
"""

from __future__ import annotations

import json
import os
import shlex
import signal
import subprocess
import tempfile
import urllib.request
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from .ports import free_ports
from .require import unavailable

SCRIPTS = Path(__file__).resolve().parents[2] / "scripts"
SESSION_NODE_TIMEOUT = 3.0
_NO_PROXY = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def read_env(workdir: Path) -> dict[str, str]:
    """The ``export NAME=VALUE`` lines of ``workdir/env`` written by swift-start.sh."""
    env: dict[str, str] = {}
    for line in (workdir / "env").read_text().splitlines():
        words = shlex.split(line)
        if len(words) == 2 and words[0] == "export" and "=" in words[1]:
            name, _, value = words[1].partition("=")
            env[name] = value
    return env


def _start_time(pid: int) -> str | None:
    """Start time of a live, non-zombie process (clock ticks after boot), else None."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return None if fields[0] in ("Z", "X") else fields[19]


@dataclass(frozen=True)
class SwiftSAIO:
    """A running SAIO: where it is, how to log in, and a few fault-injection helpers.

    ``auth_url`` is the v1 (tempauth) endpoint: ``GET`` it with ``X-Auth-User`` and
    ``X-Auth-Key`` to get ``X-Auth-Token`` and ``X-Storage-Url``.
    """

    workdir: Path
    version: str
    auth_url: str
    user: str  # test:tester, .admin of account AUTH_test
    key: str
    storage_url: str
    user2: str  # test2:tester2, .admin of a second account, AUTH_test2
    key2: str
    storage_url2: str
    nonadmin_user: str  # test:tester3: in AUTH_test, but no role (ACLs only)
    nonadmin_key: str
    proxy_port: int
    object_port: int
    container_port: int
    account_port: int
    memcached_port: int
    node_timeout: float  # proxy -> storage servers, seconds
    constraints: Mapping[str, str]  # the [swift-constraints] set for this SAIO (not the defaults)
    max_manifest_segments: int
    max_manifest_size: int

    @classmethod
    def from_dir(cls, workdir: str | os.PathLike[str]) -> SwiftSAIO:
        """The SAIO described by ``workdir/env``."""
        d = Path(workdir)
        e = read_env(d)
        return cls(
            workdir=d, version=e["SWIFT_VERSION"], auth_url=e["ST_AUTH"], user=e["ST_USER"], key=e["ST_KEY"],
            storage_url=e["SWIFT_STORAGE_URL"], user2=e["SWIFT_USER2"], key2=e["SWIFT_KEY2"],
            storage_url2=e["SWIFT_STORAGE_URL2"], nonadmin_user=e["SWIFT_NONADMIN_USER"],
            nonadmin_key=e["SWIFT_NONADMIN_KEY"], proxy_port=int(e["SWIFT_PROXY_PORT"]),
            object_port=int(e["SWIFT_OBJECT_PORT"]), container_port=int(e["SWIFT_CONTAINER_PORT"]),
            account_port=int(e["SWIFT_ACCOUNT_PORT"]), memcached_port=int(e["SWIFT_MEMCACHED_PORT"]),
            node_timeout=float(e["SWIFT_NODE_TIMEOUT"]),
            constraints=dict(c.split("=", 1) for c in e["SWIFT_CONSTRAINTS"].split()),
            max_manifest_segments=int(e["SWIFT_MAX_MANIFEST_SEGMENTS"]),
            max_manifest_size=int(e["SWIFT_MAX_MANIFEST_SIZE"]),
        )

    @property
    def proxy_url(self) -> str:
        return f"http://127.0.0.1:{self.proxy_port}"

    # ------------------------------------------------------------ processes
    def pid(self, name: str) -> int:
        """PID of ``memcached``, ``account``, ``container``, ``object`` or ``proxy``, checked to
        be the process swift-start.sh started (same start time and name), so it is safe to signal."""
        pid_s, start, comm = (self.workdir / "pids" / name).read_text().split()
        pid = int(pid_s)
        if _start_time(pid) != start or Path(f"/proc/{pid}/comm").read_text().strip() != comm:
            raise RuntimeError(f"the Swift {name} server (pid {pid}) of {self.workdir} is not running")
        return pid

    def pause_object_server(self) -> None:
        """SIGSTOP the object server: the proxy answers 503 after ``node_timeout``."""
        os.kill(self.pid("object"), signal.SIGSTOP)

    def resume_object_server(self) -> None:
        os.kill(self.pid("object"), signal.SIGCONT)

    @contextmanager
    def object_server_paused(self) -> Iterator[None]:
        """The object server stopped for the ``with`` block, and resumed whatever happens."""
        self.pause_object_server()
        try:
            yield
        finally:
            self.resume_object_server()

    # ------------------------------------------------------------ clients
    def auth(self, user: str | None = None, key: str | None = None) -> tuple[str, str]:
        """(storage URL, token) from v1 auth, with urllib only; default user ``test:tester``."""
        req = urllib.request.Request(self.auth_url, headers={"X-Auth-User": user or self.user,
                                                             "X-Auth-Key": key or self.key})
        with _NO_PROXY.open(req, timeout=30) as resp:
            return resp.headers["X-Storage-Url"], resp.headers["X-Auth-Token"]

    def info(self) -> dict[str, Any]:
        """The proxy's ``/info`` (capabilities and limits)."""
        with _NO_PROXY.open(self.proxy_url + "/info", timeout=30) as resp:
            info: dict[str, Any] = json.load(resp)
            return info

    def conn(self, user: str | None = None, key: str | None = None, **options: Any) -> Any:
        """A python-swiftclient ``Connection`` (v1 auth, no retries unless asked)."""
        try:
            from swiftclient.client import Connection
        except ImportError as exc:
            unavailable("python-swiftclient", f"{exc} (pip install python-swiftclient)")
        options.setdefault("retries", 0)
        options.setdefault("timeout", 60)
        return Connection(authurl=self.auth_url, user=user or self.user, key=key or self.key,
                          auth_version="1", **options)

    def admin_conn(self, **options: Any) -> Any:
        """A python-swiftclient ``Connection`` as ``test:tester`` (.admin of AUTH_test)."""
        return self.conn(self.user, self.key, **options)


def _bypass_http_proxies() -> None:
    """requests (under swiftclient) honours *_proxy: never send loopback traffic through one."""
    for var in ("NO_PROXY", "no_proxy"):
        have = [h for h in os.environ.get(var, "").split(",") if h]
        os.environ[var] = ",".join(have + [h for h in ("127.0.0.1", "localhost") if h not in have])


class SwiftSAIOFactory:
    """Starts SAIOs with swift-start.sh on free ports in short /tmp dirs; stops the ones it started."""

    def __init__(self) -> None:
        self.owned: list[Path] = []

    def __call__(self, *, node_timeout: float = 10.0, constraints: Mapping[str, int | str] | None = None,
                 max_manifest_segments: int = 1000, max_manifest_size: int = 8 << 20) -> SwiftSAIO:
        """A new SAIO. ``constraints`` go to its ``[swift-constraints]`` (``max_file_size``,
        ``max_meta_count``, ...); the SLO limits to its ``[filter:slo]``."""
        _bypass_http_proxies()
        out = ""
        for _attempt in range(3):  # a free port can be taken by someone else before Swift binds it
            d = Path(tempfile.mkdtemp(prefix="swift-", dir="/tmp"))
            self.owned.append(d)
            ports = free_ports(5)
            env = {**os.environ,
                   **dict(zip(("SWIFT_PROXY_PORT", "SWIFT_OBJECT_PORT", "SWIFT_CONTAINER_PORT",
                               "SWIFT_ACCOUNT_PORT", "SWIFT_MEMCACHED_PORT"), map(str, ports), strict=True)),
                   "SWIFT_NODE_TIMEOUT": str(node_timeout),
                   "SWIFT_CONSTRAINTS": " ".join(f"{k}={v}" for k, v in (constraints or {}).items()),
                   "SWIFT_MAX_MANIFEST_SEGMENTS": str(max_manifest_segments),
                   "SWIFT_MAX_MANIFEST_SIZE": str(max_manifest_size)}
            try:
                proc = subprocess.run(["bash", str(SCRIPTS / "swift-start.sh"), str(d)], env=env, text=True,
                                      stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=900)
                out, ok = proc.stdout, proc.returncode == 0
            except subprocess.TimeoutExpired as exc:
                out, ok = f"swift-start.sh timed out after 900 s\n{exc.output or ''}", False
            if ok:
                return SwiftSAIO.from_dir(d)
            self.stop_dir(d)
            if "in use" not in out:
                break
        unavailable("the Swift SAIO", f"scripts/swift-start.sh failed:\n{out[-4000:]}")
        raise AssertionError("unreachable")

    def stop_dir(self, d: Path) -> None:
        subprocess.run(["bash", str(SCRIPTS / "swift-stop.sh"), str(d)], capture_output=True, timeout=120)
        if d.is_dir() and not any(d.iterdir()):  # swift-start.sh refused it before writing anything
            d.rmdir()
        if d in self.owned:
            self.owned.remove(d)

    def stop(self, saio: SwiftSAIO) -> None:
        """Stop a SAIO this factory started (before the end of the session)."""
        if saio.workdir in self.owned:
            self.stop_dir(saio.workdir)

    def stop_all(self) -> None:
        for d in list(self.owned):
            self.stop_dir(d)


@pytest.fixture(scope="session")
def swift_saio_factory() -> Iterator[SwiftSAIOFactory]:
    """Start extra SAIOs with their own settings; all are stopped at the end of the session."""
    factory = SwiftSAIOFactory()
    try:
        yield factory
    finally:
        factory.stop_all()


@pytest.fixture(scope="session")
def swift_saio(swift_saio_factory: SwiftSAIOFactory) -> SwiftSAIO:
    """The session's Swift SAIO (node_timeout 3 s, Swift's default constraints)."""
    reuse = os.environ.get("IMAGESTORE_SWIFT_DIR")
    if reuse:
        _bypass_http_proxies()
        try:
            saio = SwiftSAIO.from_dir(reuse)
            saio.pid("proxy")
        except (OSError, KeyError, ValueError, RuntimeError) as exc:
            unavailable("the Swift SAIO", f"IMAGESTORE_SWIFT_DIR={reuse} is not a running swift-start.sh DIR: {exc}")
        return saio
    return swift_saio_factory(node_timeout=SESSION_NODE_TIMEOUT)
