"""A real Glance keeping its images in imagestore stores, driven over its REST API.

The session's Glance (tests/services/glance.py) has backends fast and slow
(imagestore file stores), ceph (an imagestore rbd store) and legacy
(glance_store's own filesystem driver). Every check looks behind Glance too:
at the files and RBD images, and at what imagestore stored with them.
"""

from __future__ import annotations

import hashlib
import http.client
from collections.abc import Iterator
from pathlib import Path

import pytest

from imagestore import Stores
from imagestore.testing.payloads import payload
from tests.services.glance import IDENTITY, GlanceClient, SharedGlance, stores_of

MiB = 1 << 20


def files_in(root: Path) -> set[str]:
    """Images in a file store's root; its temporary directory must hold nothing."""
    names = {p.name for p in root.iterdir()} if root.exists() else set()
    if ".tmp" in names:
        assert list((root / ".tmp").iterdir()) == [], f"temporaries left in {root}/.tmp"
        names.discard(".tmp")
    return names


def rbd_images(glance: SharedGlance, pool: str = "images") -> set[str]:
    """Every image in the pool, temporaries included."""
    return set(glance.ceph.admin("rbd", "ls", "-p", pool).split())


def assert_checksums(image: dict, data: bytes, algo: str = "sha512") -> None:  # type: ignore[type-arg]
    assert image["status"] == "active", image
    assert image["size"] == len(data)
    assert image["checksum"] == hashlib.md5(data).hexdigest()
    assert image["os_hash_algo"] == algo
    assert image["os_hash_value"] == hashlib.new(algo, data).hexdigest()


@pytest.fixture(scope="module")
def stores(glance: SharedGlance) -> Iterator[Stores]:
    """The same stores, opened in the test process, to look at what imagestore recorded."""
    with Stores.from_file(glance.config) as opened:
        yield opened


def test_sized_upload_is_stored_by_imagestore_with_glances_checksums(glance: SharedGlance, stores: Stores) -> None:
    client, data = glance.client, payload(9 * MiB + 123)
    image = client.create_image(name="sized")
    assert client.upload(image["id"], data, store="fast").status == 204
    image = client.image(image["id"])
    assert_checksums(image, data)
    assert stores_of(image) == {"fast"}
    path = glance.roots["fast"] / image["id"]
    assert image["direct_url"] == f"file://{path}"
    assert path.read_bytes() == data
    info = stores["fast"].stat(image["direct_url"])  # computed by imagestore in the same pass
    assert info.checksums["md5"] == image["checksum"] and info.checksums["sha512"] == image["os_hash_value"]
    assert info.format == "raw"


def test_chunked_upload_of_unknown_size(glance: SharedGlance) -> None:
    client, data = glance.client, payload(6 * MiB + 5)
    image = client.create_image(name="chunked")

    def chunks() -> Iterator[bytes]:
        for start in range(0, len(data), 100_003):  # odd chunk sizes, no Content-Length
            yield data[start:start + 100_003]

    assert client.upload(image["id"], chunks(), store="slow").status == 204
    image = client.image(image["id"])
    assert_checksums(image, data)
    assert (glance.roots["slow"] / image["id"]).read_bytes() == data


def test_default_backend_takes_an_upload_without_a_store(glance: SharedGlance) -> None:
    client, data = glance.client, payload(MiB)
    image = client.create_image(name="default")
    assert client.upload(image["id"], data).status == 204
    assert stores_of(client.image(image["id"])) == {"fast"}
    assert image["id"] in files_in(glance.roots["fast"])


def test_download_and_ranges(glance: SharedGlance) -> None:
    client, data = glance.client, payload(9 * MiB + 7)
    image = client.create_image(name="ranges")
    assert client.upload(image["id"], data, store="fast").status == 204
    whole = client.download(image["id"])
    assert whole.status == 200 and whole.body == data
    assert whole.headers["content-md5"] == hashlib.md5(data).hexdigest()
    n = len(data)
    four = 4 * MiB  # across imagestore's read chunks
    for header, start, end in [("bytes=0-0", 0, 1), ("bytes=10-19", 10, 20), (f"bytes={four - 3}-{four + 2}", four - 3,
                               four + 3), (f"bytes={n - 10}-", n - 10, n), ("bytes=-7", n - 7, n),
                               (f"bytes=100-{2 * four + 50}", 100, 2 * four + 51)]:
        part = client.download(image["id"], header)
        assert part.status == 206, (header, part)
        assert part.body == data[start:end], header
        assert part.headers["content-range"] == f"bytes {start}-{end - 1}/{n}", header


def _fetch(glance: SharedGlance, image_id: str, byte_range: str | None = None) -> tuple[int, bytes]:
    """Status and the body bytes that arrived; a transfer Glance broke off gives -1 and what came."""
    try:
        resp = glance.client.download(image_id, byte_range)
    except http.client.IncompleteRead as exc:
        return -1, exc.partial
    except (ConnectionError, http.client.HTTPException):
        return -1, b""
    return resp.status, resp.body


