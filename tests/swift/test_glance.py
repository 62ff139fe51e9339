"""Images glance_store wrote to Swift read through the store: a DLO (segments ``OBJ-00001``...
beside a zero-byte manifest with ``X-Object-Manifest``) and a plain object, found from
their glance URIs (credentials dropped) by ``Stores.resolve``."""

from __future__ import annotations

import hashlib
from urllib.parse import quote, urlsplit

import imagestore
from imagestore import Location
from imagestore.drivers import CloneRequest
from imagestore.testing.payloads import payload

from .area import MiB, SwiftArea


def write_like_glance_store(area: SwiftArea, container: str, obj: str, data: bytes, chunk: int) -> None:
    """glance_store's Swift add of a large image: numbered segments, then the DLO manifest."""
    area.conn.put_container(container)
    for n, start in enumerate(range(0, len(data), chunk), start=1):
        area.conn.put_object(container, f"{obj}-{n:05d}", contents=data[start:start + chunk])
    area.conn.put_object(container, obj, contents=b"", headers={"X-Object-Manifest": f"{container}/{obj}-"})


def glance_uri(area: SwiftArea, container: str, obj: str) -> str:
    auth = urlsplit(area.saio.auth_url)
    creds = f"{quote(area.saio.user2, safe='')}:{area.saio.key2}"
    return f"swift+http://{creds}@{auth.netloc}{auth.path}/{container}/{obj}"


def test_a_glance_dlo_resolves_and_reads_verified(area: SwiftArea) -> None:
    container = area.container()
    data = payload(5 * MiB + 77, seed=1)
    write_like_glance_store(area, container, "4a7d-glance-image", data, 2 * MiB)  # 3 segments
    stores = imagestore.Stores({"default": "images", "stores": {"images": area.spec()}})
    uri = glance_uri(area, container, "4a7d-glance-image")
    loc = Location.from_glance(uri)
    assert area.saio.key2 not in str(loc)
    store, resolved = stores.resolve(uri)
    assert store.name == "images" and resolved == loc.with_store("images")
    info = store.stat(resolved)
    assert info.size == len(data) and info.checksums == {}  # glance keeps its checksums in its database
    with store.open(resolved, expected={"md5": hashlib.md5(data).hexdigest()}) as reader:
        assert b"".join(reader) == data
    assert store.get(resolved, 2 * MiB - 3, 6, verify=False) == data[2 * MiB - 3:2 * MiB + 3]
    # the facade clones only images whose format it knows; the driver's copy of a DLO (each
    # segment copied in Swift) makes an SLO of the store's own
    copy = store._driver.clone(resolved, store._driver, CloneRequest("4a7d-copy", "server_copy", {}))
    assert area.conn.head_object(container, "4a7d-copy")["x-static-large-object"] == "True"
    with store.open(copy, expected={"md5": hashlib.md5(data).hexdigest()}) as reader:
        assert b"".join(reader) == data
    # deleting it through the store removes the manifest and glance's segments
    store.delete(resolved)
    assert [r["name"] for r in area.objects(container)] == ["4a7d-copy"]
    stores.close()


def test_a_glance_plain_object_and_a_config_reference(area: SwiftArea) -> None:
    container = area.container()
    data = payload(300_000, seed=2)
    area.conn.put_container(container)
    area.conn.put_object(container, "small-glance-image", contents=data)
    stores = imagestore.Stores({"default": "images",
                                "stores": {"images": area.spec(location_aliases=["glance-ref"])}})
    for uri in (glance_uri(area, container, "small-glance-image"),
                f"swift+config://glance-ref/{container}/small-glance-image"):
        store, loc = stores.resolve(uri)
        assert store.get(loc, verify=False) == data
        with store.open(loc, expected={"md5": hashlib.md5(data).hexdigest()}) as reader:
            assert reader.read() == data
    stores.close()
