"""What each kind of store is measured against: its limits (see ``limits.py``) and its local processes.

A :class:`Backend` wraps one opened store (public API only) and knows, for its
driver, how to run the same-run limits: an ideal add (the backend's own write
path with the same checksums in threads), a raw client upload that hashes
nothing, and a raw read. A driver this module does not know gets
:class:`Backend` itself: the generic scenario runs on it, bounded by the
machine-wide limits. Every limit run leaves one object under a tag so the
matching read limit reads bytes of the same size from the same backend.
"""

from __future__ import annotations

import concurrent.futures
import hashlib
import json
import subprocess
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import imagestore
from imagestore.engine.hashing import INTEGRITY
from imagestore.observe import Observer
from imagestore.testing.backends import base as fixtures
from imagestore.testing.backends.s3 import client_for
from imagestore.testing.backends.swift import connection_for

from . import limits
from .baselines import _Hashers

Fn = Callable[[], Any]


class Backend:
    """A store of any driver: limits are the machine's (hashing, memory copies)."""

    ideal_limit = "ideal_add_generic"
    raw_put_limit: str | None = None
    read_limit: str | None = None
    read_hashed_limit: str | None = None
    has_cold = False

    def __init__(self, name: str, spec: dict[str, Any], *, pids: Callable[[], list[int]] | None = None,
                 pool: bytes = b"", chunk: int = 4 << 20, scratch: Path | None = None) -> None:
        self.name = name
        self.spec = spec
        self.driver = str(spec.get("driver", "?"))
        self.store = fixtures.open_table(spec, name)  # a registered driver name or a Driver class
        self._pids = pids
        self.pool = pool
        self.chunk = chunk
        self.scratch = scratch or Path("/var/tmp")
        self.algorithms = (*self.store.settings.checksums, INTEGRITY)  # what an add computes
        self.strongest = INTEGRITY  # what a verified read checks
        self.kept: dict[str, Any] = {}
        self._observed: imagestore.Store | None | bool = False

    def observed(self) -> imagestore.Store | None:
        """The same store reporting to a fresh Prometheus registry and an OpenTelemetry SDK tracer
        (spans made, then dropped): the instrumented side of the overhead figures; None when
        prometheus_client or opentelemetry-sdk is not installed."""
        if self._observed is False:
            try:
                from opentelemetry.sdk.trace import TracerProvider
                from prometheus_client import CollectorRegistry
            except ImportError:
                self._observed = None
            else:
                observer = Observer(registry=CollectorRegistry(), tracer_provider=TracerProvider())
                self._observed = imagestore.open_store(self.spec, name=self.name, observer=observer)
        return self._observed or None

    def pids(self) -> list[int]:
        return self._pids() if self._pids else []

    # ---------------------------------------------------------------- limits
    def limit_add(self, name: str, src: Path, size: int, tag: str) -> Fn:
        """A callable running limit ``name`` on ``src`` (``size`` bytes), keeping the result under ``tag``."""
        if name == "ideal_add_generic":
            return lambda: limits.hash_parallel(self.algorithms, self.pool, size, self.chunk)
        raise KeyError(name)

    def limit_get(self, name: str, tag: str, size: int) -> Fn:
        raise KeyError(name)

    def drop(self, tag: str) -> None:
        """Remove what the limit run ``tag`` left."""
        self.kept.pop(tag, None)

    def cold(self, info: imagestore.ImageInfo) -> bool:
        """Drop the backend's cache of an image; False when the backend has none to drop."""
        return False

    def close(self) -> None:
        for tag in list(self.kept):
            try:
                self.drop(tag)
            except Exception:  # noqa: BLE001 - cleanup of a limit object: best effort
                pass
        self.store.close()
        if self._observed:
            self._observed.close()


