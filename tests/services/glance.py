"""A real Glance image API, started by scripts/glance-start.sh, and a small REST client.

``glance_venv`` is the virtualenv of scripts/glance-venv.sh (Glance 33,
glance-store 5.7, gunicorn and this checkout of imagestore). ``glance_factory``
starts Glances with the backends a test module chooses and stops them at the
end of the session; ``glance`` is the session's shared one, with backends
``fast`` and ``slow`` (imagestore file stores), ``ceph`` (an imagestore rbd store
on the ``ceph_v2`` cluster, pool images) and ``legacy`` (glance_store's own
filesystem driver). Requests carry the four identity headers the "trusted"
paste flavor believes (no Keystone).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from .ports import free_port
from .require import unavailable

SCRIPTS = Path(__file__).resolve().parents[2] / "scripts"
IDENTITY = {"X-Identity-Status": "Confirmed", "X-Roles": "admin,member,reader",
            "X-Project-Id": "imagestore-tests", "X-User-Id": "imagestore-tester"}


# ---------------------------------------------------------------- REST client
@dataclass(frozen=True)
class Response:
    """One HTTP answer: status, headers (lower-case names) and the whole body."""

    status: int
    headers: Mapping[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)

    def __str__(self) -> str:
        return f"HTTP {self.status}: {self.body[:2000].decode(errors='replace')}"


class GlanceClient:
    """Glance's image API v2 over urllib, as a trusted admin of one project."""

    def __init__(self, url: str, identity: Mapping[str, str] = IDENTITY) -> None:
        self.url = url.rstrip("/")
        self.identity = dict(identity)

    def request(self, method: str, path: str, body: bytes | Iterable[bytes] | None = None,
                headers: Mapping[str, str] | None = None, timeout: float = 600) -> Response:
        """Send one request; any status comes back as a Response (nothing raised for 4xx/5xx).

        An iterable body without Content-Length goes out with chunked transfer encoding.
        """
        req = urllib.request.Request(self.url + path, data=body, method=method,  # type: ignore[arg-type]
                                     headers={**self.identity, **(headers or {})})
        try:
            with urllib.request.urlopen(req, timeout=timeout) as resp:
                return Response(resp.status, {k.lower(): v for k, v in resp.headers.items()}, resp.read())
        except urllib.error.HTTPError as exc:
            return Response(exc.code, {k.lower(): v for k, v in exc.headers.items()}, exc.read())

    def ok(self, method: str, path: str, *args: Any, expect: int | tuple[int, ...] = (200, 201, 202, 204),
           **kwargs: Any) -> Response:
        """Like :meth:`request`, asserting the status."""
        resp = self.request(method, path, *args, **kwargs)
        wanted = (expect,) if isinstance(expect, int) else expect
        assert resp.status in wanted, f"{method} {path}: {resp}"
        return resp

    def create_image(self, **fields: Any) -> dict[str, Any]:
        """POST /v2/images (raw/bare unless told otherwise); the new image's JSON."""
        body = {"disk_format": "raw", "container_format": "bare", **fields}
        data = self.ok("POST", "/v2/images", json.dumps(body).encode(),
                       {"Content-Type": "application/json"}, expect=201).json()
        assert isinstance(data, dict)
        return data

    def upload(self, image_id: str, data: bytes | Iterable[bytes], *, store: str | None = None) -> Response:
        """PUT the image's data; bytes go with Content-Length, an iterable chunked."""
        headers = {"Content-Type": "application/octet-stream"}
        if store:
            headers["X-Image-Meta-Store"] = store
        return self.request("PUT", f"/v2/images/{image_id}/file", data, headers)

    def stage(self, image_id: str, data: bytes | Iterable[bytes]) -> Response:
        """PUT /v2/images/ID/stage (glance-direct's first step)."""
        return self.request("PUT", f"/v2/images/{image_id}/stage", data,
                            {"Content-Type": "application/octet-stream"})

    def import_image(self, image_id: str, method: str, stores: list[str]) -> Response:
        """POST /v2/images/ID/import with ``method`` (glance-direct, copy-image) into ``stores``."""
        body = json.dumps({"method": {"name": method}, "stores": stores}).encode()
        return self.request("POST", f"/v2/images/{image_id}/import", body, {"Content-Type": "application/json"})

    def image(self, image_id: str) -> dict[str, Any]:
        data = self.ok("GET", f"/v2/images/{image_id}", expect=200).json()
        assert isinstance(data, dict)
        return data

    def download(self, image_id: str, byte_range: str | None = None) -> Response:
        return self.request("GET", f"/v2/images/{image_id}/file",
                            headers={"Range": byte_range} if byte_range else None)

    def wait(self, image_id: str, until: Callable[[dict[str, Any]], bool], what: str,
             timeout: float = 180, fail_on_failed_import: bool = True) -> dict[str, Any]:
        """Poll the image until ``until(image)``; fails naming ``what`` and the last state, and
        at once when an import failed (unless ``fail_on_failed_import`` is False)."""
        deadline = time.monotonic() + timeout
        while True:
            image = self.image(image_id)
            if until(image):
                return image
            failed = image.get("os_glance_failed_import")
            assert not (failed and fail_on_failed_import), f"import into {failed} failed waiting for {what}: {image}"
            assert time.monotonic() < deadline, f"{what} did not happen in {timeout:.0f}s: {image}"
            time.sleep(0.2)

    def delete_image(self, image_id: str) -> Response:
        return self.request("DELETE", f"/v2/images/{image_id}")

    def delete_from_store(self, store: str, image_id: str) -> Response:
        return self.request("DELETE", f"/v2/stores/{store}/{image_id}")


