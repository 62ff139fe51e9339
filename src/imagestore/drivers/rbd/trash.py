"""Walks over an RBD image's clone tree that delete and sweep share: the clones of its snapshots,
whether a clone is v2, and the purge of a trashed image (and its trashed ancestors) once no
clone needs it."""

from __future__ import annotations

from ...errors import NotFound, PermissionDenied
from .lib import OP_FEATURE_CLONE_CHILD, ChildSpec, Cluster, Image

__all__ = ["children", "is_v2_child", "purge_trashed"]


def children(img: Image) -> list[ChildSpec]:
    """The clones of every snapshot of an open image."""
    found: list[ChildSpec] = []
    try:
        for _, snap, _ in img.snap_list():
            img.snap_set(snap)
            found.extend(img.children())
    finally:
        img.snap_set(None)
    return found


def is_v2_child(cluster: Cluster, child: ChildSpec) -> bool:
    """Whether a clone is a clone v2 (its parent may then go to the trash)."""
    try:
        if child.trash:
            img = cluster.open(child.pool, child.image_id, by_id=True)
        else:
            img = cluster.open(child.pool, child.image, read_only=True)
        with img:
            return bool(img.op_features() & OP_FEATURE_CLONE_CHILD)
    except (NotFound, PermissionDenied):
        return False


def purge_trashed(cluster: Cluster, pool: str, image_id: str) -> bool:
    """Remove a trashed image whose clones are all gone (and its trashed ancestors); True if removed."""
    try:
        img = cluster.open(pool, image_id, by_id=True)
    except NotFound:
        return False
    with img:
        if children(img):
            return False
        grandparent = img.parent()
        for _, snap, _ in img.snap_list():
            try:
                if img.snap_is_protected(snap):
                    img.snap_unprotect(snap)
                img.snap_remove(snap)
            except NotFound:  # a concurrent purge of the same entry removed it first
                continue
    try:
        cluster.trash_remove(pool, image_id)
    except NotFound:  # purged meanwhile by a concurrent delete or sweep
        return False
    if grandparent is not None and grandparent.trash:
        purge_trashed(cluster, grandparent.pool, grandparent.image_id)
    return True