class FileBackend(Backend):
    ideal_limit = "ideal_add_file"
    raw_put_limit = "disk_write_fsync"
    read_limit = "read_warm"
    read_hashed_limit = "read_warm_hashed"
    has_cold = True

    def __init__(self, name: str, spec: dict[str, Any], **kw: Any) -> None:
        super().__init__(name, spec, **kw)
        self.dir = Path(spec["root"]).parent / f"{name}-limits"
        self.dir.mkdir(parents=True, exist_ok=True)

    def limit_add(self, name: str, src: Path, size: int, tag: str) -> Fn:
        dst = self.dir / tag
        self.kept[tag] = dst
        if name == "ideal_add_file":
            return lambda: limits.ideal_add_file(src, dst, self.chunk, self.algorithms)
        if name == "disk_write_fsync":
            return lambda: limits.disk_write_fsync(dst, self.pool, size, self.chunk)
        return super().limit_add(name, src, size, tag)

    def limit_get(self, name: str, tag: str, size: int) -> Fn:
        path = self.kept[tag]
        if name == "read_warm":
            limits.read_warm(path, self.chunk)
            return lambda: limits.read_warm(path, self.chunk)
        if name == "read_cold":
            return lambda: limits.read_cold(path, self.chunk)
        if name == "read_warm_hashed":
            return lambda: limits.read_warm_hashed(path, self.chunk, self.strongest)
        raise KeyError(name)

    def drop(self, tag: str) -> None:
        path = self.kept.pop(tag, None)
        if path is not None:
            Path(path).unlink(missing_ok=True)

    def cold(self, info: imagestore.ImageInfo) -> bool:
        path = self.store.locate(info.location).path
        if path:
            limits.drop_cache(path)
        return bool(path)

    def close(self) -> None:
        super().close()
        for p in self.dir.glob("*"):
            p.unlink(missing_ok=True)
        self.dir.rmdir()


class MemoryBackend(Backend):
    ideal_limit = "ideal_add_memory"
    read_limit = "memory_read"
    read_hashed_limit = "memory_read_hashed"

    def limit_add(self, name: str, src: Path, size: int, tag: str) -> Fn:
        if name == "ideal_add_memory":
            def run() -> None:
                self.kept[tag] = b"".join(limits.ideal_add_memory(src, self.chunk, self.algorithms))
            return run
        return super().limit_add(name, src, size, tag)

    def limit_get(self, name: str, tag: str, size: int) -> Fn:
        blob = self.kept[tag]
        if name == "memory_read":
            return lambda: limits.memory_read(blob, self.chunk)
        if name == "memory_read_hashed":
            return lambda: limits.memory_read(blob, self.chunk, self.strongest)
        raise KeyError(name)


class RbdBackend(Backend):
    ideal_limit = "ideal_add_rbd"
    raw_put_limit = "rbd_import"
    read_limit = "rbd_export"
    read_hashed_limit = "rbd_export_hashed"

    def __init__(self, name: str, spec: dict[str, Any], **kw: Any) -> None:
        super().__init__(name, spec, **kw)
        self.pool_name = spec.get("pool", "images")
        self.order = int(spec.get("order", 23))
        self.inflight = int(spec.get("concurrency", 8))
        self.cli = ["-c", spec["conf"], "--id", spec.get("user", "admin")]
        if spec.get("keyring"):
            self.cli += ["--keyring", spec["keyring"]]
        self._cluster: Any = None

    def cluster(self) -> Any:
        if self._cluster is None:
            from imagestore.drivers.rbd.lib import Cluster  # the hand-written limit's shim, not the measured path

            self._cluster = Cluster(self.spec["conf"], self.spec.get("user", "admin"), self.spec.get("keyring"))
        return self._cluster

    def _aio_write(self, src: Path, size: int, image: str) -> dict[str, str]:
        cluster = self.cluster()
        cluster.create(self.pool_name, image, size, order=self.order)
        hashers = _Hashers(self.algorithms)
        obj = 1 << self.order
        bufs = [bytearray(obj) for _ in range(self.inflight)]
        pending: list[Any] = [None] * self.inflight
        with cluster.open(self.pool_name, image) as img, open(src, "rb", buffering=0) as fh:
            offset, i = 0, 0
            while True:
                slot = i % self.inflight
                if pending[slot] is not None:
                    pending[slot].wait()  # a completion is waited for once: it is released then
                    pending[slot] = None
                buf = bufs[slot]
                n = fh.readinto(buf)
                if not n:
                    break
                hashers.feed(bytes(memoryview(buf)[:n]))
                pending[slot] = img.aio_write(offset, buf, n)
                offset += n
                i += 1
            for comp in pending:
                if comp is not None:
                    comp.wait()
            img.flush()
        return hashers.digests()

    def limit_add(self, name: str, src: Path, size: int, tag: str) -> Fn:
        image = f"bench-limit-{tag}"
        self.kept[tag] = image
        if name == "ideal_add_rbd":
            return lambda: self._aio_write(src, size, image)
        if name == "rbd_import":
            return lambda: self._rbd("import", "--image-format", "2", "--order", str(self.order), "--image-feature",
                                     "layering", "--no-progress", str(src), f"{self.pool_name}/{image}")
        return super().limit_add(name, src, size, tag)

    def _rbd(self, *args: str, stdout: Any = subprocess.DEVNULL) -> None:
        subprocess.run(["rbd", *self.cli, *args], check=True, stdout=stdout, stderr=subprocess.PIPE)

    def _export_hashed(self, image: str) -> str:
        h = _Hashers([self.strongest])
        with subprocess.Popen(["rbd", *self.cli, "export", "--no-progress", f"{self.pool_name}/{image}", "-"],
                              stdout=subprocess.PIPE, stderr=subprocess.DEVNULL) as proc:
            assert proc.stdout is not None
            while data := proc.stdout.read(self.chunk):
                h.feed(data)
        return h.digests()[self.strongest]

    def limit_get(self, name: str, tag: str, size: int) -> Fn:
        image = self.kept[tag]
        if name == "rbd_export":
            return lambda: self._rbd("export", "--no-progress", f"{self.pool_name}/{image}", "-")
        if name == "rbd_export_hashed":
            return lambda: self._export_hashed(image)
        raise KeyError(name)

    def drop(self, tag: str) -> None:
        image = self.kept.pop(tag, None)
        if image is not None:
            self.cluster().remove(self.pool_name, image)

    def close(self) -> None:
        super().close()
        if self._cluster is not None:
            self._cluster.shutdown()


