"""A compute service's path: Glance's rbd ``direct_url``, Nova's own cloneable check, then a CoW clone.

Nova never asks the store library whether it may clone: it parses the URL
itself (``rbd://`` and four non-empty parts), compares the fsid with its own
cluster's, requires ``disk_format == 'raw'`` and opens the snapshot. This test
does exactly that on the URL Glance recorded for an image imagestore stored,
then clones it with imagestore into the compute pool and deletes the image
through Glance while the clone lives (clone v2: the parent waits in the trash).
"""

from __future__ import annotations

import os
from typing import Any
from urllib.parse import unquote

from imagestore import Stores
from tests.glance.test_api import rbd_images
from tests.services.glance import SharedGlance

MiB = 1 << 20


def nova_is_cloneable(url: str, image_meta: dict[str, Any], cluster: Any) -> bool:
    """nova.storage.rbd_utils.RBDDriver.is_cloneable, with the cluster's CLI as its librados."""
    prefix = "rbd://"
    if not url.startswith(prefix):
        return False
    pieces = [unquote(piece) for piece in url[len(prefix):].split("/")]
    if "" in pieces or len(pieces) != 4:
        return False  # "Not an rbd snapshot"
    fsid, pool, image, snapshot = pieces
    if cluster.admin("ceph", "fsid").strip() != fsid:
        return False  # "in a different ceph cluster"
    if image_meta.get("disk_format") != "raw":
        return False
    try:
        cluster.admin("rbd", "info", f"{pool}/{image}@{snapshot}")
    except RuntimeError:
        return False
    return True


def test_direct_url_is_cloneable_by_nova_and_clones_copy_on_write(glance: SharedGlance) -> None:
    client, data = glance.client, os.urandom(4 * MiB + 17)
    image = client.create_image(name="boot", disk_format="raw")
    iid = image["id"]
    assert client.upload(iid, data, store="ceph").status == 204
    image = client.image(iid)
    url = image["direct_url"]
    assert nova_is_cloneable(url, image, glance.ceph)
    assert not nova_is_cloneable(url.replace(glance.ceph.fsid, "00000000-0000-0000-0000-000000000000"), image,
                                 glance.ceph)
    assert not nova_is_cloneable(url, {**image, "disk_format": "qcow2"}, glance.ceph)

    with Stores.from_file(glance.config) as stores:
        images, location = stores.resolve(url)  # the URL Glance recorded names the store holding it
        assert images.name == "ceph"
        vms = stores["vms"]
        check = images.can_clone(url, to=vms)
        assert check.mode == "cow", check
        disk = images.clone(url, to=vms, name=f"{iid}_disk", size=8 * MiB)
        assert disk.mode == "cow"
        assert f"images/{iid}@snap" in glance.ceph.admin("rbd", "info", f"vms/{iid}_disk")  # its parent
        assert vms.get(disk.location, 0, len(data), verify=False) == data

        # deleting the image through Glance while the clone lives: deferred, not refused
        assert client.delete_image(iid).status == 204
        assert iid not in rbd_images(glance)
        assert vms.get(disk.location, 0, 4096, verify=False) == data[:4096]
        vms.delete(disk.location)  # the last clone goes: the trashed parent is purged
        assert iid not in glance.ceph.admin("rbd", "trash", "ls", "-a", "images")
