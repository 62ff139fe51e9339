"""One entry per backend kind: how to open its two stores and what a crash can leave in it.

The crash sweeps and the load runs are written against :class:`Backend` only, so
a new backend joins them by adding a subclass to :data:`BACKENDS`. Every store
pair is ``images`` and ``vms``: two stores a native clone can go between (two
roots of one filesystem, two pools of one cluster, two buckets of one endpoint).

A backend lists, for a run's id prefix, every object it holds of that run
(:meth:`Backend.objects`), so the invariant "after sweep, nothing but visible
images" is checked against the backend itself, not against what imagestore says.
"""

from __future__ import annotations

import fcntl
import json
import os
import secrets
import subprocess
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import imagestore
from imagestore import NotFound, Store

__all__ = ["BACKENDS", "Backend", "BackendObject", "FileBackend", "RbdBackend", "S3Backend", "SwiftBackend"]

STORES = ("images", "vms")


@dataclass(frozen=True)
class BackendObject:
    """Something of a run found in the backend: which store, its kind and its name there.

    ``kind`` is ``image`` (a published name), ``temporary`` (a writer's temporary),
    ``snapshot`` (an extra snapshot of a published image), ``deferred`` (a trashed
    image that clones still need) or ``trash`` (a trashed image nothing needs).
    """

    store: str
    kind: str
    name: str

    def __str__(self) -> str:
        return f"{self.store}:{self.kind}:{self.name}"


class Backend(ABC):
    """A backend the hardening tools run on; subclasses are the entries of :data:`BACKENDS`."""

    kind: ClassVar[str]
    sweep_wait: ClassVar[float] = 11.0
    """Seconds after a writer died before ``sweep`` may take its temporary (its lock or
    watch lapses; every driver also waits 10 s for a temporary to be locked)."""
    image_size: ClassVar[int] = (3 << 20) + 517
    """Image size of the crash sweeps: odd, and over one backend object (part, segment)."""

    @abstractmethod
    def table(self, store: str) -> dict[str, Any]:
        """The store table (driver and options) of store ``images`` or ``vms``."""

    def open(self, store: str = "images", **settings: Any) -> Store:
        """A freshly opened store (close it when done)."""
        return imagestore.open_store({**self.table(store), **settings}, store)

    @abstractmethod
    def objects(self, prefix: str) -> list[BackendObject]:
        """Every object of the run (names containing ``prefix``) the backend holds, listed with
        the backend's own tools, published or not."""

    @abstractmethod
    def plant_dead_temporary(self, store: str, image_id: str, size: int) -> str:
        """Leave what a writer killed long ago leaves (an unlocked, old temporary); its name."""

    def held(self, prefix: str) -> list[str] | None:
        """What of the run a (dead) client still holds, or is too young for sweep to take: once
        this is empty, one sweep must leave nothing. None: the backend cannot tell."""
        return None

    def describe(self) -> dict[str, Any]:
        """Where the backend is (for reports; no secret)."""
        return {"kind": self.kind}


# ---------------------------------------------------------------------- file
class FileBackend(Backend):
    """Two file stores, ``BASE/images`` and ``BASE/vms``, on one filesystem."""

    kind = "file"

    def __init__(self, base: str | os.PathLike[str]) -> None:
        self.base = Path(base)

    def root(self, store: str) -> Path:
        return self.base / store

    def table(self, store: str) -> dict[str, Any]:
        return {"driver": "file", "root": str(self.root(store))}

    def objects(self, prefix: str) -> list[BackendObject]:
        found = []
        for store in STORES:
            root = self.root(store)
            if not root.is_dir():
                continue
            for entry in sorted(os.listdir(root)):
                if prefix in entry:
                    found.append(BackendObject(store, "image", entry))
            tmp = root / ".tmp"
            if tmp.is_dir():
                found += [BackendObject(store, "temporary", e) for e in sorted(os.listdir(tmp)) if prefix in e]
        return found

    def held(self, prefix: str) -> list[str] | None:
        """Temporaries whose writer's flock is still held, or younger than the driver's 10 s."""
        found = []
        for obj in self.objects(prefix):
            if obj.kind != "temporary":
                continue
            path = self.root(obj.store) / ".tmp" / obj.name
            try:
                fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
            except FileNotFoundError:
                continue
            try:
                young = time.time() - os.fstat(fd).st_mtime < 10.0
                fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
            except BlockingIOError:
                young = True
            finally:
                os.close(fd)
            if young:
                found.append(str(obj))
        return found

    def plant_dead_temporary(self, store: str, image_id: str, size: int) -> str:
        tmp = self.root(store) / ".tmp"
        tmp.mkdir(mode=0o700, exist_ok=True)
        name = f"{image_id}.{os.getpid()}.{secrets.token_hex(6)}"
        path = tmp / name
        path.write_bytes(os.urandom(min(size, 1 << 20)))
        old = time.time() - 7200
        os.utime(path, (old, old))
        return name

    def describe(self) -> dict[str, Any]:
        return {"kind": self.kind, "base": str(self.base)}


