"""Two rbd stores on pools ``images`` and ``vms`` of one Ceph cluster."""

from __future__ import annotations

import hashlib
import json
import secrets
import subprocess
import tempfile
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from imagestore.location import Location

from .base import STORES, Backend, BackendObject, flipped

__all__ = ["TMP_PREFIX", "RbdBackend", "admin_tool"]

TMP_PREFIX = ".tmp."  # the driver's temporary upload names


def admin_tool(conf: str, *args: str, timeout: float = 120) -> str:
    """Run a Ceph admin tool (``rbd``/``ceph``/``rados``/``radosgw-admin``) with ``conf``; its stdout."""
    tool, *rest = args
    proc = subprocess.run([tool, "-c", conf, *rest], capture_output=True, text=True, timeout=timeout)
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(args)}: {proc.stderr.strip()[-500:]}")
    return proc.stdout


class RbdBackend(Backend):
    """Stores as the least-privilege ``user``; the ``rbd``/``rados`` tools reach the bits with
    the cluster's admin configuration ``conf``. ``clone_v2`` (require-min-compat-client mimic)
    moves a parent with clones to the trash: deletes are deferred."""

    kind = "rbd"
    sweep_wait = 36.0  # a killed client's watch lapses after osd_client_watch_timeout (30 s)
    native_clone_mode = "cow"
    clones_depend_on_source = True

    def __init__(self, conf: str, *, user: str = "imagestore", keyring: str | None = None,
                 pools: Mapping[str, str] | None = None, order: int | None = 20, connect_timeout: float = 20,
                 clone_v2: bool = False, fsid: str | None = None, label: str = "rbd") -> None:
        self.conf = conf
        self.user = user
        self.keyring = keyring
        self.pools = dict(pools or {s: s for s in STORES})
        self.order = order
        self.connect_timeout = connect_timeout
        self.label = label
        self._fsid = fsid
        self.capabilities = {"write": True, "range_read": True, "cow_clone": True, "server_copy": False,
                             "direct_access": True, "presign": False, "atomic_create": True, "unknown_size": True,
                             "deferred_delete": clone_v2, "persistent": True, "adopt": True, "metadata_update": True,
                             "max_object_size": None}
        self._before = set(self._temps())  # a killed writer's temporaries of earlier runs are not ours

    def table(self, store: str) -> dict[str, Any]:
        table: dict[str, Any] = {"driver": "rbd", "conf": self.conf, "pool": self.pools[store], "user": self.user,
                                 "connect_timeout": self.connect_timeout}
        if self.order is not None:
            table["order"] = self.order
        if self.keyring:
            table["keyring"] = self.keyring
        return table

    def admin(self, *args: str) -> str:
        """Run an admin tool (``rbd``/``ceph``/``rados``) against the cluster; its stdout."""
        return admin_tool(self.conf, *args)

    def rbd(self, *args: str) -> Any:
        """``rbd ARGS --format json`` as the cluster's admin; the parsed output."""
        return json.loads(self.admin("rbd", *args, "--format", "json") or "[]")

    @property
    def fsid(self) -> str:
        if self._fsid is None:
            self._fsid = self.admin("ceph", "fsid").strip()
        return self._fsid

    def _temps(self) -> list[str]:
        found = []
        for store in STORES:
            pool = self.pools[store]
            found += [f"{pool}/{n}" for n in self.admin("rbd", "ls", pool).split() if n.startswith(TMP_PREFIX)]
        return found

    def leftovers(self) -> list[str]:
        """Temporaries in both pools that were not there when this backend was made."""
        return [t for t in self._temps() if t not in self._before]

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
                    if name.startswith(TMP_PREFIX) or row["snapshot"] != "snap":
                        found.append(BackendObject(store, "snapshot", f"{name}@{row['snapshot']}"))
                    continue
                kind = "temporary" if name.startswith(TMP_PREFIX) else "image"
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
            watchers = self.admin("rados", "-p", self.pools[obj.store], "listwatchers",
                                  f"rbd_header.{ids[(obj.store, obj.name)]}")
            if watchers.strip():
                held.append(str(obj))
        return held

    def plant_dead_temporary(self, store: str, image_id: str, size: int) -> str:
        name = f"{TMP_PREFIX}{image_id}.{int(time.time()) - 7200}.{secrets.token_hex(4)}"
        self.admin("rbd", "create", "--size", f"{max(1, size >> 20)}M", f"{self.pools[store]}/{name}")
        return name

    def place_native(self, name: str, data: bytes) -> str:
        """Nova's direct snapshot: an image written into the main pool with its own protected
        snapshot ``snap``, referenced as ``rbd://fsid/pool/image/snap``."""
        pool = self.pools[STORES[0]]
        with tempfile.NamedTemporaryFile() as fh:
            fh.write(data)
            fh.flush()
            self.admin("rbd", "import", "--image-format", "2", fh.name, f"{pool}/{name}")
        self.admin("rbd", "snap", "create", f"{pool}/{name}@snap")
        self.admin("rbd", "snap", "protect", f"{pool}/{name}@snap")
        return f"rbd://{self.fsid}/{pool}/{name}/snap"

    def native_state(self, name: str) -> object:
        image = f"{self.pools[STORES[0]]}/{name}"
        with tempfile.TemporaryDirectory() as d:
            out = Path(d) / "export"
            self.admin("rbd", "export", image, str(out))
            digest = hashlib.sha256(out.read_bytes()).hexdigest()
        snaps = json.loads(self.admin("rbd", "snap", "ls", "--format", "json", image))
        protected = [(s["name"], self.admin("rbd", "info", f"{image}@{s['name']}").count("protected: True"))
                     for s in snaps]
        meta = self.admin("rbd", "image-meta", "list", image)
        return digest, [(s["id"], s["name"]) for s in snaps], protected, meta

    def corrupt(self, location: Location, offset: int) -> None:
        """``rados get`` the data object holding ``offset``, flip the byte, ``rados put`` it back
        (no snapshot context: the published snapshot reads the changed object)."""
        pool, name = location.path[0], location.path[1]
        info = self.rbd("info", f"{pool}/{name}")
        obj = f"{info['block_name_prefix']}.{offset // info['object_size']:016x}"
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "object"
            self.admin("rados", "-p", pool, "get", obj, str(path))
            path.write_bytes(flipped(path.read_bytes(), offset % info["object_size"]))
            self.admin("rados", "-p", pool, "put", obj, str(path))

    def secrets(self) -> list[str]:
        """The cephx key of the user: it must never show up in any output."""
        if not self.keyring:
            return []
        text = Path(self.keyring).read_text()
        keys = [line.split("=", 1)[1].strip() for line in text.splitlines() if line.strip().startswith("key")]
        assert keys, "the keyring holds no key"
        return keys

    def describe(self) -> dict[str, Any]:
        return {"kind": self.kind, "cluster": self.label, "pools": self.pools, "user": self.user}

