"""glance_store side by side: the same add and get through glance_store's own driver, same backend, same run.

glance_store (and oslo.config) is imported in the bench's interpreter when it
is importable there (the ``bench-peer`` extra); otherwise it runs in the Glance
virtualenv of scripts/glance-venv.sh (glance-store 5.7.0), as a child
(``peer_child.py``) that takes one command per line, so its adds and gets are
interleaved with imagestore's, repeat by repeat, under the same noise guard.
"""

from __future__ import annotations

import importlib.util
import json
import os
import site
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

from ..backends import Backend, _secret
from ..env.checkout import script
from ..figures import size_label
from ..runner import Contender, Fn, Run

#: modules the Glance venv lacks for glance_store's rbd, s3 and swift drivers, linked from this interpreter
#: (rados/rbd: Debian's python3-rados/python3-rbd, built for CPython 3.11)
OVERLAY_MODULES = ("boto3", "botocore", "s3transfer", "jmespath", "swiftclient")
DEBIAN_BINDINGS = Path("/usr/lib/python3/dist-packages")


def peer_python(run: Run) -> tuple[str, str]:
    """(interpreter with glance_store, why that one)."""
    if importlib.util.find_spec("glance_store") is not None:
        return sys.executable, "glance_store is importable in the bench's interpreter (bench-peer extra)"
    env = {**os.environ, "GLANCE_SKIP_IMAGESTORE": "1"}
    venv_sh = script("glance-venv.sh", "the glance_store side-by-side figures (--part peer) without bench-peer")
    proc = subprocess.run(["bash", str(venv_sh)], capture_output=True, text=True, env=env, timeout=1800)
    if proc.returncode != 0:
        raise RuntimeError(f"glance-venv.sh failed: {proc.stderr[-800:]}")
    venv = proc.stdout.strip().splitlines()[-1]
    return f"{venv}/bin/python", ("glance_store is not importable here (it pulls oslo.config and eventlet into "
                                  "the process); it runs in the Glance venv of scripts/glance-venv.sh")


def overlay(run: Run) -> Path:
    """A directory of links to the client modules (and Debian's rados/rbd bindings) the Glance venv lacks."""
    d = run.workdir / "peer-overlay"
    d.mkdir(exist_ok=True)
    roots = [Path(p) for p in site.getsitepackages()]
    for name in OVERLAY_MODULES:
        for root in roots:
            if (root / name).exists() and not (d / name).exists():
                (d / name).symlink_to(root / name)
    for so in [*DEBIAN_BINDINGS.glob("rados*.so"), *DEBIAN_BINDINGS.glob("rbd*.so")]:
        if not (d / so.name).exists():
            (d / so.name).symlink_to(so)
    return d


def peer_config(b: Backend, run: Run) -> dict[str, Any] | None:
    """glance_store options for the same backend as store ``b``; None when there is no glance_store driver."""
    s = b.spec
    if b.driver == "file":
        root = Path(s["root"]).parent / f"{b.name}-glance-store"
        root.mkdir(parents=True, exist_ok=True)
        return {"kind": "file", "options": {"filesystem_store_datadir": str(root)}, "chunk": run.chunk}
    if b.driver == "rbd":
        return {"kind": "rbd", "chunk": run.chunk,
                "options": {"rbd_store_pool": s.get("pool", "images"), "rbd_store_user": s.get("user", "admin"),
                            "rbd_store_ceph_conf": s["conf"], "rbd_store_chunk_size": 8}}
    if b.driver == "s3":
        host = s.get("endpoint", "")
        client = getattr(b, "client", None)
        if client is not None:  # glance_store's own bucket creation sends a LocationConstraint both servers refuse
            try:
                client.create_bucket(Bucket=s["bucket"] + "-gs")
            except client.exceptions.BucketAlreadyOwnedByYou:
                pass
        return {"kind": "s3", "chunk": run.chunk,
                "options": {"s3_store_host": host, "s3_store_access_key": _secret(s.get("access_key")),
                            "s3_store_secret_key": _secret(s.get("secret_key")), "s3_store_bucket": s["bucket"] + "-gs",
                            "s3_store_create_bucket_on_put": False, "s3_store_bucket_url_format": "path",
                            "s3_store_region_name": s.get("region", "us-east-1")}}
    if b.driver == "swift":
        version = str(s.get("auth_version", "1"))
        if not version.startswith("3"):
            return {"kind": "swift", "unsupported": f"glance_store's swift driver takes only Keystone v3 auth "
                    f"(swift_store_auth_version 3); this Swift store authenticates with v{version} (tempauth)"}
        return {"kind": "swift", "chunk": run.chunk,
                "options": {"swift_store_auth_address": s["auth_url"], "swift_store_user": s["user"],
                            "swift_store_key": _secret(s.get("key")), "swift_store_auth_version": version,
                            "swift_store_container": "glance-peer", "swift_store_create_container_on_put": True,
                            "swift_store_large_object_size": 32, "swift_store_large_object_chunk_size": 32}}
    return None


