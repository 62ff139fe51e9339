"""Glance end to end: upload and download through one real Glance, imagestore vs glance_store drivers.

One Glance (scripts/glance-start.sh, the Glance venv of glance-venv.sh) gets
two backends per backend kind: ``is-file:imagestore`` (an imagestore file store)
next to ``gs-file:file`` (glance_store's filesystem driver), and with Ceph
``is-rbd:imagestore`` next to ``gs-rbd:rbd`` on the same pool. The same image
is PUT (Content-Length, 1 MiB writes) and GET through each, interleaved.
"""

from __future__ import annotations

import http.client
import json
import os
import subprocess
import uuid
from pathlib import Path
from typing import Any

from ..backends import Backend
from .peer import overlay
from ..runner import Contender, Fn, Run
from ..env.checkout import SCRIPTS, script
from ..env.services import free_ports

IDENTITY = {"X-Identity-Status": "Confirmed", "X-Roles": "admin,member,reader",
            "X-Project-Id": "imagestore-bench", "X-User-Id": "imagestore-bench"}
BLOCK = 1 << 20


class Glance:
    """A Glance started in ``dir`` and stopped by :meth:`stop`."""

    def __init__(self, run: Run, backends: dict[str, str], sections: dict[str, dict[str, Any]]) -> None:
        proc = subprocess.run(["bash", str(script("glance-venv.sh", "--glance"))], capture_output=True, text=True,
                              timeout=1800)
        if proc.returncode != 0:
            raise RuntimeError(f"glance-venv.sh failed: {proc.stderr[-800:]}")
        venv = proc.stdout.strip().splitlines()[-1]
        self.dir = run.workdir / "glance"
        self.dir.mkdir()
        (self.dir / "backends.conf").write_text("".join(
            f"[{n}]\n" + "".join(f"{k} = {v}\n" for k, v in o.items()) + "\n" for n, o in sections.items()))
        self.port = free_ports(1)[0]
        env = {**os.environ, "GLANCE_PORT": str(self.port), "GLANCE_VENV": venv,
               "GLANCE_BACKENDS": ",".join(f"{k}:{v}" for k, v in backends.items()),
               "GLANCE_DEFAULT_BACKEND": next(iter(backends)), "PYTHONPATH": str(overlay(run))}
        self.started = False
        p = subprocess.run(["bash", str(SCRIPTS / "glance-start.sh"), str(self.dir)], env=env, capture_output=True,
                           text=True, timeout=600)
        self.started = True
        if p.returncode != 0:
            self.stop()
            raise RuntimeError(f"glance-start.sh exited {p.returncode}: {(p.stderr or p.stdout)[-1500:]}")

    def log_tail(self, lines: int = 6) -> str:
        """The last lines of Glance's log that name an error (why a backend is disabled, say)."""
        log = self.dir / "log" / "glance-api.log"
        if not log.exists():
            return ""
        text = log.read_text(errors="replace").splitlines()
        bad = [ln for ln in text if "imagestore_" in ln or "BadStoreConfiguration" in ln]
        bad = bad or [ln for ln in text if "ERROR" in ln and "os_brick" not in ln]
        return " | ".join(bad[-lines:])[-1500:]

    def pids(self) -> list[int]:
        from ..env.services import pids_in

        return pids_in(self.dir)

    def request(self, method: str, path: str, body: Any = None, headers: dict[str, str] | None = None,
                sink: bool = False) -> tuple[int, bytes]:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=600, blocksize=BLOCK)
        try:
            conn.request(method, path, body=body, headers={**IDENTITY, **(headers or {})})
            resp = conn.getresponse()
            if sink:
                n = 0
                while data := resp.read(BLOCK):
                    n += len(data)
                return resp.status, str(n).encode()
            return resp.status, resp.read()
        finally:
            conn.close()

    def upload(self, src: Path, size: int, backend: str) -> str:
        status, body = self.request("POST", "/v2/images", json.dumps(
            {"disk_format": "raw", "container_format": "bare", "name": f"bench-{uuid.uuid4().hex[:6]}"}).encode(),
            {"Content-Type": "application/json"})
        if status != 201:
            raise RuntimeError(f"create image: HTTP {status} {body[:300]!r}")
        image = json.loads(body)["id"]
        with open(src, "rb") as fh:
            status, body = self.request("PUT", f"/v2/images/{image}/file", fh, {
                "Content-Type": "application/octet-stream", "Content-Length": str(size),
                "X-Image-Meta-Store": backend})
        if status != 204:
            raise RuntimeError(f"upload to {backend}: HTTP {status} {body[:200]!r}; log: {self.log_tail()}")
        return str(image)

    def download(self, image: str, size: int) -> None:
        status, body = self.request("GET", f"/v2/images/{image}/file", sink=True)
        if status != 200 or int(body) != size:
            raise RuntimeError(f"download: HTTP {status}, {body!r} bytes of {size}")

    def delete(self, image: str) -> None:
        self.request("DELETE", f"/v2/images/{image}")

    def stop(self) -> None:
        if self.started:
            subprocess.run(["bash", str(SCRIPTS / "glance-stop.sh"), str(self.dir)], capture_output=True, timeout=120)
            self.started = False


