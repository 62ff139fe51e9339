"""The RBD driver against real clusters, once with clone v1 and once with clone v2."""

from __future__ import annotations

import dataclasses
import json
import os
import threading
import time
import tracemalloc
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from imagestore.config import StoreSettings
from imagestore.drivers import CloneRequest, DriverContext
from imagestore.drivers.rbd import TMP_PREFIX, RbdDriver
from imagestore.drivers.rbd import lib as rbdlib
from imagestore.drivers.rbd import writer as rbd_writer
from imagestore.errors import (
    AlreadyExists,
    BackendUnavailable,
    ConfigError,
    InUse,
    InvalidLocation,
    NotFound,
    PermissionDenied,
    Unsupported,
)
from imagestore.location import Location
from imagestore.store import Store
from imagestore.testing.payloads import payload
from tests.services.ceph import CephCluster
from tests.services.ports import free_port

pytestmark = pytest.mark.ceph
MiB = 1 << 20


data_of = payload  # deterministic incompressible bytes: no all-zero object unless asked


def put(driver: RbdDriver, image_id: str, data: bytes, size: int | None = -1,
        metadata: dict[str, str] | None = None, piece: int = 300_000) -> Location:
    w = driver.open_writer(image_id, len(data) if size == -1 else size)
    for i in range(0, len(data), piece):
        w.write(memoryview(data)[i:i + piece])
    return w.commit(metadata or {})


def read_all(driver: RbdDriver, loc: Location, offset: int = 0, length: int | None = None) -> bytes:
    if length is None:
        length = max(0, driver.stat(loc).size - offset)
    r = driver.open_reader(loc, offset, length)
    try:
        parts = []
        while chunk := r.read(1 << 20):
            parts.append(chunk)
        return b"".join(parts)
    finally:
        r.close()


def opened(cluster: CephCluster, pool: str = "images", **options: Any) -> RbdDriver:
    """An RbdDriver on ``pool`` as client.imagestore, opened as a store opens it."""
    driver: RbdDriver = cluster.driver(pool, **options)
    driver.open(DriverContext())
    return driver


def temps(driver: RbdDriver) -> list[str]:
    return [n for _, n in driver.cluster.list_images(driver.pool) if n.startswith(TMP_PREFIX)]


@pytest.fixture
def images(ceph_cluster: CephCluster) -> Iterator[RbdDriver]:
    d = opened(ceph_cluster, "images")
    yield d
    d.close()


@pytest.fixture
def vms(ceph_cluster: CephCluster) -> Iterator[RbdDriver]:
    d = opened(ceph_cluster, "vms")
    yield d
    d.close()


@pytest.fixture
def image_id() -> str:
    return f"img-{uuid.uuid4().hex[:12]}"


# ------------------------------------------------------------------ layout, publish
def test_dead_monitor_is_unavailable(ceph_v1: CephCluster, tmp_path: Path) -> None:
    """A monitor port where nothing listens, the default connect_timeout and one retry:
    BackendUnavailable naming the monitor and the conf (never the key), not a BackendError."""
    conf = Path(ceph_v1.conf).read_text()
    mon = f"v2:127.0.0.1:{free_port()}"
    dead = tmp_path / "dead.conf"
    dead.write_text("\n".join(
        f"mon host = {mon}" if line.startswith("mon host") else line for line in conf.splitlines()) + "\n")
    driver = RbdDriver("dead", conf=str(dead), pool="images", user="imagestore", keyring=ceph_v1.keyring)
    key = Path(ceph_v1.keyring).read_text().split("key = ", 1)[1].split()[0]
    try:
        with pytest.raises(BackendUnavailable) as err:
            Store(driver, StoreSettings(retries=1, retry_backoff=0.01))
        text = str(err.value)
        assert err.value.store == "dead"
        assert mon in text and str(dead) in text and "2 attempt(s)" in text
        assert key not in text and ceph_v1.keyring not in text
    finally:
        driver.close()