# ---------------------------------------------------------------------- rbd
class RbdBackend(Backend):
    """Two rbd stores on pools ``images`` and ``vms`` of one cluster, as the least-privilege
    user; listing uses the ``rbd`` tool with the cluster's admin configuration."""

    kind = "rbd"
    sweep_wait = 36.0  # a killed client's watch lapses after osd_client_watch_timeout (30 s)

    def __init__(self, conf: str, *, user: str = "imagestore", keyring: str | None = None,
                 pools: Mapping[str, str] | None = None, order: int = 20, label: str = "rbd") -> None:
        self.conf = conf
        self.user = user
        self.keyring = keyring
        self.pools = dict(pools or {s: s for s in STORES})
        self.order = order
        self.label = label

    def table(self, store: str) -> dict[str, Any]:
        table: dict[str, Any] = {"driver": "rbd", "conf": self.conf, "pool": self.pools[store], "user": self.user,
                                 "order": self.order, "connect_timeout": 20}
        if self.keyring:
            table["keyring"] = self.keyring
        return table

    def rbd(self, *args: str) -> Any:
        """``rbd ARGS --format json`` as the cluster's admin; the parsed output."""
        proc = subprocess.run(["rbd", "-c", self.conf, *args, "--format", "json"], capture_output=True, text=True,
                              timeout=120)
        if proc.returncode != 0:
            raise RuntimeError(f"rbd {' '.join(args)}: {proc.stderr.strip()[-300:]}")
        return json.loads(proc.stdout or "[]")

    def _listing(self, prefix: str) -> tuple[list[BackendObject], dict[tuple[str, str], str]]:
        """The run's objects, trash entries as ``trash``, and ``(store, name) -> image id``."""
        found, ids = [], {}
        for store in STORES:
            pool = self.pools[store]
            for row in self.rbd("ls", "-l", pool):
                name = row["image"]
                if prefix not in name:
                    continue
                if "snapshot" in row:
                    if name.startswith(".tmp.") or row["snapshot"] != "snap":
                        found.append(BackendObject(store, "snapshot", f"{name}@{row['snapshot']}"))
                    continue
                kind = "temporary" if name.startswith(".tmp.") else "image"
                found.append(BackendObject(store, kind, name))
                ids[(store, name)] = row["id"]
            for row in self.rbd("trash", "ls", "--all", pool):  # every source, not only user deletes
                if prefix in row["name"]:
                    found.append(BackendObject(store, "trash", row["name"]))
                    ids[(store, row["name"])] = row["id"]
        return found, ids

    def objects(self, prefix: str) -> list[BackendObject]:
        """A trashed image is ``deferred`` while a clone (visible, temporary or trashed) needs it,
        else ``trash``: something a sweep should have purged."""
        found, ids = self._listing(prefix)
        needed = set()
        for obj in found:
            if obj.kind == "snapshot":
                continue
            pool, image_id = self.pools[obj.store], ids[(obj.store, obj.name)]
            parent = self.rbd("info", "-p", pool, "--image-id", image_id).get("parent")
            if parent:
                needed.add(parent["id"])
        return [BackendObject(o.store, "deferred", o.name)
                if o.kind == "trash" and ids[(o.store, o.name)] in needed else o for o in found]

    def held(self, prefix: str) -> list[str] | None:
        """Temporaries and trashed images a client still watches, and temporaries younger than
        the driver's ``min_temp_age`` (10 s)."""
        found, ids = self._listing(prefix)
        held = []
        for obj in found:
            if obj.kind not in ("temporary", "trash"):
                continue
            if obj.kind == "temporary" and time.time() - int(obj.name.rsplit(".", 2)[1]) < 10:
                held.append(str(obj))
                continue
            proc = subprocess.run(["rados", "-c", self.conf, "-p", self.pools[obj.store], "listwatchers",
                                   f"rbd_header.{ids[(obj.store, obj.name)]}"], capture_output=True, text=True,
                                  timeout=120)
            if proc.stdout.strip():
                held.append(str(obj))
        return held

    def plant_dead_temporary(self, store: str, image_id: str, size: int) -> str:
        name = f".tmp.{image_id}.{int(time.time()) - 7200}.{secrets.token_hex(4)}"
        pool = self.pools[store]
        proc = subprocess.run(["rbd", "-c", self.conf, "create", "--size", f"{max(1, size >> 20)}M",
                               f"{pool}/{name}"], capture_output=True, text=True, timeout=120)
        if proc.returncode != 0:
            raise RuntimeError(f"rbd create {pool}/{name}: {proc.stderr.strip()[-300:]}")
        return name

    def describe(self) -> dict[str, Any]:
        return {"kind": self.kind, "cluster": self.label, "pools": self.pools, "user": self.user}


