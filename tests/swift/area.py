"""A test's own corner of the session SAIO: fresh containers in account AUTH_test2, store
specs that point at them, what is left in them, and their removal afterwards.

Stores authenticate as ``test2:tester2`` (``.admin`` of AUTH_test2) with the key from
the environment (``IMAGESTORE_TEST_SWIFT_KEY``), and sign TempURLs with one random
key per session (``IMAGESTORE_TEST_SWIFT_TEMPURL_KEY``), which they may set as the
account's Temp-URL key (``set_temp_url_key``), so that every store of the session
agrees with the account.
"""

from __future__ import annotations

import json
import os
import uuid
from typing import Any

import imagestore
from imagestore import Store
from imagestore.testing.backends.swift import remove_container
from tests.services.swift import SwiftSAIO

KEY_ENV = "IMAGESTORE_TEST_SWIFT_KEY"
TEMPURL_ENV = "IMAGESTORE_TEST_SWIFT_TEMPURL_KEY"
MiB = 1 << 20


def tempurl_key(saio: SwiftSAIO) -> str:
    """The Temp-URL key of this SAIO's stores: one per SAIO (kept in its work dir, so a reused
    SAIO keeps the key its account has), exported for subprocesses."""
    path = saio.workdir / "imagestore-test-tempurl-key"
    if not path.exists():
        path.write_text(uuid.uuid4().hex)
    key = os.environ[TEMPURL_ENV] = path.read_text().strip()
    return key


class SwiftArea:
    """Containers ``NAME`` and ``NAME_segments`` per store of one test, removed by :meth:`clean`."""

    def __init__(self, saio: SwiftSAIO, **defaults: Any) -> None:
        self.saio = saio
        os.environ[KEY_ENV] = saio.key2
        self.tempurl_key = tempurl_key(saio)
        self.tag = uuid.uuid4().hex[:8]
        self.defaults = {"segment_size": "1M", "create_window": "1s", "writer_lease": "15s", **defaults}
        self.containers: set[str] = set()
        self.foreign: dict[str, tuple[str, str]] = {}  # container -> (user, key) outside AUTH_test2
        self.stores: list[Store] = []
        self.conn = saio.conn(saio.user2, saio.key2)

    def container(self, role: str = "main") -> str:
        name = f"t-{self.tag}-{role}"
        self.containers.update({name, f"{name}_segments"})
        return name

    def spec(self, role: str = "main", **options: Any) -> dict[str, Any]:
        """A swift store table on container ``role`` (overrides and facade keys in ``options``;
        an option set to None is left out)."""
        table = {"driver": "swift", "auth_url": self.saio.auth_url, "user": self.saio.user2,
                 "key": {"env": KEY_ENV}, "container": self.container(role), "temp_url_key": {"env": TEMPURL_ENV},
                 "set_temp_url_key": True, **self.defaults, **options}
        if table["temp_url_key"] is None and "set_temp_url_key" not in options:
            table["set_temp_url_key"] = None  # no key, nothing to set
        if table["user"] != self.saio.user2:  # another account: cleaned with its own credentials
            for name in (table["container"], f"{table['container']}_segments"):
                self.containers.discard(name)
                self.foreign[name] = (table["user"], os.environ[table["key"]["env"]])
        return {k: v for k, v in table.items() if v is not None}

    def store(self, role: str = "main", name: str | None = None, **options: Any) -> Store:
        store = imagestore.open_store(self.spec(role, **options), name or role)
        self.stores.append(store)
        return store

    # ------------------------------------------------------------ inspection
    def objects(self, container: str) -> list[dict[str, Any]]:
        """The listing of a container (empty if it does not exist)."""
        from swiftclient.exceptions import ClientException

        try:
            return list(self.conn.get_container(container, full_listing=True)[1])
        except ClientException as exc:
            if exc.http_status == 404:
                return []
            raise

    def owned_segments(self) -> set[str]:
        """``container/name`` of every segment a published SLO of these containers lists."""
        owned: set[str] = set()
        for container in sorted(c for c in self.containers if not c.endswith("_segments")):
            for row in self.objects(container):
                headers = self.conn.head_object(container, row["name"])
                if headers.get("x-static-large-object", "").lower() != "true":
                    continue
                body = self.conn.get_object(container, row["name"], query_string="multipart-manifest=get")[1]
                owned.update(entry["name"].lstrip("/") for entry in json.loads(body))
        return owned

    def leftovers(self) -> list[str]:
        """Segments no published image lists, heartbeats and claims (lapsed ones too)."""
        owned = self.owned_segments()
        found = []
        for container in sorted(c for c in self.containers if c.endswith("_segments")):
            found += [f"{container}/{row['name']}" for row in self.objects(container)
                      if f"{container}/{row['name']}" not in owned]
        return found

    # ------------------------------------------------------------ cleanup
    def clean(self) -> None:
        """Close the stores; delete every object and container of the test."""
        for store in self.stores:
            store.close()
        work = [(self.conn, c) for c in sorted(self.containers)]
        others = {creds: self.saio.conn(*creds) for creds in set(self.foreign.values())}
        work += [(others[creds], c) for c, creds in sorted(self.foreign.items())]
        for conn, container in work:
            remove_container(conn, container)
        for conn in (self.conn, *others.values()):
            conn.close()