def test_publish_layout_and_roundtrip(ceph_cluster: CephCluster, images: RbdDriver, image_id: str) -> None:
    data = data_of(5 * MiB + 123)
    loc = put(images, image_id, data, metadata={"md5": "abc", "format": "raw"})
    assert loc == Location("rbd", ceph_cluster.fsid, ("images", image_id, "snap"), "images")
    assert str(loc) == f"rbd://{ceph_cluster.fsid}/images/{image_id}/snap?store=images"
    assert images.owns(loc) and images.owns(Location("rbd", "", (image_id,)))
    assert not images.owns(Location("rbd", ceph_cluster.fsid, ("vms", image_id, "snap")))
    assert not images.owns(Location("rbd", "0000", ("images", image_id, "snap")))
    st = images.stat(loc)
    assert st.size == len(data) and dict(st.metadata) == {"md5": "abc", "format": "raw"}
    assert read_all(images, loc) == data
    # glance-compatible: the protected snapshot is what the rbd CLI (and Nova) sees
    assert "snap" in ceph_cluster.admin("rbd", "snap", "ls", f"images/{image_id}")
    info = ceph_cluster.admin("rbd", "info", f"images/{image_id}@snap")
    assert "protected: True" in info
    # the legacy one-segment glance location resolves in this store
    assert images.stat(Location("rbd", "", (image_id,))).size == len(data)
    assert temps(images) == [] or all(image_id not in t for t in temps(images))


def test_nothing_visible_before_commit_and_abort_cleans(images: RbdDriver, image_id: str) -> None:
    w = images.open_writer(image_id, None)
    w.write(memoryview(data_of(3 * MiB)))
    with pytest.raises(NotFound):
        images.stat(images.location_for(image_id))
    assert any(image_id in t for t in temps(images))
    w.abort()
    w.abort()  # twice is fine
    assert not any(image_id in t for t in temps(images))
    with pytest.raises(NotFound):
        images.stat(images.location_for(image_id))


def test_existing_id_refused(images: RbdDriver, image_id: str) -> None:
    put(images, image_id, b"first")
    with pytest.raises(AlreadyExists):
        images.open_writer(image_id, 5)
    assert read_all(images, images.location_for(image_id)) == b"first"


