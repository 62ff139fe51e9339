"""Copy-on-write clones between rbd stores of one Ceph cluster: whether one can be made
(plan), making it (clone, resize, flatten per policy, snapshot, publish) and clone depth."""

from __future__ import annotations

from ...spi.contract import ClonePlan, CloneRequest
from ...errors import AlreadyExists, ConfigError, NotFound, PermissionDenied, Transient, Unsupported
from ...location import Location
from ...results import CloneRefusal
from .core import META_PREFIX, RbdStore, image_exists, publish, remove_fully, tmp_name
from .lib import Cluster, Image, RbdError

__all__ = ["clone", "depth", "plan"]


def depth(cluster: Cluster, img: Image) -> int:
    """How many ancestors the (snapshot of the) open image has."""
    n, parent = 0, img.parent()
    while parent is not None and n < 64:
        n += 1
        if parent.trash:  # opened at its snapshot: no handle to leak if that is missing
            nxt = cluster.open(parent.pool, parent.image_id, snap=parent.snap, by_id=True)
        else:
            nxt = cluster.open(parent.pool, parent.image, snap=parent.snap, read_only=True)
        with nxt:
            parent = nxt.parent()
    return n


def plan(source: RbdStore, target: RbdStore, pool: str, name: str, snap: str) -> ClonePlan:
    """"cow" when ``target`` is on the same cluster and can read ``pool/name@snap``, else why not."""
    try:
        src, dst = source.fsid, target.fsid
    except (Transient, PermissionDenied, ConfigError) as exc:
        return ClonePlan(None, f"cannot reach a cluster to compare: {exc}", CloneRefusal.UNREACHABLE)
    if src != dst:
        return ClonePlan(None, f"different Ceph clusters (fsid {src} vs {dst})", CloneRefusal.DIFFERENT_CLUSTER)
    tc = target.cluster
    try:
        if not tc.pool_exists(target.pool):
            return ClonePlan(None, f"target pool {target.pool!r} does not exist", CloneRefusal.POOL_MISSING)
        tc.list_images(target.pool)
    except PermissionDenied:
        return ClonePlan(None, f"client.{target.user} may not use pool {target.pool!r}", CloneRefusal.PERMISSION)
    try:
        with tc.open(pool, name, snap=snap, read_only=True):
            pass
    except PermissionDenied:
        return ClonePlan(None, f"client.{target.user} may not read pool {pool!r}", CloneRefusal.PERMISSION)
    except NotFound:
        return ClonePlan(None, f"snapshot {pool}/{name}@{snap} does not exist or cannot be opened",
                         CloneRefusal.SNAPSHOT_MISSING)
    return ClonePlan("cow", f"same Ceph cluster {src}: RBD clone {pool}/{name}@{snap} into pool {target.pool!r}")


def clone(source: RbdStore, target: RbdStore, pool: str, name: str, snap: str, request: CloneRequest) -> Location:
    """RBD-clone ``pool/name@snap`` into the target's pool, resize, flatten per its policy,
    snapshot and publish; the new location. A failed clone leaves no temporary behind."""
    tc = target.cluster
    if image_exists(tc, target.pool, request.name):
        raise AlreadyExists("the clone target name is taken", store=target.name, image=request.name)
    with tc.open(pool, name, snap=snap, read_only=True) as src:
        src_size = src.size()
        levels = depth(source.cluster, src) + 1
    if request.size is not None and request.size < src_size:
        raise Unsupported(
            f"cannot clone into a smaller size ({request.size} < {src_size} bytes)", store=source.name, image=name
        )
    tmp = tmp_name(request.name)
    try:
        tc.clone(pool, name, snap, target.pool, tmp, order=target.order)
    except (RbdError, NotFound) as exc:
        # EINVAL/ENOENT when the source's snapshot was unprotected or removed meanwhile
        if not image_exists(source.cluster, pool, name, snap):
            raise NotFound("the source was deleted during the clone", store=source.name, image=name) from exc
        raise
    try:
        with tc.open(target.pool, tmp) as child:
            if request.size is not None and request.size != src_size:
                child.resize(request.size)
            if target.max_clone_depth is not None and levels > target.max_clone_depth:
                child.flatten()
            for key in child.metadata_list():  # librbd copies the parent's metadata
                if key.startswith(META_PREFIX) and key[len(META_PREFIX):] not in request.metadata:
                    child.metadata_remove(key)
            for key, value in request.metadata.items():
                child.metadata_set(META_PREFIX + key, value)
            child.snap_create(target.snapshot)
            child.snap_protect(target.snapshot)
            mine = child.image_id()
        publish(target, tmp, request.name, mine)
    except BaseException:
        try:
            remove_fully(tc, target.pool, tmp)
        except Exception:  # noqa: BLE001 - keep the original error; sweep() retries
            pass
        raise
    return target.location_for(request.name)