_secret = fixtures.secret_value  # the name peer.py imports


class S3Backend(Backend):
    ideal_limit = "ideal_add_s3"
    raw_put_limit = "boto3_upload"
    read_limit = "boto3_get"
    read_hashed_limit = "boto3_get_hashed"

    def __init__(self, name: str, spec: dict[str, Any], **kw: Any) -> None:
        super().__init__(name, spec, **kw)
        self.bucket = spec["bucket"]
        self.client = client_for(spec, max_pool_connections=32)

    def _ideal(self, src: Path, key: str) -> dict[str, str]:
        reader = limits.HashingReader(src, self.algorithms)
        try:
            self.client.upload_fileobj(reader, self.bucket, key)
        finally:
            digests = reader.close()
        return digests

    def _upload(self, src: Path, key: str) -> None:
        with open(src, "rb") as fh:
            self.client.upload_fileobj(fh, self.bucket, key)

    def limit_add(self, name: str, src: Path, size: int, tag: str) -> Fn:
        key = f"bench-limit/{tag}"
        self.kept[tag] = key
        if name == "ideal_add_s3":
            return lambda: self._ideal(src, key)
        if name == "boto3_upload":
            return lambda: self._upload(src, key)
        return super().limit_add(name, src, size, tag)

    def _get(self, key: str, algorithm: str | None) -> int:
        body = self.client.get_object(Bucket=self.bucket, Key=key)["Body"]
        h = _Hashers([algorithm]) if algorithm else None
        total = 0
        while data := body.read(self.chunk):
            total += len(data)
            if h:
                h.feed(data)
        if h:
            h.digests()
        return total

    def limit_get(self, name: str, tag: str, size: int) -> Fn:
        key = self.kept[tag]
        if name == "boto3_get":
            return lambda: self._get(key, None)
        if name == "boto3_get_hashed":
            return lambda: self._get(key, self.strongest)
        raise KeyError(name)

    def drop(self, tag: str) -> None:
        key = self.kept.pop(tag, None)
        if key is not None:
            self.client.delete_object(Bucket=self.bucket, Key=key)