def test_a_corrupted_image_never_downloads_as_good(glance: SharedGlance, stores: Stores) -> None:
    """One byte flipped in the image file behind Glance's back: the whole download breaks off
    before the changed block, a range over it gives none of its bytes, and a range of other
    blocks still downloads, verified."""
    client, data = glance.client, payload(5 * MiB + 3)
    image = client.create_image(name="corrupted")
    assert client.upload(image["id"], data, store="fast").status == 204
    info = stores["fast"].stat(client.image(image["id"])["direct_url"])
    assert info.block_table is not None
    at = 3 * MiB + 5
    with open(glance.roots["fast"] / image["id"], "r+b") as f:
        f.seek(at)
        f.write(bytes([data[at] ^ 0xFF]))

    status, body = _fetch(glance, image["id"])  # blocks 0-2 may arrive, verified; nothing of block 3
    assert status in (-1, 500) and len(body) <= 3 * MiB and body == data[:len(body)], (status, len(body))
    status, body = _fetch(glance, image["id"], f"bytes={at - 10}-{at + 10}")
    assert status != 206 or body == b"", (status, body[:100])
    assert not body.startswith(data[at - 10:at])  # nothing of the changed block, not even its good bytes
    status, body = _fetch(glance, image["id"], f"bytes={MiB - 5}-{MiB + 4}")  # blocks 0 and 1: unchanged
    assert (status, body) == (206, data[MiB - 5:MiB + 5])


def test_rbd_backend_upload_download_and_direct_url(glance: SharedGlance) -> None:
    client, data = glance.client, payload(5 * MiB + 1)
    image = client.create_image(name="rbd")
    assert client.upload(image["id"], data, store="ceph").status == 204
    image = client.image(image["id"])
    assert_checksums(image, data)
    assert image["direct_url"] == f"rbd://{glance.ceph.fsid}/images/{image['id']}/snap"
    assert image["id"] in rbd_images(glance)
    assert client.download(image["id"]).body == data
    part = client.download(image["id"], "bytes=4194300-4194309")
    assert part.status == 206 and part.body == data[4194300:4194310]


def test_image_delete_leaves_nothing_in_any_store(glance: SharedGlance) -> None:
    client, data = glance.client, payload(2 * MiB)
    image = client.create_image(name="deleted")
    assert client.upload(image["id"], data, store="fast").status == 204
    assert client.import_image(image["id"], "copy-image", ["ceph"]).status == 202
    client.wait(image["id"], lambda i: stores_of(i) == {"fast", "ceph"}, "the copy into ceph")
    assert client.delete_image(image["id"]).status == 204
    assert client.request("GET", f"/v2/images/{image['id']}").status == 404
    assert image["id"] not in files_in(glance.roots["fast"])
    assert not {n for n in rbd_images(glance) if image["id"] in n}


def test_info_stores_lists_the_imagestore_backends(glance: SharedGlance) -> None:
    stores = {s["id"]: s for s in glance.client.ok("GET", "/v2/info/stores").json()["stores"]}
    assert set(stores) == {"fast", "slow", "ceph", "legacy"}
    assert stores["fast"] == {"id": "fast", "description": "imagestore files", "default": "true"}


def test_info_stores_detail_describes_imagestore_backends_beside_glance_stores(glance: SharedGlance) -> None:
    resp = glance.client.request("GET", "/v2/info/stores/detail")
    assert resp.status == 200, resp
    stores = {s["id"]: s for s in resp.json()["stores"]}
    assert list(stores) == ["fast", "slow", "ceph", "legacy"]  # Glance's order
    assert stores["fast"] == {
        "id": "fast", "description": "imagestore files", "default": "true", "type": "imagestore", "weight": 0,
        "properties": {"imagestore_store": "fast", "driver": "file", "read_only": False, "available": True,
                       "url_prefix": f"file://{glance.roots['fast']}/"}}
    assert stores["slow"]["weight"] == 10 and stores["slow"]["properties"]["imagestore_store"] == "slow"
    ceph = stores["ceph"]
    assert ceph["type"] == "imagestore" and "read-only" not in ceph
    assert ceph["properties"] == {"imagestore_store": "ceph", "driver": "rbd", "read_only": False, "available": True,
                                  "url_prefix": f"rbd://{glance.ceph.fsid}/images/"}
    legacy = stores["legacy"]  # glance_store's own driver, described by Glance as before
    assert legacy["type"] == "file" and legacy["properties"]["data_dir"] == str(glance.roots["legacy"])
    key = next(line.split("=", 1)[1].strip() for line in Path(glance.ceph.keyring).read_text().splitlines()
               if line.strip().startswith("key"))
    assert key and key not in resp.body.decode()  # the cephx secret of the rbd store
    assert glance.ceph.keyring not in resp.body.decode()


def test_info_stores_detail_needs_admin(glance: SharedGlance) -> None:
    member = GlanceClient(glance.client.url, {**IDENTITY, "X-Roles": "member,reader"})
    assert member.request("GET", "/v2/info/stores/detail").status == 403  # Glance's policy check still applies
