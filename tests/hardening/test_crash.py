"""Crash sweeps, CI-sized: kill -9 at call boundaries and byte offsets of add, clone, delete
and sweep, then check the invariants (see imagestore.testing.crash). The full-size runs
(at least 100 points per backend) are ``imagestore bench --scenario hardening``."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest

from imagestore.drivers.rbd.lib import Cluster
from imagestore.testing.backends import Backend, FileBackend
from imagestore.testing.crash import OPS, WRITES, CrashSweep
from tests.services.ceph import CephCluster

from .conftest import rbd_backend

ZERO = ("images_lost", "corrupt_reads_returned", "partial_visible", "stuck", "orphans_after_sweep",
        "residue_after_cleanup", "hung")


@pytest.fixture
def sweeps() -> Iterator[list[CrashSweep]]:
    made: list[CrashSweep] = []
    yield made
    for sweep in made:
        sweep.close()


def strike_all(sweep: CrashSweep, per_op: int, per_write: int) -> None:
    for op in OPS:
        for mode, at in sweep.plan(op, per_op, per_write if op in WRITES else 0):
            sweep.strike(op, mode, at)


def assert_clean(report: dict[str, Any], at_least: int) -> None:
    assert report["violations"] == [], report["violations"]
    found = {k: report.get(k) for k in ("orphans", "unsound_after_sweep", "residue")}
    assert found == {"orphans": [], "unsound_after_sweep": [], "residue": []}, found
    assert {k: report[k] for k in ZERO} == dict.fromkeys(ZERO, 0), report
    assert report["kill_points"] >= at_least, report
    assert set(report["by_operation"]) == set(OPS), report["by_operation"]


def test_file_crash_sweep(file_backend: FileBackend, prefix: str, sweeps: list[CrashSweep]) -> None:
    sweep = CrashSweep(file_backend, prefix, seed=13)
    sweeps.append(sweep)
    strike_all(sweep, per_op=2, per_write=1)
    assert_clean(sweep.finish(), at_least=16)


@pytest.mark.ceph
def test_rbd_crash_sweep(ceph_v1: CephCluster, ceph_v2: CephCluster, prefix: str,
                         sweeps: list[CrashSweep]) -> None:
    """Both clusters' points first, then one wait for the dead clients' watches to lapse."""
    for cluster in (ceph_v1, ceph_v2):
        sweep = CrashSweep(rbd_backend(cluster), f"{prefix}{cluster.kind}", seed=17)
        sweeps.append(sweep)
        strike_all(sweep, per_op=1, per_write=1)
    for sweep in sweeps:
        assert_clean(sweep.finish(), at_least=11)


def test_s3_crash_sweep(moto_backend: Backend, radosgw_backend: Backend, prefix: str,
                        sweeps: list[CrashSweep]) -> None:
    """moto and radosgw: multipart uploads, leases and records under kill -9."""
    for backend in (moto_backend, radosgw_backend):
        sweep = CrashSweep(backend, f"{prefix}{backend.describe()['server']}", seed=23)
        sweeps.append(sweep)
        strike_all(sweep, per_op=1, per_write=1)
    for sweep in sweeps:
        assert_clean(sweep.finish(), at_least=11)


def test_swift_crash_sweep(swift_backend: Backend, prefix: str, sweeps: list[CrashSweep]) -> None:
    """Swift SAIO: SLO segments, claims and heartbeats under kill -9."""
    sweep = CrashSweep(swift_backend, prefix, seed=29)
    sweeps.append(sweep)
    strike_all(sweep, per_op=1, per_write=1)
    assert_clean(sweep.finish(), at_least=11)


@pytest.mark.ceph
def test_rbd_delete_killed_at_any_late_boundary_leaves_no_orphan(ceph_v2: CephCluster, prefix: str,
                                                                  sweeps: list[CrashSweep]) -> None:
    """Every call boundary of the second half of a delete (where the snapshot goes, then the
    image): an image must never be left without its snapshot, invisible to stat, refused to
    add (the id is taken) and ignored by sweep."""
    backend: Backend = rbd_backend(ceph_v2)
    sweep = CrashSweep(backend, prefix, seed=19)
    sweeps.append(sweep)
    calls = sweep.dry_run("delete")["calls"]
    for at in range(calls // 2, calls + 1):
        sweep.strike("delete", "calls", at)
    report = sweep.finish()
    assert report["orphans"] == [] and report["residue"] == [], report
    assert_clean({**report, "by_operation": dict.fromkeys(OPS, 1)}, at_least=calls // 2)


@pytest.mark.ceph
def test_rbd_backend_counts_a_childless_trash_entry_and_a_watch(ceph_v2: CephCluster, prefix: str) -> None:
    """What the one-sweep check relies on: a trashed image a clone needs is ``deferred``, one
    nothing needs is ``trash`` (an orphan); a temporary a client watches is ``held``."""
    backend = rbd_backend(ceph_v2)
    parent, child = f"{prefix}-p", f"{prefix}-c"
    ceph_v2.admin("rbd", "create", "--size", "4M", f"images/{parent}")
    ceph_v2.admin("rbd", "snap", "create", f"images/{parent}@snap")
    ceph_v2.admin("rbd", "clone", f"images/{parent}@snap", f"vms/{child}")
    ceph_v2.admin("rbd", "trash", "mv", f"images/{parent}")
    kinds = {(o.store, o.kind, o.name) for o in backend.objects(prefix)}
    assert kinds == {("images", "deferred", parent), ("vms", "image", child)}, kinds
    ceph_v2.admin("rbd", "rm", f"vms/{child}")
    kinds = {(o.store, o.kind, o.name) for o in backend.objects(prefix)}
    assert kinds == {("images", "trash", parent)}, kinds
    [entry] = [e for e in backend.rbd("trash", "ls", "images") if e["name"] == parent]
    ceph_v2.admin("rbd", "snap", "purge", "--image-id", entry["id"], "-p", "images")
    ceph_v2.admin("rbd", "trash", "rm", "-p", "images", entry["id"])
    old = f".tmp.{prefix}-w.{int(time.time()) - 7200}.abcd1234"  # old: held only while watched
    ceph_v2.admin("rbd", "create", "--size", "4M", f"images/{old}")
    cluster = Cluster(ceph_v2.conf, "imagestore", ceph_v2.keyring, label="held")
    try:
        with cluster.open("images", old):  # a read-write open is a watch
            assert backend.held(prefix) == [f"images:temporary:{old}"]
        assert backend.held(prefix) == []
        assert [o.kind for o in backend.objects(prefix)] == ["temporary"]
    finally:
        cluster.shutdown()
        ceph_v2.admin("rbd", "rm", f"images/{old}")
