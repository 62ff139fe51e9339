"""An operator switches a backend from glance_store's filesystem driver to imagestore, and back.

One Glance, one database, one image directory, restarted with another
``enabled_backends``: the images written by either driver stay readable
(whole, ranged, with the checksums Glance recorded) by the other, and a
backend renamed by the operator is found again from the URI prefix. Also:
``hashing_algorithm = sha256`` reaches imagestore's one-pass hashing.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.glance.test_api import assert_checksums, files_in
from tests.services.glance import GlanceFactory, GlanceServer, stores_of, toml_table

MiB = 1 << 20


@pytest.fixture(scope="module")
def switched(glance_factory: GlanceFactory) -> Iterator[tuple[GlanceServer, Path, Path]]:
    """A Glance whose only backend, ``legacy``, starts as glance_store's file driver on ``images``."""
    work = glance_factory.workdir("switch")
    images = work / "images"
    config = work / "imagestore.toml"
    config.write_text(toml_table("stores.legacy", {"driver": "file", "root": images}))
    server = glance_factory.start("switch", {"legacy": "file"}, {"legacy": {"filesystem_store_datadir": images}})
    yield server, images, config


def to_imagestore(config: Path, backend: str = "legacy") -> dict[str, Any]:
    return {"backends": {backend: "imagestore"},
            "sections": {backend: {"imagestore_config": config, "imagestore_store": "legacy"}},
            "default_backend": backend}


def test_switch_to_imagestore_and_back(switched: tuple[GlanceServer, Path, Path]) -> None:
    server, images, config = switched
    client = server.client
    old = {}
    for name, size in (("old-sized", 5 * MiB + 3), ("old-chunked", 3 * MiB + 1)):
        data = os.urandom(size)
        image = client.create_image(name=name)
        body = data if name == "old-sized" else iter([data[:MiB], data[MiB:]])
        assert client.upload(image["id"], body).status == 204
        old[image["id"]] = data
    assert set(old) <= files_in(images)
    assert not any(os.listxattr(images / iid) for iid in old)  # glance_store wrote the bare files

    server.restart(**to_imagestore(config))
    client = server.client
    for iid, data in old.items():
        image = client.image(iid)
        assert_checksums(image, data)
        assert image["direct_url"] == f"file://{images / iid}"
        assert client.download(iid).body == data
        part = client.download(iid, "bytes=1000-1999")
        assert part.status == 206 and part.body == data[1000:2000]
    new_data = os.urandom(2 * MiB + 9)
    new = client.create_image(name="new")["id"]
    assert client.upload(new, new_data).status == 204
    assert client.image(new)["direct_url"] == f"file://{images / new}"
    gone = next(iter(old))
    assert client.delete_image(gone).status == 204  # an image glance_store wrote, deleted by imagestore
    assert gone not in files_in(images)
    del old[gone]

    server.restart(backends={"legacy": "file"}, sections={"legacy": {"filesystem_store_datadir": images}},
                   default_backend="legacy")
    client = server.client
    for iid, data in {**old, new: new_data}.items():
        assert_checksums(client.image(iid), data)
        assert client.download(iid).body == data  # including the one imagestore wrote
    assert client.delete_image(new).status == 204
    assert new not in files_in(images)


def test_a_renamed_backend_is_found_by_its_uri_prefix(switched: tuple[GlanceServer, Path, Path]) -> None:
    server, images, config = switched
    server.restart(backends={"legacy": "file"}, sections={"legacy": {"filesystem_store_datadir": images}},
                   default_backend="legacy")
    data = os.urandom(MiB + 5)
    iid = server.client.create_image(name="renamed")["id"]
    assert server.client.upload(iid, data).status == 204
    # the operator renames the backend: the location still says store "legacy", which is gone
    server.restart(**to_imagestore(config, backend="moved"))
    image = server.client.image(iid)  # Glance maps the URI to a backend by url_prefix
    assert stores_of(image) == {"moved"}
    assert server.client.download(iid).body == data


def test_hashing_algorithm_sha256(glance_factory: GlanceFactory) -> None:
    work = glance_factory.workdir("sha256")
    config = work / "imagestore.toml"
    config.write_text(toml_table("stores.only", {"driver": "file", "root": work / "images"}))
    server = glance_factory.start("sha256", {"only": "imagestore"}, {"only": {"imagestore_config": config}},
                                  hashing="sha256")
    try:
        client, data = server.client, os.urandom(3 * MiB + 2)
        image = client.create_image(name="sha256")
        assert client.upload(image["id"], data).status == 204
        image = client.image(image["id"])
        assert_checksums(image, data, algo="sha256")
        assert image["os_hash_value"] == hashlib.sha256(data).hexdigest()
        assert os.getxattr(work / "images" / image["id"], "user.imagestore.checksum.sha256").decode() \
            == image["os_hash_value"]
    finally:
        server.stop()