class Peer:
    """One glance_store child process for one backend."""

    def __init__(self, python: str, cfg: dict[str, Any], pythonpath: Path) -> None:
        env = {**os.environ, "PYTHONPATH": str(pythonpath), "PYTHONWARNINGS": "ignore"}
        self.proc = subprocess.Popen([python, str(Path(__file__).with_name("peer_child.py")), json.dumps(cfg)],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                     text=True, env=env)
        hello = self._read()
        if "error" in hello:
            self.close()
            raise RuntimeError(hello["error"])

    def _read(self) -> dict[str, Any]:
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        if not line:
            err = self.proc.stderr.read() if self.proc.stderr else ""
            raise RuntimeError(f"glance_store child exited: {err[-1500:]}")
        return dict(json.loads(line))

    def call(self, **cmd: Any) -> dict[str, Any]:
        assert self.proc.stdin is not None
        self.proc.stdin.write(json.dumps(cmd) + "\n")
        self.proc.stdin.flush()
        out = self._read()
        if "error" in out:
            raise RuntimeError(f"glance_store {cmd['op']}: {out['error']}")
        return out

    def close(self) -> None:
        if self.proc.poll() is None:
            assert self.proc.stdin is not None
            self.proc.stdin.close()
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def run_peers(run: Run, backends: list[Backend], sizes: list[int]) -> None:
    """For every store with a glance_store driver: add and get through both, interleaved."""
    candidates = [(b, c) for b in backends if (c := peer_config(b, run)) is not None]
    if not candidates:
        return
    try:
        python, why = peer_python(run)
        path = overlay(run)
    except Exception as exc:  # no glance_store anywhere: said once
        run.skip("peer", "-", f"glance_store is not available: {exc}")
        return
    run.log(f"peer: {why}")
    for b, cfg in candidates:
        if "unsupported" in cfg:
            run.skip("peer", b.name, cfg["unsupported"])
            continue
        try:
            peer = Peer(python, cfg, path)
        except Exception as exc:
            run.skip("peer", b.name, f"glance_store {cfg['kind']} driver cannot run: {str(exc)[-600:]}")
            continue
        try:
            for size in sizes:
                _figure(run, b, peer, size, why)
        except Exception as exc:
            run.failed = True
            run.skip("peer", b.name, f"{type(exc).__name__}: {exc}")
        finally:
            peer.close()


def _figure(run: Run, b: Backend, peer: Peer, size: int, why: str) -> None:
    src = run.source(size)
    pid = lambda: [*b.pids(), peer.proc.pid]  # noqa: E731
    extra = {"peer_interpreter": why, "note": "backend CPU includes the glance_store child process"}
    kept: dict[str, Any] = {}

    def gs_add(r: int) -> tuple[Fn, Fn | None]:
        image = str(uuid.uuid4())
        out: dict[str, Any] = {}

        def fn() -> None:
            out.update(peer.call(op="add", id=image, src=str(src), size=size))

        def cleanup() -> None:
            if "gs" not in kept:
                kept["gs"] = out["location"]
            else:
                peer.call(op="delete", location=out["location"])
        return fn, cleanup

    def is_add(r: int) -> tuple[Fn, Fn | None]:
        image = f"bench-peer-{size_label(size)}-{r}-{uuid.uuid4().hex[:6]}"
        out: dict[str, Any] = {}

        def fn() -> None:
            with open(src, "rb") as fh:
                out["info"] = b.store.add(image, fh, size=size)

        def cleanup() -> None:
            if "is" not in kept:
                kept["is"] = out["info"]
            else:
                b.store.delete(out["info"].location)
        return fn, cleanup

    run.compare(b.name, b.driver, size, [
        Contender("glance_store_add", gs_add, size, is_limit=True, scenario="peer", extra=extra),
        Contender("add_known", is_add, size, limit="glance_store_add", scenario="peer", extra=extra)], pids=pid)
    if "gs" not in kept or "is" not in kept:
        raise RuntimeError("no add succeeded on one side: no get figure")
    try:
        def drain(verify: bool) -> int:
            n = 0
            with b.store.open(kept["is"].location, verify=verify) as reader:
                for piece in reader:
                    n += len(piece)
            return n

        run.compare(b.name, b.driver, size, [
            Contender("glance_store_get", lambda r: ((lambda: peer.call(op="get", location=kept["gs"], size=size)),
                                                     None), size, is_limit=True, scenario="peer", extra=extra),
            Contender("get", lambda r: ((lambda: drain(False)), None), size, limit="glance_store_get",
                      scenario="peer", extra=extra),
            Contender("get_verified", lambda r: ((lambda: drain(True)), None), size, limit="glance_store_get",
                      scenario="peer", extra=extra)], pids=pid)
    finally:
        if "gs" in kept:
            peer.call(op="delete", location=kept["gs"])
        if "is" in kept:
            b.store.delete(kept["is"].location)