# ---------------------------------------------------------------------- s3
class S3Backend(Backend):
    """Two s3 stores on buckets ``BASE-images`` and ``BASE-vms`` of one endpoint (made if
    missing). The keys reach the stores through environment variables, as in a deployment."""

    kind = "s3"
    image_size = (7 << 20) + 517  # over part_size: a multipart upload, not one PutObject
    heartbeat = 1.0
    timeouts = (2.0, 10.0)

    def __init__(self, endpoint: str, access_key: str, secret_key: str, *, base: str, region: str = "us-east-1",
                 label: str = "s3") -> None:
        self.endpoint = endpoint
        self.region = region
        self.base = base
        self.label = label
        self.env = (f"IMAGESTORE_HARDENING_{label.upper()}_ACCESS", f"IMAGESTORE_HARDENING_{label.upper()}_SECRET")
        os.environ[self.env[0]], os.environ[self.env[1]] = access_key, secret_key
        self.buckets = {store: f"{base}-{store}" for store in STORES}
        client = self.client()
        try:
            for bucket in self.buckets.values():
                try:
                    client.create_bucket(Bucket=bucket)
                except Exception as exc:  # noqa: BLE001 - an existing bucket of ours is fine
                    if "BucketAlready" not in type(exc).__name__ and "BucketAlready" not in str(exc):
                        raise
        finally:
            client.close()

    @property
    def sweep_wait(self) -> float:  # type: ignore[override]
        """A dead writer's lease is stale after two heartbeats plus the connect and read timeouts."""
        return 2 * self.heartbeat + sum(self.timeouts) + 1.0

    def client(self) -> Any:
        import boto3
        from botocore.config import Config

        return boto3.client("s3", endpoint_url=self.endpoint, region_name=self.region,
                            aws_access_key_id=os.environ[self.env[0]], aws_secret_access_key=os.environ[self.env[1]],
                            config=Config(signature_version="s3v4", s3={"addressing_style": "path"},
                                          request_checksum_calculation="when_required",
                                          response_checksum_validation="when_required"))

    def table(self, store: str) -> dict[str, Any]:
        return {"driver": "s3", "endpoint": self.endpoint, "region": self.region, "bucket": self.buckets[store],
                "access_key": {"env": self.env[0]}, "secret_key": {"env": self.env[1]}, "part_size": "5M",
                "heartbeat": self.heartbeat, "connect_timeout": self.timeouts[0], "read_timeout": self.timeouts[1]}

    def objects(self, prefix: str) -> list[BackendObject]:
        client = self.client()
        try:
            return self._objects(client, prefix)
        finally:
            client.close()

    def _objects(self, client: Any, prefix: str) -> list[BackendObject]:
        found = []
        for store, bucket in self.buckets.items():
            for page in client.get_paginator("list_multipart_uploads").paginate(Bucket=bucket):
                found += [BackendObject(store, "temporary", f"upload {u['Key']}") for u in page.get("Uploads", [])
                          if prefix in u["Key"]]
            keys = [o["Key"] for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket)
                    for o in page.get("Contents", []) if prefix in o["Key"]]
            named = set()
            for key in keys:
                if key.startswith(".imagestore/"):
                    continue
                found.append(BackendObject(store, "image", key))
                head = client.head_object(Bucket=bucket, Key=key)
                if head["Metadata"].get("imagestore") == "record":
                    doc = json.loads(client.get_object(Bucket=bucket, Key=key)["Body"].read())
                    named.add(f".imagestore/data/{key}/{doc['token']}")
            found += [BackendObject(store, "temporary", k) for k in keys
                      if k.startswith(".imagestore/") and k not in named]
        return found

    def plant_dead_temporary(self, store: str, image_id: str, size: int) -> str:
        client = self.client()
        key = f".imagestore/data/{image_id}/{int(time.time()) - 7200}-{secrets.token_hex(8)}"
        try:
            up = client.create_multipart_upload(Bucket=self.buckets[store], Key=key)
            client.upload_part(Bucket=self.buckets[store], Key=key, UploadId=up["UploadId"], PartNumber=1,
                               Body=os.urandom(min(size, 1 << 20)))
        finally:
            client.close()
        return key

    def describe(self) -> dict[str, Any]:
        return {"kind": self.kind, "server": self.label, "buckets": self.buckets}