def stores_of(image: Mapping[str, Any]) -> set[str]:
    """The backends an image is in, from its JSON's comma-separated ``stores``."""
    return {s for s in str(image.get("stores") or "").split(",") if s}


# ---------------------------------------------------------------- servers
def toml_table(name: str, values: Mapping[str, Any]) -> str:
    """One ``[name]`` table of strings, ints and bools (all a store table needs)."""
    lines = [f"[{name}]"]
    for key, value in values.items():
        if isinstance(value, bool):
            lines.append(f"{key} = {'true' if value else 'false'}")
        elif isinstance(value, int):
            lines.append(f"{key} = {value}")
        else:
            lines.append(f"{key} = {json.dumps(str(value))}")
    return "\n".join(lines) + "\n"


def ini_sections(sections: Mapping[str, Mapping[str, Any]]) -> str:
    """glance-api.conf sections for the backends."""
    return "".join(f"[{name}]\n" + "".join(f"{k} = {v}\n" for k, v in opts.items()) + "\n"
                   for name, opts in sections.items())


@dataclass
class GlanceServer:
    """One Glance in its own directory; stop/start again keeps its database and images."""

    dir: Path
    venv: str
    backends: dict[str, str]
    sections: dict[str, dict[str, Any]]
    default_backend: str | None = None
    hashing: str = "sha512"
    port: int = 0
    running: bool = field(default=False, init=False)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def client(self) -> GlanceClient:
        return GlanceClient(self.url)

    def log_tail(self, lines: int = 40) -> str:
        log = self.dir / "log" / "glance-api.log"
        if not log.exists():
            return ""
        kept = [ln for ln in log.read_text(errors="replace").splitlines() if "os_brick" not in ln]
        return "\n".join(kept[-lines:])

    def start(self) -> None:
        """Write DIR/backends.conf and run glance-start.sh on a free port (retried if taken meanwhile)."""
        self.dir.mkdir(parents=True, exist_ok=True)
        (self.dir / "backends.conf").write_text(ini_sections(self.sections))
        enabled = ",".join(f"{k}:{v}" for k, v in self.backends.items())
        out = ""
        for _ in range(3):
            self.port = free_port()
            env = {**os.environ, "GLANCE_PORT": str(self.port), "GLANCE_BACKENDS": enabled,
                   "GLANCE_DEFAULT_BACKEND": self.default_backend or next(iter(self.backends)),
                   "GLANCE_HASHING_ALGORITHM": self.hashing, "GLANCE_VENV": self.venv}
            proc = subprocess.run(["bash", str(SCRIPTS / "glance-start.sh"), str(self.dir)], env=env,
                                  stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=600)
            if proc.returncode == 0:
                self.running = True
                return
            out = proc.stdout
            if "is in use" not in out:
                break
        raise RuntimeError(f"glance-start.sh exited {proc.returncode}:\n{out[-4000:]}")

    def stop(self) -> None:
        subprocess.run(["bash", str(SCRIPTS / "glance-stop.sh"), str(self.dir)], capture_output=True, timeout=120)
        self.running = False

    def restart(self, **changes: Any) -> None:
        """Stop, change ``backends``/``sections``/``default_backend``/``hashing``, start again."""
        self.stop()
        for key, value in changes.items():
            setattr(self, key, value)
        self.start()