def test_concurrent_commits_exactly_one_wins(images: RbdDriver, image_id: str) -> None:
    n = 4
    writers = [images.open_writer(image_id, None) for _ in range(n)]  # all open before any commit
    datas = [data_of(2 * MiB, seed=i) for i in range(n)]
    barrier = threading.Barrier(n)
    results: list[Any] = [None] * n

    def run(i: int) -> None:
        writers[i].write(memoryview(datas[i]))
        barrier.wait()
        try:
            results[i] = writers[i].commit({"writer": str(i)})
        except BaseException as exc:  # noqa: BLE001
            results[i] = exc

    threads = [threading.Thread(target=run, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    winners = [i for i, r in enumerate(results) if isinstance(r, Location)]
    assert len(winners) == 1, results
    assert all(isinstance(r, AlreadyExists) for i, r in enumerate(results) if i != winners[0]), results
    loc = results[winners[0]]
    assert images.stat(loc).metadata["writer"] == str(winners[0])
    assert read_all(images, loc) == datas[winners[0]]
    assert not any(image_id in t for t in temps(images))


@pytest.mark.parametrize("size", [0, 1, 8 * MiB, 8 * MiB + 1, 70 * MiB + 3])
def test_unknown_size_grows_and_trims(images: RbdDriver, image_id: str, size: int) -> None:
    data = data_of(size, seed=size)
    loc = put(images, image_id, data, size=None, piece=1_000_003)
    assert images.stat(loc).size == size
    assert read_all(images, loc) == data


def test_sparse_zero_objects_read_back(images: RbdDriver, image_id: str) -> None:
    data = data_of(MiB) + bytes(20 * MiB) + data_of(MiB, seed=2)
    loc = put(images, image_id, data, size=None)
    assert read_all(images, loc) == data


@pytest.mark.parametrize(("offset", "length"), [(0, 1), (1, 4096), (8 * MiB - 1, 2), (0, None),
                                                (9 * MiB, None), (20 * MiB - 10, 100), (50 * MiB, 10)])
def test_ranged_reads(images: RbdDriver, image_id: str, offset: int, length: int | None) -> None:
    data = data_of(20 * MiB, seed=6)
    loc = put(images, image_id, data)
    end = None if length is None else offset + length
    assert read_all(images, loc, offset, length) == data[offset:end]


def test_missing_image(images: RbdDriver, image_id: str) -> None:
    loc = images.location_for(image_id)
    for op in (images.stat, images.delete, lambda loc: images.open_reader(loc, 0, 1), images.locate):
        with pytest.raises(NotFound):
            op(loc)


def test_foreign_location_refused(images: RbdDriver, image_id: str) -> None:
    with pytest.raises(InvalidLocation):
        images.stat(Location("rbd", "0000", ("images", image_id, "snap")))
    with pytest.raises(InvalidLocation):
        images.stat(Location("file", "", ("etc", "passwd")))


# ------------------------------------------------------------------ clone
def test_clone_cow_into_vms(ceph_cluster: CephCluster, images: RbdDriver, vms: RbdDriver, image_id: str) -> None:
    data = data_of(40 * MiB, seed=3)
    loc = put(images, image_id, data)
    plan = images.plan_clone(loc, vms)
    assert plan.mode == "cow", plan
    child = images.clone(loc, vms, CloneRequest(image_id + "-vm", "cow", {"source": image_id}))
    assert child == Location("rbd", ceph_cluster.fsid, ("vms", image_id + "-vm", "snap"), "vms")
    assert read_all(vms, child) == data
    st = vms.stat(child)
    assert st.size == len(data) and st.metadata["source"] == image_id
    parent = vms.parent_of(child)
    assert parent is not None and (parent.pool, parent.image, parent.snap) == ("images", image_id, "snap")
    # O(1): the clone holds no data objects of its own, and RBD counts no bytes used by it
    out = ceph_cluster.admin("rados", "-p", "vms", "ls")
    prefix = ceph_cluster.admin("rbd", "info", f"vms/{image_id}-vm").split("block_name_prefix: ")[1].split()[0]
    assert [o for o in out.split() if o.startswith(prefix)] == []
    du = json.loads(ceph_cluster.admin("rbd", "du", "--format", "json", f"vms/{image_id}-vm"))
    assert du["images"] and all(e["used_size"] == 0 for e in du["images"]), du  # head and snapshot
    assert [e["provisioned_size"] for e in du["images"] if "snapshot" not in e] == [len(data)], du
    with pytest.raises(AlreadyExists):
        images.clone(loc, vms, CloneRequest(image_id + "-vm", "cow", {}))
    # the child is a full image of the vms store: clonable again
    grandchild = vms.clone(child, vms, CloneRequest(image_id + "-vm2", "cow", {}))
    assert read_all(vms, grandchild, 0, 4096) == data[:4096]


def test_clone_resize(images: RbdDriver, vms: RbdDriver, image_id: str) -> None:
    data = data_of(3 * MiB, seed=4)
    loc = put(images, image_id, data)
    child = images.clone(loc, vms, CloneRequest(image_id + "-big", "cow", {}, size=64 * MiB))
    assert vms.stat(child).size == 64 * MiB
    got = read_all(vms, child)
    assert got[:len(data)] == data and got[len(data):] == bytes(64 * MiB - len(data))
    with pytest.raises(Unsupported):
        images.clone(loc, vms, CloneRequest(image_id + "-small", "cow", {}, size=MiB))
    assert not any((image_id + "-small") in n for _, n in vms.cluster.list_images("vms"))


@pytest.mark.parametrize(("policy", "flat_at"), [("never", []), ("always", [1, 2]), ("max_depth=1", [2])])
def test_flatten_policies(ceph_cluster: CephCluster, images: RbdDriver, image_id: str,
                          policy: str, flat_at: list[int]) -> None:
    target = opened(ceph_cluster, "vms", name="vmsflat", clone_flatten=policy)
    try:
        data = data_of(2 * MiB, seed=5)
        loc = put(images, image_id, data)
        c1 = images.clone(loc, target, CloneRequest(image_id + "-d1", "cow", {}))
        c2 = target.clone(c1, target, CloneRequest(image_id + "-d2", "cow", {}))
        flat = [depth for depth, c in ((1, c1), (2, c2)) if target.parent_of(c) is None]
        assert flat == flat_at
        assert read_all(target, c2) == data
    finally:
        target.close()


def test_bad_flatten_policy(ceph_cluster: CephCluster) -> None:
    with pytest.raises(ConfigError) as err:
        opened(ceph_cluster, "vms", clone_flatten="sometimes")
    assert err.value.key == "stores.vms.clone_flatten"


def test_plan_clone_refusals(ceph_v1: CephCluster, ceph_v2: CephCluster, image_id: str) -> None:
    a, b = opened(ceph_v1, "images"), opened(ceph_v2, "vms")
    nopool = opened(ceph_v1, "nopool")
    try:
        loc = put(a, image_id, b"x" * 4096)
        plan = a.plan_clone(loc, b)
        assert plan.mode is None and "different Ceph clusters" in plan.reason
        with pytest.raises(Unsupported):
            a.clone(loc, b, CloneRequest(image_id, "cow", {}))
        plan = a.plan_clone(loc, nopool)
        assert plan.mode is None and "does not exist" in plan.reason
    finally:
        for d in (a, b, nopool):
            d.close()


# ------------------------------------------------------------------ delete
def test_delete_without_children(images: RbdDriver, image_id: str) -> None:
    loc = put(images, image_id, b"bye")
    assert images.delete(loc) == "deleted"
    with pytest.raises(NotFound):
        images.delete(loc)
    put(images, image_id, b"again")  # the id is free


def test_delete_while_another_client_reads(ceph_cluster: CephCluster, images: RbdDriver, image_id: str) -> None:
    """Like an unlinked file: the name goes at once, a client that has the image open reads it
    to the end, and sweep purges the bits once that client is gone."""
    data = data_of(3 * MiB, seed=31)
    loc = put(images, image_id, data)
    store = Store(images, StoreSettings(retries=1, retry_backoff=0.01))
    other = opened(ceph_cluster, "images", name="other")
    try:
        reader = other.open_reader(loc, 0, len(data))
        first = reader.read(1 << 20)
        assert store.delete(loc) == "deleted"
        with pytest.raises(NotFound):
            store.stat(loc)
        rest = b""
        while chunk := reader.read(1 << 20):
            rest += chunk
        assert first + rest == data
        reader.close()
    finally:
        other.close()
    images.min_temp_age = 0
    deadline = time.monotonic() + 60
    while any(e.name == image_id for e in images.cluster.trash_list("images")):
        assert time.monotonic() < deadline, "the trashed image was never purged"
        images.sweep(0)
        time.sleep(0.5)
    put(images, image_id, b"the id is free")


def test_delete_with_children(ceph_cluster: CephCluster, images: RbdDriver, vms: RbdDriver, image_id: str) -> None:
    data = data_of(9 * MiB, seed=7)
    loc = put(images, image_id, data)
    c1 = images.clone(loc, vms, CloneRequest(image_id + "-a", "cow", {}))
    c2 = images.clone(loc, vms, CloneRequest(image_id + "-b", "cow", {}))
    if not ceph_cluster.clone_v2:
        with pytest.raises(InUse):
            images.delete(loc)
        assert images.stat(loc).size == len(data)
        assert vms.delete(c1) == "deleted" and vms.delete(c2) == "deleted"
        assert images.delete(loc) == "deleted"
        return
    assert images.delete(loc) == "deferred"
    with pytest.raises(NotFound):
        images.stat(loc)
    trashed = [e for e in images.cluster.trash_list("images") if e.name == image_id]
    assert len(trashed) == 1
    assert read_all(vms, c1) == data and read_all(vms, c2) == data  # children keep reading
    images.sweep(0)  # still has children: stays in the trash (other tests' entries may go)
    assert [e.id for e in images.cluster.trash_list("images") if e.name == image_id] == [trashed[0].id]
    assert vms.delete(c1) == "deleted"
    assert any(e.name == image_id for e in images.cluster.trash_list("images"))
    assert read_all(vms, c2, 8 * MiB, None) == data[8 * MiB:]
    assert vms.delete(c2) == "deleted"  # the last child: the trashed parent is purged
    assert not any(e.name == image_id for e in images.cluster.trash_list("images"))
    put(images, image_id, b"reused id")


def test_distinct_part_lengths_keep_no_zero_buffers(ceph_v1: CephCluster, image_id: str) -> None:
    """Adds whose sizes are not a multiple of the object size leave no zero buffer behind per
    distinct last-part length: what the writer's module keeps stays within one part."""
    driver = opened(ceph_v1, "images", order=20)  # 1 MiB parts
    try:
        put(driver, image_id + "-warm", data_of(driver.chunk, seed=1))
        tracemalloc.start()
        try:
            before = tracemalloc.take_snapshot().filter_traces([tracemalloc.Filter(True, rbd_writer.__file__)])
            for k in range(1, 9):
                put(driver, f"{image_id}-{k}", data_of(2 * driver.chunk - 4096 * k, seed=k), piece=driver.chunk)
            after = tracemalloc.take_snapshot().filter_traces([tracemalloc.Filter(True, rbd_writer.__file__)])
        finally:
            tracemalloc.stop()
        grown = sum(stat.size_diff for stat in after.compare_to(before, "filename"))
        assert grown <= driver.chunk, f"the writer kept {grown} bytes after 8 adds of distinct lengths"
        loc = driver.location_for(f"{image_id}-8")
        assert read_all(driver, loc) == data_of(2 * driver.chunk - 4096 * 8, seed=8)
    finally:
        driver.close()


def test_clone_depth_closes_the_parent_when_its_snapshot_is_missing(
        ceph_v2: CephCluster, monkeypatch: pytest.MonkeyPatch, image_id: str) -> None:
    """Walking to a trashed parent whose snapshot cannot be opened raises NotFound and leaves
    no image handle open (every handle opened is closed)."""
    images = opened(ceph_v2, "images")
    try:
        loc = put(images, image_id, b"p" * 4096)
        child = images.clone(loc, images, CloneRequest(image_id + "-c", "cow", {}))
        assert images.delete(loc) == "deferred"
        real_parent = rbdlib.Image.parent
        child_name = image_id + "-c"

        def parent_snapshot_gone(img: rbdlib.Image) -> rbdlib.ParentSpec | None:
            spec = real_parent(img)
            if img.name == child_name and spec is not None:
                assert spec.trash  # the walk takes the trashed-parent path
                return dataclasses.replace(spec, snap="gone")
            return spec

        handles: list[rbdlib.Image] = []
        closed: set[int] = set()
        real_open, real_close = images.cluster.open, rbdlib.Image.close

        def counted_open(*args: Any, **kwargs: Any) -> rbdlib.Image:
            img = real_open(*args, **kwargs)
            handles.append(img)
            return img

        def counted_close(img: rbdlib.Image) -> None:
            closed.add(id(img))
            real_close(img)

        monkeypatch.setattr(rbdlib.Image, "parent", parent_snapshot_gone)
        monkeypatch.setattr(rbdlib.Image, "close", counted_close)
        monkeypatch.setattr(images.cluster, "open", counted_open)
        with pytest.raises(NotFound):
            images.clone_depth(child)
        assert handles and all(id(img) in closed for img in handles), "an image handle was left open"
    finally:
        monkeypatch.undo()
        images.close()


def test_sweep_purges_orphaned_trash_and_stale_temps(ceph_v2: CephCluster, image_id: str) -> None:
    images = opened(ceph_v2, "images")
    try:
        loc = put(images, image_id, b"p" * 4096)
        child = images.clone(loc, images, CloneRequest(image_id + "-c", "cow", {}))
        assert images.delete(loc) == "deferred"
        # the child goes behind the driver's back: only sweep can purge the parent now
        ceph_v2.admin("rbd", "snap", "unprotect", f"images/{image_id}-c@snap")
        ceph_v2.admin("rbd", "snap", "rm", f"images/{image_id}-c@snap")
        ceph_v2.admin("rbd", "rm", f"images/{image_id}-c")
        w = images.open_writer(image_id + "-dead", None)  # a writer that dies
        w.write(memoryview(b"z" * 1000))
        old = f"{TMP_PREFIX}{image_id}-old.{int(time.time()) - 7200}.abcd1234"
        images.cluster.create("images", old, 4096, order=22)
        removed = images.sweep(3600).removed
        assert removed >= 2
        names = [n for _, n in images.cluster.list_images("images")]
        assert old not in names and any(image_id + "-dead" in n for n in names)  # fresh temp kept
        assert not any(e.name == image_id for e in images.cluster.trash_list("images"))
        w.abort()
        del child
    finally:
        images.close()


def test_one_sweep_leaves_no_childless_trash(ceph_v2: CephCluster, image_id: str) -> None:
    """Trashed parents that only dead clones' temporaries still needed go in the same sweep:
    a chain A <- B <- dead temporary in the same pool, and P <- dead temporary in another pool
    (the parent's store swept first, as ``imagestore sweep --all`` does)."""
    images, vms = opened(ceph_v2, "images"), opened(ceph_v2, "vms")
    stamp = int(time.time()) - 7200  # a clone killed two hours ago: no watch, old enough

    def dead_clone(pool: str, parent: str, name: str) -> str:
        tmp = f"{TMP_PREFIX}{name}.{stamp}.{uuid.uuid4().hex[:8]}"
        images.cluster.clone("images", parent, "snap", pool, tmp, order=22)
        return tmp

    def trashed(driver: RbdDriver) -> set[str]:
        return {e.name for e in driver.cluster.trash_list(driver.pool) if image_id in e.name}

    try:
        a = put(images, image_id + "-a", b"a" * 4096)
        b = images.clone(a, images, CloneRequest(image_id + "-b", "cow", {}))
        p = put(images, image_id + "-p", b"p" * 4096)
        tmp_b = dead_clone("images", image_id + "-b", image_id + "-bc")
        tmp_p = dead_clone("vms", image_id + "-p", image_id + "-pc")
        assert [images.delete(loc) for loc in (b, a, p)] == ["deferred"] * 3
        assert trashed(images) == {image_id + "-a", image_id + "-b", image_id + "-p"}
        images.sweep(0)
        vms.sweep(0)
        assert trashed(images) == set(), "one sweep left trashed images that nothing needs"
        assert tmp_b not in temps(images) and tmp_p not in temps(vms)
    finally:
        images.close()
        vms.close()


def test_sweep_spares_a_live_writer_however_old(ceph_cluster: CephCluster, images: RbdDriver,
                                                image_id: str) -> None:
    """Age alone never condemns an upload: a writer that still holds its image is left alone,
    snapshots included (a writer between its commit snapshot and its rename)."""
    w = images.open_writer(image_id, None)
    w.write(memoryview(data_of(MiB, seed=41)))
    [tmp] = [n for n in temps(images) if image_id in n]
    ceph_cluster.admin("rbd", "snap", "create", f"images/{tmp}@in-commit")
    images.min_temp_age = 0  # every temporary is "old"
    images.sweep(0)
    assert tmp in temps(images), "the live writer's image was swept"
    assert "in-commit" in ceph_cluster.admin("rbd", "snap", "ls", f"images/{tmp}")
    ceph_cluster.admin("rbd", "snap", "rm", f"images/{tmp}@in-commit")
    loc = w.commit({"k": "v"})
    assert read_all(images, loc) == data_of(MiB, seed=41)
    assert images.stat(loc).metadata == {"k": "v"}


# ------------------------------------------------------------------ locate, description, privileges
def test_locate(ceph_cluster: CephCluster, images: RbdDriver, image_id: str) -> None:
    loc = put(images, image_id, b"loc")
    acc = images.locate(loc)
    assert (acc.kind, acc.fsid, acc.pool, acc.image, acc.snapshot) == (
        "rbd", ceph_cluster.fsid, "images", image_id, "snap")
    assert acc.mon_hosts and all("127.0.0.1" in m for m in acc.mon_hosts)
    text = repr(acc) + repr(acc.to_dict()) + repr(images) + repr(images.describe())
    lines = Path(ceph_cluster.keyring).read_text().splitlines()
    key = [ln.split("=", 1)[1].strip() for ln in lines if "key =" in ln][0]
    assert key not in text and "AQ" not in text
    assert images.describe() == {"conf": ceph_cluster.conf, "pool": "images", "user": "imagestore",
                                 "clone_format": 2 if ceph_cluster.clone_v2 else 1}


def test_deferred_delete_is_probed_from_the_cluster(ceph_cluster: CephCluster) -> None:
    """Clone v2 (and so deferred deletes) is what the cluster's require_min_compat_client says."""
    required = ceph_cluster.admin("ceph", "osd", "dump", "--format", "json")
    import json

    release = json.loads(required)["require_min_compat_client"]
    d = opened(ceph_cluster, "images")
    try:
        caps = d.open(DriverContext())
        assert caps.deferred_delete is (release != "luminous"), release
        assert caps.deferred_delete is ceph_cluster.clone_v2
    finally:
        d.close()


def test_least_privilege_user(ceph_cluster: CephCluster, image_id: str) -> None:
    """client.imagestore (profile rbd on images and vms only) does everything; other pools are refused."""
    ceph_cluster.admin("ceph", "osd", "pool", "create", "private", "8")
    ceph_cluster.admin("ceph", "osd", "pool", "application", "enable", "private", "rbd")
    images, vms = opened(ceph_cluster, "images"), opened(ceph_cluster, "vms")
    private = opened(ceph_cluster, "private")
    try:
        assert images.cluster.user == "imagestore"
        loc = put(images, image_id, data_of(MiB))
        child = images.clone(loc, vms, CloneRequest(image_id + "-lp", "cow", {}))
        assert images.plan_clone(loc, private).mode is None
        with pytest.raises(PermissionDenied):
            put(private, image_id, b"nope")
        assert vms.delete(child) == "deleted" and images.delete(loc) == "deleted"
    finally:
        for d in (images, vms, private):
            d.close()


def test_close_then_reopen_is_a_new_driver(ceph_cluster: CephCluster, image_id: str) -> None:
    d = opened(ceph_cluster, "images")
    loc = put(d, image_id, b"persist")
    d.close()
    d2 = opened(ceph_cluster, "images")
    try:
        assert read_all(d2, loc) == b"persist"
    finally:
        d2.close()


def test_many_threads_share_one_connection(images: RbdDriver, image_id: str) -> None:
    errors: list[BaseException] = []

    def work(i: int) -> None:
        try:
            data = os.urandom(MiB + i)
            loc = put(images, f"{image_id}-{i}", data)
            assert read_all(images, loc) == data
            assert images.delete(loc) == "deleted"
        except BaseException as exc:  # noqa: BLE001
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert errors == []


def test_glance_location_resolves_to_its_store(ceph_cluster: CephCluster, image_id: str) -> None:
    """A Nova-style consumer holding glance's rbd://fsid/pool/image/snap finds the store and clones."""
    import imagestore

    stores = imagestore.Stores({"default": "images", "stores": {
        "images": ceph_cluster.spec("images"), "vms": ceph_cluster.spec("vms")}})
    try:
        info = stores["images"].add(image_id, data_of(MiB, seed=51), MiB)
        glance_url = f"rbd://{ceph_cluster.fsid}/images/{image_id}/snap"
        store, loc = stores.resolve(imagestore.Location.from_glance(glance_url))
        assert store is stores["images"] and loc == info.location
        res = store.clone(loc, stores["vms"], name=image_id + "-disk")
        assert res.mode == "cow"
        assert stores["vms"].get(res.location) == data_of(MiB, seed=51)
        other_cluster = f"rbd://00000000-0000-0000-0000-000000000000/images/{image_id}/snap"
        with pytest.raises(imagestore.InvalidLocation):
            stores.resolve(imagestore.Location.from_glance(other_cluster))
    finally:
        stores.close()


def test_unclosed_stores_exit_cleanly(ceph_cluster: CephCluster, image_id: str) -> None:
    """A service that never closes its stores still exits with status 0 (connections shut at exit)."""
    import subprocess
    import sys

    code = (
        "import imagestore\n"
        f"stores = [imagestore.open_store({ceph_cluster.spec('images')!r}, 'images'),\n"
        f"          imagestore.open_store({ceph_cluster.spec('vms')!r}, 'vms')]\n"
        f"info = stores[0].add({image_id!r}, b'x' * 4096, 4096)\n"
        f"stores[0].clone(info.location, stores[1], name={image_id + '-c'!r})\n"
        "assert stores[1].get(" + repr(image_id + "-c") + ") == b'x' * 4096\n"
    )
    for _ in range(3):
        proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
        assert proc.returncode == 0, proc.stderr[-2000:]
        ceph_cluster.admin("rbd", "snap", "unprotect", f"vms/{image_id}-c@snap")
        ceph_cluster.admin("rbd", "snap", "purge", f"vms/{image_id}-c")
        ceph_cluster.admin("rbd", "rm", f"vms/{image_id}-c")
        stores_admin = opened(ceph_cluster, "images")
        try:
            stores_admin.delete(stores_admin.location_for(image_id))
        finally:
            stores_admin.close()
