"""``can_clone`` answers in Nova's ``is_cloneable`` and Cinder's ``_is_cloneable`` terms, with a code."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

import imagestore
from imagestore import CLONE_REASONS, Location, UnsafeImage, Unsupported
from tests.services.ceph import CephCluster

from .conftest import MiB, Opened, data_of


@pytest.mark.ceph
def test_rbd_reasons(ceph_v1: CephCluster, ceph_v2: CephCluster, opened: Opened, image_id: str,
                     qcow2_plain: bytes) -> None:
    images = opened(ceph_v1.spec("images"), "images")
    vms = opened(ceph_v1.spec("vms"), "vms")
    info = images.add(image_id, data_of(2 * MiB, 1))
    ok = images.can_clone(info.location, vms)
    assert ok.possible and ok.mode == "cow" and ok.code is None

    elsewhere = opened(ceph_v2.spec("vms"), "elsewhere")  # Nova: "is in a different ceph cluster"
    check = images.can_clone(info.location, elsewhere)
    assert check.mode == "stream" and check.code == "different_cluster" and ceph_v2.fsid in check.reason
    check = images.can_clone(info.location, elsewhere, mode="cow")
    assert not check.possible and check.code == "different_cluster"
    with pytest.raises(Unsupported, match="different Ceph clusters"):
        images.clone(info.location, elsewhere, name=image_id + "-x", mode="cow")

    # Nova and Cinder: "rbd image clone requires image format to be 'raw'"
    strict = opened({**ceph_v1.spec("vms"), "cow_requires_raw": True}, "strict")
    qcow = images.add(image_id + "-q", qcow2_plain)
    check = images.can_clone(qcow.location, strict)  # auto: converted once into a raw base, then cloned
    assert (check.mode, check.code) == ("cow", None) and "convert qcow2 to raw" in check.reason
    check = images.can_clone(qcow.location, strict, mode="stream")
    assert check.mode == "stream" and check.code == "format_not_raw" and "qcow2" in check.reason
    assert not images.can_clone(qcow.location, strict, mode="cow").possible
    with pytest.raises(UnsafeImage):
        images.clone(qcow.location, strict, name=image_id + "-qc", mode="cow")
    assert images.can_clone(info.location, strict).mode == "cow"  # raw is fine

    # "Unable to open image": the snapshot is missing
    no_snap = Location("rbd", ceph_v1.fsid, ("images", image_id, "nosuchsnap"), "images")
    check = images.can_clone(no_snap, vms, mode="cow")
    assert not check.possible and check.code == "snapshot_missing"

    # the target pool does not exist, or the user may not use it
    missing = opened(ceph_v1.spec("nopool-imagestore"), "missing")
    assert images.can_clone(info.location, missing, mode="cow").code == "pool_missing"
    pools = ceph_v1.admin("ceph", "osd", "pool", "ls").split()
    if "private" not in pools:
        ceph_v1.admin("ceph", "osd", "pool", "create", "private", "8")
        ceph_v1.admin("rbd", "pool", "init", "private")
    private = opened(ceph_v1.spec("private"), "private")
    check = images.can_clone(info.location, private, mode="cow")
    assert not check.possible and check.code == "permission" and "client.imagestore" in check.reason

    read_only = opened({"driver": "memory", "read_only": True}, "ro")
    check = images.can_clone(info.location, read_only)
    assert not check.possible and check.code == "read_only_target"
    assert {c for c in ("different_cluster", "format_not_raw", "snapshot_missing", "pool_missing", "permission",
                        "read_only_target")} <= set(CLONE_REASONS)


def test_file_reasons(tmp_path: Path, opened: Opened, image_id: str) -> None:
    images = opened({"driver": "file", "root": str(tmp_path / "images")}, "images")
    info = images.add(image_id, data_of(MiB, 2))
    memory = opened({"driver": "memory"}, "mem")
    check = images.can_clone(info.location, memory)
    assert check.mode == "stream" and check.code == "different_backend"
    same_fs = opened({"driver": "file", "root": str(tmp_path / "vms")}, "vms")
    assert images.can_clone(info.location, same_fs).code is None


@pytest.mark.xfs
def test_file_different_filesystem(xfs_mount: Path, tmp_path: Path, opened: Opened, image_id: str) -> None:
    images = opened({"driver": "file", "root": str(tmp_path / "images")}, "images")
    info = images.add(image_id, data_of(MiB, 3))
    other = opened({"driver": "file", "root": str(xfs_mount / f"cc-{os.getpid()}-{image_id}")}, "xfs")
    check = images.can_clone(info.location, other, mode="cow")
    assert not check.possible and check.code == "different_filesystem"
    assert images.clone(info.location, other).mode == "stream"
    xfs_images = opened({"driver": "file", "root": str(xfs_mount / f"cc-src-{image_id}")}, "xfs_images")
    x = xfs_images.add(image_id, data_of(MiB, 4))
    assert xfs_images.can_clone(x.location, other).mode == "cow"
    assert imagestore.CLONE_REASONS["different_filesystem"]