class GlanceFactory:
    """Starts Glances for the session's test modules; stops all of them (and removes their dirs) at the end."""

    def __init__(self, venv: str) -> None:
        self.venv = venv
        self.base = Path(tempfile.mkdtemp(prefix="glance-", dir="/tmp"))
        self.servers: list[GlanceServer] = []

    def workdir(self, name: str) -> Path:
        path = self.base / name
        path.mkdir(parents=True, exist_ok=True)
        return path

    def start(self, name: str, backends: dict[str, str], sections: dict[str, dict[str, Any]], *,
              default_backend: str | None = None, hashing: str = "sha512") -> GlanceServer:
        server = GlanceServer(self.workdir(name) / "glance", self.venv, backends, sections, default_backend, hashing)
        self.servers.append(server)
        try:
            server.start()
        except (RuntimeError, subprocess.TimeoutExpired) as exc:
            unavailable(f"Glance {name!r}", str(exc))
        return server

    def close(self) -> None:
        for server in self.servers:
            if server.running:
                server.stop()
        shutil.rmtree(self.base, ignore_errors=True)


@pytest.fixture(scope="session")
def glance_venv() -> str:
    """The Glance virtualenv (built once and cached; imagestore reinstalled from this checkout)."""
    try:
        proc = subprocess.run(["bash", str(SCRIPTS / "glance-venv.sh")], capture_output=True, text=True,
                              timeout=1200)
    except subprocess.TimeoutExpired as exc:
        unavailable("the Glance virtualenv", f"glance-venv.sh timed out: {exc}")
    if proc.returncode != 0:
        unavailable("the Glance virtualenv", f"glance-venv.sh exited {proc.returncode}: {proc.stderr[-3000:]}")
    return proc.stdout.strip().splitlines()[-1]


@pytest.fixture(scope="session")
def glance_factory(glance_venv: str) -> Iterator[GlanceFactory]:
    factory = GlanceFactory(glance_venv)
    try:
        yield factory
    finally:
        factory.close()


@dataclass
class SharedGlance:
    """The session's Glance and what the tests need to look behind it."""

    server: GlanceServer
    config: Path
    """The imagestore TOML the backends use (stores fast, slow, ceph and vms)."""
    roots: dict[str, Path]
    """Directories of the file backends: fast, slow (imagestore) and legacy (glance_store)."""
    ceph: Any
    """The CephCluster behind the ``ceph`` backend (pool images) and the ``vms`` store."""

    @property
    def client(self) -> GlanceClient:
        return self.server.client


@pytest.fixture(scope="session")
def glance(glance_factory: GlanceFactory, ceph_v2: Any) -> SharedGlance:
    """Glance with fast:imagestore, slow:imagestore, ceph:imagestore and legacy:file."""
    work = glance_factory.workdir("shared")
    roots = {name: work / name for name in ("fast", "slow", "legacy")}
    config = work / "imagestore.toml"
    config.write_text('default = "fast"\n\n' + "".join([
        toml_table("stores.fast", {"driver": "file", "root": roots["fast"]}),
        toml_table("stores.slow", {"driver": "file", "root": roots["slow"]}),
        toml_table("stores.ceph", ceph_v2.spec("images")),
        toml_table("stores.vms", ceph_v2.spec("vms")),
    ]))
    sections = {
        "fast": {"imagestore_config": config, "imagestore_store": "fast", "store_description": "imagestore files"},
        "slow": {"imagestore_config": config, "imagestore_store": "slow", "weight": 10},
        "ceph": {"imagestore_config": config, "imagestore_store": "ceph"},
        "legacy": {"filesystem_store_datadir": roots["legacy"]},
    }
    backends = {"fast": "imagestore", "slow": "imagestore", "ceph": "imagestore", "legacy": "file"}
    server = glance_factory.start("shared", backends, sections, default_backend="fast")
    return SharedGlance(server, config, roots, ceph_v2)
