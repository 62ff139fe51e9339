"""Glance's interoperable import into imagestore backends: glance-direct, copy-image, per-store delete."""

from __future__ import annotations

import hashlib
import os

from tests.glance.test_api import assert_checksums, files_in, rbd_images
from tests.services.glance import SharedGlance, stores_of

MiB = 1 << 20


def test_glance_direct_import(glance: SharedGlance) -> None:
    client, data = glance.client, os.urandom(7 * MiB + 3)
    image = client.create_image(name="direct")
    assert client.stage(image["id"], data).status == 204
    assert client.import_image(image["id"], "glance-direct", ["slow"]).status == 202
    image = client.wait(image["id"], lambda i: i["status"] == "active", "the glance-direct import")
    assert_checksums(image, data)
    assert stores_of(image) == {"slow"}
    assert image["direct_url"] == f"file://{glance.roots['slow']}/{image['id']}"
    assert (glance.roots["slow"] / image["id"]).read_bytes() == data
    assert client.download(image["id"]).body == data


def test_copy_image_file_to_file_and_to_rbd_then_delete_copy_by_copy(glance: SharedGlance) -> None:
    client, data = glance.client, os.urandom(6 * MiB + 11)
    image = client.create_image(name="copied")
    iid = image["id"]
    assert client.upload(iid, data, store="fast").status == 204
    assert client.import_image(iid, "copy-image", ["slow", "ceph"]).status == 202
    image = client.wait(iid, lambda i: stores_of(i) == {"fast", "slow", "ceph"}
                        and not i.get("os_glance_importing_to_stores"), "the copies into slow and ceph")
    assert_checksums(image, data)
    assert (glance.roots["slow"] / iid).read_bytes() == data
    assert iid in rbd_images(glance)

    assert client.delete_from_store("fast", iid).status == 204
    assert iid not in files_in(glance.roots["fast"])
    assert stores_of(client.image(iid)) == {"slow", "ceph"}
    assert hashlib.sha512(client.download(iid).body).hexdigest() == image["os_hash_value"]

    assert client.delete_from_store("slow", iid).status == 204
    assert iid not in files_in(glance.roots["slow"])
    left = client.image(iid)
    assert stores_of(left) == {"ceph"} and left["direct_url"].startswith("rbd://")
    assert client.download(iid).body == data  # now from RBD
    assert client.delete_from_store("ceph", iid).status == 403  # Glance keeps the last copy
    assert client.delete_image(iid).status == 204
    assert not {n for n in rbd_images(glance) if iid in n}

