"""Two swift stores on containers ``BASE-images`` and ``BASE-vms`` (and their ``_segments``)
of one account."""

from __future__ import annotations

import json
import os
import secrets
import time
from typing import Any

from imagestore.location import Location

from .base import SERVER_LIMIT, STORES, Backend, BackendObject, flipped, secret_value

__all__ = ["SwiftBackend", "connection_for", "remove_container"]


def connection_for(table: dict[str, Any], *, retries: int = 2, timeout: float = 30) -> Any:
    """A swiftclient Connection as a swift store table's user (the caller closes it)."""
    from swiftclient.client import Connection

    return Connection(authurl=table["auth_url"], user=table["user"], key=secret_value(table.get("key")),
                      auth_version=str(table.get("auth_version", "1")), retries=retries, timeout=timeout)


def remove_container(conn: Any, container: str) -> None:
    """Delete every object of ``container`` and the container (one that is gone is fine)."""
    from swiftclient.exceptions import ClientException

    try:
        rows = conn.get_container(container, full_listing=True)[1]
    except ClientException as exc:
        if exc.http_status == 404:
            return
        raise
    for row in rows:
        try:
            conn.delete_object(container, row["name"])
        except ClientException as exc:
            if exc.http_status != 404:
                raise
    try:
        conn.delete_container(container)
    except ClientException as exc:
        if exc.http_status != 404:
            raise


class SwiftBackend(Backend):
    """Stores authenticate with ``user``/``key`` (v1 auth); the key (and the Temp-URL key, when
    given: ``locate()`` then gives TempURLs) reach them through the environment. 1 MiB segments
    by default, so the run's images are SLOs of several segments."""

    kind = "swift"
    native_clone_mode = "server_copy"
    clones_depend_on_source = False

    def __init__(self, auth_url: str, user: str, key: str, *, base: str, temp_url_key: str | None = None,
                 segment_size: str = "1M", lease: float = 6.0, label: str = "swift") -> None:
        self.auth_url = auth_url
        self.user = user
        self.base = base
        self.label = label
        self.segment_size = segment_size
        self.lease = lease
        self.env = f"IMAGESTORE_TESTING_{label.upper()}_KEY"
        self.tempurl_env = f"IMAGESTORE_TESTING_{label.upper()}_TEMPURL_KEY"
        self._secrets = [key]
        os.environ[self.env] = key
        if temp_url_key is not None:
            os.environ[self.tempurl_env] = temp_url_key
            self._secrets.append(temp_url_key)
        self.temp_url_key = temp_url_key
        self.containers = {store: f"{base}-{store}" for store in STORES}
        # the largest SLO follows the server's /info
        self.capabilities = {"write": True, "range_read": True, "cow_clone": False, "server_copy": True,
                             "direct_access": temp_url_key is not None, "presign": temp_url_key is not None,
                             "atomic_create": True, "unknown_size": True, "deferred_delete": False,
                             "persistent": True, "adopt": False, "metadata_update": True,
                             "max_object_size": SERVER_LIMIT}

    @property
    def sweep_wait(self) -> float:  # type: ignore[override]
        """A dead writer's lease lapses, plus two seconds."""
        return self.lease + 2.0

    def conn(self) -> Any:
        """A new swiftclient Connection as the stores' user (the caller closes it)."""
        return connection_for(self.table(STORES[0]))

    def table(self, store: str) -> dict[str, Any]:
        table: dict[str, Any] = {"driver": "swift", "auth_url": self.auth_url, "user": self.user,
                                 "key": {"env": self.env}, "container": self.containers[store],
                                 "segment_size": self.segment_size, "create_window": "1s",
                                 "writer_lease": f"{self.lease:g}s"}
        if self.temp_url_key is not None:
            table.update(temp_url_key={"env": self.tempurl_env}, set_temp_url_key=True)
        return table

    def secrets(self) -> list[str]:
        """The account key and the Temp-URL key: neither may show up in any output."""
        return list(self._secrets)

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
        """Published names are ``image``; segments no published SLO lists (with heartbeats and
        claims) are ``temporary``."""
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

    def leftovers(self) -> list[str]:
        return self.temporaries()

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

    def corrupt(self, location: Location, offset: int) -> None:
        """Flip a byte of the object, or of the SLO segment holding ``offset`` and re-PUT the
        manifest with that segment's new ETag (and the object's metadata): the object replaced."""
        container, name = location.path[0], location.path[1]
        conn = self.conn()
        try:
            headers = conn.head_object(container, name)
            keep = {k: v for k, v in headers.items() if k.startswith("x-object-meta-")}
            keep["content-type"] = headers.get("content-type", "application/octet-stream")
            if headers.get("x-static-large-object", "").lower() != "true":
                body = conn.get_object(container, name)[1]
                conn.put_object(container, name, flipped(body, offset), headers=keep)
                return
            manifest = json.loads(conn.get_object(container, name, query_string="multipart-manifest=get")[1])
            start = 0
            for entry in manifest:
                if start + entry["bytes"] > offset:
                    seg_container, seg_name = entry["name"].lstrip("/").split("/", 1)
                    data = conn.get_object(seg_container, seg_name)[1]
                    entry["hash"] = conn.put_object(seg_container, seg_name, flipped(data, offset - start))
                    break
                start += entry["bytes"]
            body = json.dumps([{"path": e["name"], "etag": e["hash"], "size_bytes": e["bytes"]}
                               for e in manifest]).encode()
            conn.put_object(container, name, body, headers=keep, query_string="multipart-manifest=put")
        finally:
            conn.close()

    def describe(self) -> dict[str, Any]:
        return {"kind": self.kind, "server": self.label, "containers": self.containers}

    def close(self) -> None:
        """Close the stores; delete every object and container of the backend."""
        super().close()
        if not self.containers:
            return
        conn = self.conn()
        try:
            for container in self.containers.values():
                remove_container(conn, container)
                remove_container(conn, f"{container}_segments")
        finally:
            conn.close()
        self.containers = {}
