"""Metrics and spans on real backends (file, rbd, s3 on moto, swift): after a scripted sequence
(add, verified get, an add over the size cap, clone, deletes, a retried stat, a resumed read,
a corrupted read) the registry and the spans say exactly what happened, and no label or
attribute carries an image id, a location, a query or a secret."""

from __future__ import annotations

import io
import os
from typing import Any

import pytest

from imagestore import Stores
from imagestore.errors import ChecksumMismatch, ImageTooLarge
from imagestore.testing.backends import Backend
from imagestore.testing.chaos import Chaos, Corrupt, Fault, Raise

from .conftest import Watched, rbd_backend

SIZE = (1 << 20) + 4097  # over one swift segment; odd
CAP = 4 << 20
KINDS = ("file", "rbd", "s3-moto", "swift")
_FIXTURES = {"file": "file_backend", "s3-moto": "moto_backend", "swift": "swift_backend"}


@pytest.fixture(params=KINDS)
def backend(request: pytest.FixtureRequest) -> Backend:
    kind: str = request.param
    if kind == "rbd":
        return rbd_backend(request.getfixturevalue("ceph_v2"))
    return request.getfixturevalue(_FIXTURES[kind])  # type: ignore[no-any-return]


def _descendants(spans: list[Any], root: Any) -> list[Any]:
    """The spans below ``root`` (children, their children...)."""
    ids, found, grew = {root.context.span_id}, [], True
    while grew:
        grew = False
        for s in spans:
            if s.parent is not None and s.parent.span_id in ids and s.context.span_id not in ids:
                ids.add(s.context.span_id)
                found.append(s)
                grew = True
    return found


def _secrets(table: dict[str, Any]) -> list[str]:
    """The secret values a store table points at (keys from the environment)."""
    return [os.environ[v["env"]] for v in table.values() if isinstance(v, dict) and "env" in v]


def test_the_registry_and_the_spans_say_exactly_what_happened(backend: Backend, prefix: str,
                                                              watched: Watched) -> None:
    table = {**backend.table("images"), "max_image_size": CAP, "retry_backoff": 0}
    stores = Stores({"stores": {"images": table}}, observer=watched.observer)
    store = stores["images"]
    image, copy, big = f"{prefix}-img", f"{prefix}-copy", f"{prefix}-big"
    data = os.urandom(SIZE)
    try:
        info = store.add(image, io.BytesIO(data), SIZE)
        assert store.get(info.location, verify=True) == data
        with pytest.raises(ImageTooLarge):
            store.add(big, io.BytesIO(b""), CAP + 1)
        cloned = store.clone(image, name=copy)
        chaos = Chaos([Fault("stat", Raise.transient(), calls={1}), Fault("read", Raise.transient(), calls={1})])
        with chaos.attached(store):
            assert store.stat(image).size == SIZE  # one facade retry
            assert store.get(image) == data  # the open's stat is call 2; the 1st read breaks: one resume
        with Chaos([Fault("read", Corrupt(), calls={1})]).attached(store), pytest.raises(ChecksumMismatch):
            store.get(image)
        store.delete(copy)
        store.delete(image)
    finally:
        store.close()

    labels = {"store": "images", "driver": table["driver"]}
    v = watched.value
    clone_op = f"clone_{cloned.mode}"
    assert v("imagestore_operations_total", **labels, operation="add", outcome="ok") == 1
    assert v("imagestore_operations_total", **labels, operation="add", outcome="ImageTooLarge") == 1
    assert v("imagestore_operations_total", **labels, operation="get", outcome="ok") == 2
    assert v("imagestore_operations_total", **labels, operation="get", outcome="ChecksumMismatch") == 1
    assert v("imagestore_operations_total", **labels, operation="stat", outcome="ok") == 1
    assert v("imagestore_operations_total", **labels, operation=clone_op, outcome="ok") == 1
    assert v("imagestore_operations_total", **labels, operation="delete", outcome="ok") == 2
    assert sum(s.value for s in watched.samples("imagestore_operations_total")) == 9
    assert v("imagestore_operation_seconds_count", **labels, operation="add", outcome="ok") == 1
    assert v("imagestore_operation_seconds_count", **labels, operation="get", outcome="ok") == 2
    assert v("imagestore_operation_bytes_total", **labels, operation="add") == SIZE
    assert v("imagestore_operation_bytes_total", **labels, operation="get") == 2 * SIZE
    assert v("imagestore_retries_total", **labels, operation="stat", site="facade") == 1
    assert v("imagestore_retries_total", **labels, operation="get", site="read-resume") == 1
    assert sum(s.value for s in watched.samples("imagestore_retries_total")) == 2
    assert v("imagestore_verification_failures_total", **labels, operation="get") == 1
    assert all(s.value == 0 for s in watched.samples("imagestore_operations_in_flight"))

    adds = watched.spans("imagestore.add")
    assert sorted(s.attributes["imagestore.outcome"] for s in adds) == ["ImageTooLarge", "ok"]
    ok = next(s for s in adds if s.attributes["imagestore.outcome"] == "ok")
    assert ok.attributes["imagestore.size"] == SIZE
    assert ok.attributes["imagestore.driver"] == table["driver"]
    children = {s.name for s in watched.spans() if s.parent is not None and s.parent.span_id == ok.context.span_id}
    assert children == {"imagestore.add.open_writer", "imagestore.add.write", "imagestore.add.block_table",
                        "imagestore.add.commit"}
    (table_span,) = [s for s in watched.spans("imagestore.add.block_table") if s.parent.span_id == ok.context.span_id]
    of_table = {s.context.span_id for s in _descendants(watched.spans(), table_span)}
    under_add = [s for s in _descendants(watched.spans(), ok) if s.context.span_id not in of_table]
    parts = sorted((s.attributes["imagestore.part"], s.attributes["imagestore.size"], s.attributes["imagestore.outcome"])
                   for s in under_add if s.name == "imagestore.add.part")
    if table["driver"] == "file":
        assert parts == []  # one stream into one file: no parts
    else:  # every part of the upload, in order, sizes adding up to the image
        assert [p[0] for p in parts] == list(range(len(parts))) and parts
        assert sum(p[1] for p in parts) == SIZE and {p[2] for p in parts} == {"ok"}
    claims = sorted(s.name for s in under_add if ".claim" in s.name)
    assert claims == (["imagestore.add.claim", "imagestore.add.claim_confirm"] if table["driver"] == "swift" else [])
    assert len(watched.spans("imagestore.get")) == 3
    assert [s.attributes["imagestore.operation"] for s in watched.spans("imagestore.clone")] == [clone_op]
    assert len(watched.spans("imagestore.delete")) == 2
    retried = [e.attributes["imagestore.site"] for s in watched.spans() for e in s.events]
    assert sorted(retried) == ["facade", "read-resume"]

    forbidden = [image, copy, big, str(info.location), str(cloned.location), "?", *_secrets(table)]
    leaks = [(t, f) for t in watched.texts() for f in forbidden if f in t]
    assert not leaks