def run_glance(run: Run, backends: list[Backend], sizes: list[int]) -> None:
    """Upload and download of every size through both drivers of each backend kind."""
    by_driver = {b.driver: b for b in backends}
    toml = run.workdir / "glance-imagestore.toml"
    stores: list[str] = []
    enabled: dict[str, str] = {}
    sections: dict[str, dict[str, Any]] = {}
    root = Path(by_driver["file"].spec["root"]).parent if "file" in by_driver else run.workdir
    stores.append(f'[stores.isfile]\ndriver = "file"\nroot = "{root / "glance-isfile"}"\n')
    enabled |= {"is-file": "imagestore", "gs-file": "file"}
    sections["is-file"] = {"imagestore_config": toml, "imagestore_store": "isfile"}
    sections["gs-file"] = {"filesystem_store_datadir": root / "glance-gsfile"}
    rbd = by_driver.get("rbd")
    if rbd is not None:
        s = rbd.spec
        stores.append(f'[stores.isrbd]\ndriver = "rbd"\nconf = "{s["conf"]}"\nuser = "{s["user"]}"\n'
                      f'keyring = "{s["keyring"]}"\npool = "{s["pool"]}"\n')
        enabled |= {"is-rbd": "imagestore", "gs-rbd": "rbd"}
        sections["is-rbd"] = {"imagestore_config": toml, "imagestore_store": "isrbd"}
        sections["gs-rbd"] = {"rbd_store_pool": s["pool"], "rbd_store_user": s["user"],
                              "rbd_store_ceph_conf": s["conf"]}
    toml.write_text('default = "isfile"\n\n' + "\n".join(stores))
    try:
        glance = Glance(run, enabled, sections)
    except Exception as exc:  # no Glance here: said once
        run.skip("glance", "-", f"Glance cannot start: {type(exc).__name__}: {str(exc)[-800:]}")
        return
    try:
        for kind in ("file", "rbd"):
            if f"is-{kind}" not in enabled:
                continue
            def pids(k: str = kind) -> list[int]:
                return glance.pids() + (by_driver[k].pids() if k in by_driver else [])
            for size in sizes:
                try:
                    _figure(run, glance, kind, size, pids)
                except Exception as exc:
                    run.failed = True
                    run.skip("glance", f"glance:{kind}", f"{type(exc).__name__}: {exc}")
    finally:
        glance.stop()


def _figure(run: Run, glance: Glance, kind: str, size: int, pids: Any) -> None:
    src = run.source(size)
    kept: dict[str, str] = {}
    extra = {"via": "Glance 33 API, one gunicorn worker", "note": "backend CPU includes Glance's processes"}

    def up(backend: str) -> Any:
        def prepare(r: int) -> tuple[Fn, Fn | None]:
            out: dict[str, str] = {}

            def cleanup() -> None:
                if backend not in kept:
                    kept[backend] = out["id"]
                else:
                    glance.delete(out["id"])
            return (lambda: out.__setitem__("id", glance.upload(src, size, backend))), cleanup
        return prepare

    store = f"glance:{kind}"
    run.compare(store, f"glance_store:{kind}", size, [
        Contender("glance_upload_glance_store", up(f"gs-{kind}"), size, is_limit=True, scenario="glance",
                  extra=extra),
        Contender("glance_upload", up(f"is-{kind}"), size, limit="glance_upload_glance_store", scenario="glance",
                  extra=extra)], pids=pids)
    try:
        if len(kept) < 2:
            raise RuntimeError("an upload failed: no download figure")
        run.compare(store, f"glance_store:{kind}", size, [
            Contender("glance_download_glance_store", lambda r: ((lambda: glance.download(kept[f"gs-{kind}"], size)),
                                                                 None), size, is_limit=True, scenario="glance",
                      extra=extra),
            Contender("glance_download", lambda r: ((lambda: glance.download(kept[f"is-{kind}"], size)), None), size,
                      limit="glance_download_glance_store", scenario="glance", extra=extra)], pids=pids)
    finally:
        for image in kept.values():
            glance.delete(image)