# ---------------------------------------------------------------------- swift
class SwiftBackend(Backend):
    """Two swift stores on containers ``BASE-images`` and ``BASE-vms`` (and their ``_segments``)
    of one account; 1 MiB segments, so the run's images are SLOs of several segments."""

    kind = "swift"
    lease = 6.0
    sweep_wait = lease + 2.0

    def __init__(self, auth_url: str, user: str, key: str, *, base: str, label: str = "swift") -> None:
        self.auth_url = auth_url
        self.user = user
        self.base = base
        self.label = label
        self.env = f"IMAGESTORE_HARDENING_{label.upper()}_KEY"
        os.environ[self.env] = key
        self.containers = {store: f"{base}-{store}" for store in STORES}

    def conn(self) -> Any:
        from swiftclient.client import Connection

        return Connection(authurl=self.auth_url, user=self.user, key=os.environ[self.env], auth_version="1",
                          retries=2, timeout=30)

    def table(self, store: str) -> dict[str, Any]:
        return {"driver": "swift", "auth_url": self.auth_url, "user": self.user, "key": {"env": self.env},
                "container": self.containers[store], "segment_size": "1M", "create_window": "1s",
                "writer_lease": f"{self.lease:g}s"}

    def _listing(self, conn: Any, container: str) -> list[dict[str, Any]]:
        from swiftclient.exceptions import ClientException

        try:
            return list(conn.get_container(container, full_listing=True)[1])
        except ClientException as exc:
            if exc.http_status == 404:
                return []
            raise

    def objects(self, prefix: str) -> list[BackendObject]:
        conn = self.conn()
        try:
            return self._objects(conn, prefix)
        finally:
            conn.close()

    def _objects(self, conn: Any, prefix: str) -> list[BackendObject]:
        found = []
        owned: set[str] = set()
        for store, container in self.containers.items():
            for row in self._listing(conn, container):
                if prefix not in row["name"]:
                    continue
                found.append(BackendObject(store, "image", row["name"]))
                headers = conn.head_object(container, row["name"])
                if headers.get("x-static-large-object", "").lower() == "true":
                    body = conn.get_object(container, row["name"], query_string="multipart-manifest=get")[1]
                    owned.update(entry["name"].lstrip("/") for entry in json.loads(body))
        for store, container in self.containers.items():
            segments = f"{container}_segments"
            found += [BackendObject(store, "temporary", f"{segments}/{row['name']}")
                      for row in self._listing(conn, segments)
                      if prefix in row["name"] and f"{segments}/{row['name']}" not in owned]
        return found

    def plant_dead_temporary(self, store: str, image_id: str, size: int) -> str:
        conn = self.conn()
        segments = f"{self.containers[store]}_segments"
        token = f"{int(time.time()) - 7200:08x}-{secrets.token_hex(8)}"  # the driver's writer-token form
        name = f"{image_id}/{token}/00000000"
        try:
            conn.put_container(segments)
            conn.put_object(segments, name, os.urandom(min(size, 1 << 20)))
        finally:
            conn.close()
        return name

    def describe(self) -> dict[str, Any]:
        return {"kind": self.kind, "server": self.label, "containers": self.containers}


def visible(backend: Backend, stores: Mapping[str, Store], prefix: str) -> dict[tuple[str, str], Any]:
    """``(store, id) -> ImageInfo`` of every published image of the run that ``stat`` finds."""
    out: dict[tuple[str, str], Any] = {}
    for obj in backend.objects(prefix):
        if obj.kind != "image":
            continue
        try:
            out[(obj.store, obj.name)] = stores[obj.store].stat(obj.name)
        except NotFound:
            continue
    return out


BACKENDS: dict[str, Callable[..., Backend]] = {"file": FileBackend, "rbd": RbdBackend, "s3": S3Backend,
                                               "swift": SwiftBackend}
"""Backend kind -> its entry: a new backend joins the crash sweeps, fault runs and load runs
by adding its class here."""