class SwiftBackend(Backend):
    ideal_limit = "ideal_add_swift"
    raw_put_limit = "swift_slo_upload"
    read_limit = "swift_get"
    read_hashed_limit = "swift_get_hashed"

    def __init__(self, name: str, spec: dict[str, Any], **kw: Any) -> None:
        super().__init__(name, spec, **kw)
        self.container = f"{spec.get('container', 'images')}-bench-limits"
        self.segment = _size(spec.get("segment_size", "32M"))
        self.threads = int(spec.get("concurrency", 4))
        self.auth = {"auth": spec["auth_url"], "user": spec["user"], "key": _secret(spec.get("key")),
                     "auth_version": str(spec.get("auth_version", "1"))}
        self.conn().put_container(self.container)
        self.conn().put_container(self.container + "_segments")

    def conn(self) -> Any:
        return connection_for(self.spec, retries=0, timeout=120)

    def _ideal(self, src: Path, name: str) -> dict[str, str]:
        hashers = _Hashers(self.algorithms)
        conns = [self.conn() for _ in range(self.threads)]
        segs: list[dict[str, Any]] = []
        seg_container = self.container + "_segments"

        def put(i: int, data: bytes) -> dict[str, Any]:
            path = f"{name}/{i:08d}"
            etag = conns[i % self.threads].put_object(seg_container, path, data)
            return {"path": f"/{seg_container}/{path}", "etag": etag, "size_bytes": len(data)}

        with concurrent.futures.ThreadPoolExecutor(self.threads) as pool, open(src, "rb", buffering=0) as fh:
            futures: list[concurrent.futures.Future[dict[str, Any]]] = []
            i = 0
            while data := fh.read(self.segment):
                hashers.feed(data)
                while sum(not f.done() for f in futures) >= self.threads:
                    concurrent.futures.wait(futures, return_when=concurrent.futures.FIRST_COMPLETED)
                futures.append(pool.submit(put, i, data))
                i += 1
            segs = [f.result() for f in futures]
        conns[0].put_object(self.container, name, json.dumps(segs), query_string="multipart-manifest=put")
        for c in conns:
            c.close()
        return hashers.digests()

    def _upload(self, src: Path, name: str) -> None:
        from swiftclient.service import SwiftService, SwiftUploadObject

        opts = {**self.auth, "segment_threads": self.threads, "object_uu_threads": 1}
        with SwiftService(options=opts) as service:
            for r in service.upload(self.container, [SwiftUploadObject(str(src), object_name=name)],
                                    options={"segment_size": self.segment, "use_slo": True,
                                             "segment_container": self.container + "_segments"}):
                if not r["success"]:
                    raise RuntimeError(f"swiftclient upload failed: {r.get('error')}")

    def limit_add(self, name: str, src: Path, size: int, tag: str) -> Fn:
        obj = f"bench-limit-{tag}"
        self.kept[tag] = obj
        if name == "ideal_add_swift":
            return lambda: self._ideal(src, obj)
        if name == "swift_slo_upload":
            return lambda: self._upload(src, obj)
        return super().limit_add(name, src, size, tag)

    def _get(self, obj: str, algorithm: str | None) -> int:
        conn = self.conn()
        _, body = conn.get_object(self.container, obj, resp_chunk_size=self.chunk)
        h = _Hashers([algorithm]) if algorithm else None
        total = 0
        for data in body:
            total += len(data)
            if h:
                h.feed(data)
        if h:
            h.digests()
        conn.close()
        return total

    def limit_get(self, name: str, tag: str, size: int) -> Fn:
        obj = self.kept[tag]
        if name == "swift_get":
            return lambda: self._get(obj, None)
        if name == "swift_get_hashed":
            return lambda: self._get(obj, self.strongest)
        raise KeyError(name)

    def drop(self, tag: str) -> None:
        obj = self.kept.pop(tag, None)
        if obj is not None:
            conn = self.conn()
            conn.delete_object(self.container, obj, query_string="multipart-manifest=delete")
            conn.close()


def _size(value: Any) -> int:
    from .figures import parse_size

    return value if isinstance(value, int) else parse_size(str(value))


KINDS: dict[str, type[Backend]] = {"file": FileBackend, "memory": MemoryBackend, "rbd": RbdBackend,
                                   "s3": S3Backend, "swift": SwiftBackend}


def backend_for(name: str, spec: dict[str, Any], **kw: Any) -> Backend:
    """The Backend for a store spec: its driver's kind, else the generic one."""
    return KINDS.get(str(spec.get("driver")), Backend)(name, spec, **kw)


def sha(data: Iterable[bytes]) -> str:
    h = hashlib.sha512()
    for d in data:
        h.update(d)
    return h.hexdigest()
