"""Compute and volume flows on real Ceph (clone v1 and v2): adopt without a snapshot, the volume
flow (grown clone, flatten policy, depth, flatten on demand), and OSSN-0090's substituted image."""

from __future__ import annotations

import hashlib
import json
import tempfile

import pytest

from imagestore import ChecksumMismatch, DeleteOutcome, NotFound, UnsafeImage, Unsupported
from tests.services.ceph import CephCluster

from .conftest import MiB, Opened, data_of

pytestmark = pytest.mark.ceph


def _import(cluster: CephCluster, spec: str, data: bytes) -> None:
    with tempfile.NamedTemporaryFile() as fh:
        fh.write(data)
        fh.flush()
        cluster.admin("rbd", "import", "--image-format", "2", fh.name, spec)


def _snaps(cluster: CephCluster, spec: str) -> list[str]:
    return [s["name"] for s in json.loads(cluster.admin("rbd", "snap", "ls", "--format", "json", spec))]


def test_adopt_an_uploaded_volume_without_snapshot(ceph_cluster: CephCluster, opened: Opened, image_id: str,
                                                   qcow2_with_backing: bytes) -> None:
    """Cinder's upload-volume into the images pool: no snapshot yet; adopt takes the protected one."""
    images = opened(ceph_cluster.spec("images"), "images")
    data = data_of(5 * MiB + 1, 1)
    _import(ceph_cluster, f"images/{image_id}", data)
    info = images.adopt(f"rbd://{image_id}")  # glance_store's legacy one-segment form
    assert info.checksums["sha512"] == hashlib.sha512(data).hexdigest() and info.format == "raw"
    assert _snaps(ceph_cluster, f"images/{image_id}") == ["snap"]
    assert "protected: True" in ceph_cluster.admin("rbd", "info", f"images/{image_id}@snap")
    assert images.get(info.location) == data
    _import(ceph_cluster, f"images/{image_id}-evil", qcow2_with_backing)
    with pytest.raises(UnsafeImage):
        images.adopt(f"rbd://{ceph_cluster.fsid}/images/{image_id}-evil/snap")
    assert _snaps(ceph_cluster, f"images/{image_id}-evil") == []  # the snapshot adopt made is gone again
    assert "imagestore" not in ceph_cluster.admin("rbd", "image-meta", "list", f"images/{image_id}-evil")


def test_volume_flow(ceph_cluster: CephCluster, opened: Opened, image_id: str) -> None:
    """Cinder: clone an image into the volume pool, larger than the image; depth; flatten."""
    images = opened(ceph_cluster.spec("images"), "images")
    volumes = opened(ceph_cluster.spec("vms"), "volumes")
    data = data_of(3 * MiB, 2)
    info = images.add(image_id, data)
    vol = images.clone(info.location, volumes, name=f"volume-{image_id}", size=64 * MiB, verify_source=True)
    assert vol.mode == "cow" and vol.depth == 1 and volumes.depth(vol.location) == 1
    stat = volumes.stat(vol.location)
    assert stat.size == 64 * MiB and stat.checksums == {} and stat.format == "raw"
    assert stat.virtual_size == 64 * MiB
    got = volumes.get(vol.location, verify=False)
    assert got[:len(data)] == data and got[len(data):] == bytes(64 * MiB - len(data))
    with pytest.raises(Unsupported):
        volumes.get(vol.location)  # a grown clone has no checksum to verify against
    # a clone of the volume: depth 2, unless the target's policy flattens it
    snap_vol = volumes.clone(vol.location, volumes, name=f"volume-{image_id}-2")
    assert snap_vol.depth == 2
    flat_target = opened({**ceph_cluster.spec("vms"), "clone_flatten": "max_depth=1"}, "flat")
    flat = volumes.clone(vol.location, flat_target, name=f"volume-{image_id}-3")
    assert flat.depth == 0 and flat_target.depth(flat.location) == 0
    with pytest.raises(Exception, match="depend"):
        volumes.flatten(vol.location)  # volume-2 is a clone of its snapshot
    assert volumes.flatten(snap_vol.location) == 0
    assert volumes.flatten(vol.location) == 0
    assert volumes.depth(vol.location) == 0
    assert images.delete(info.location) is DeleteOutcome.DELETED  # nothing depends on the image now
    with pytest.raises(NotFound):
        images.stat(info.location)
    assert volumes.get(vol.location, verify=False)[:len(data)] == data
    small = images.add(image_id + "-s", data)
    with pytest.raises(Unsupported):
        images.clone(small.location, volumes, name=f"volume-{image_id}-small", size=MiB)


def test_ossn_0090_substituted_image(ceph_cluster: CephCluster, opened: Opened, image_id: str) -> None:
    """An image whose bits were replaced in the backend (metadata kept): a plain cow clone copies the
    substitute, as Nova and Cinder do today; ``verify_source`` refuses it."""
    images = opened(ceph_cluster.spec("images"), "images")
    vms = opened(ceph_cluster.spec("vms"), "vms")
    data = data_of(4 * MiB, 3)
    info = images.add(image_id, data)
    assert images.clone(info.location, vms, name=image_id + "-ok", verify_source=True).mode == "cow"
    meta = json.loads(ceph_cluster.admin("rbd", "image-meta", "list", "--format", "json", f"images/{image_id}"))
    # the attacker: same name, same snapshot name, same metadata, other bytes
    vms.delete(image_id + "-ok")
    ceph_cluster.admin("rbd", "snap", "unprotect", f"images/{image_id}@snap")
    ceph_cluster.admin("rbd", "snap", "rm", f"images/{image_id}@snap")
    ceph_cluster.admin("rbd", "rm", f"images/{image_id}")
    evil = data_of(4 * MiB, 666)
    _import(ceph_cluster, f"images/{image_id}", evil)
    for key, value in meta.items():
        ceph_cluster.admin("rbd", "image-meta", "set", f"images/{image_id}", key, value)
    ceph_cluster.admin("rbd", "snap", "create", f"images/{image_id}@snap")
    ceph_cluster.admin("rbd", "snap", "protect", f"images/{image_id}@snap")
    assert images.stat(info.location).checksums == info.checksums  # the metadata looks right
    with pytest.raises(ChecksumMismatch):
        images.clone(info.location, vms, name=image_id + "-checked", verify_source=True)
    with pytest.raises(NotFound):
        vms.stat(image_id + "-checked")
    blind = images.clone(info.location, vms, name=image_id + "-blind")  # what consumers do today
    assert vms.get(blind.location, verify=False) == evil
