"""``replicate``: the cheapest verified copy between stores, idempotent, and complete after a kill."""

from __future__ import annotations

import textwrap
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from imagestore import AlreadyExists, ChecksumMismatch, DeleteOutcome, NotFound, Store
from imagestore.testing.processes import kill_when_started
from imagestore.testing.spy import record_reads
from tests.services.ceph import CephCluster

from .conftest import MiB, Opened, data_of


def test_modes_and_idempotence(tmp_path: Path, opened: Opened, image_id: str) -> None:
    mem = opened({"driver": "memory"}, "mem")
    images = opened({"driver": "file", "root": str(tmp_path / "images")}, "images")
    copies = opened({"driver": "file", "root": str(tmp_path / "copies")}, "copies")
    data = data_of(3 * MiB, 1)
    src = mem.add(image_id, data)
    progress: list[int] = []
    first = mem.replicate(src.location, images, progress=lambda d, t: progress.append(d))
    assert first.mode == "stream" and not first.existing and first.depth == 0
    assert first.info.checksums == src.checksums and images.get(first.location) == data
    assert progress[-1] == len(data)
    second = images.replicate(first.location, copies, name="copy")
    assert second.mode in ("server_copy", "cow") and copies.get("copy") == data
    reads = record_reads(images)
    again = images.replicate(first.location, copies, name="copy")
    assert again.existing and again.mode is None and again.info == copies.stat("copy") and reads == []
    other = images.add(image_id + "-other", data_of(MiB, 2))
    with pytest.raises(AlreadyExists):
        images.replicate(other.location, copies, name="copy")
    # a damaged source is not replicated
    path = tmp_path / "images" / (image_id + "-other")
    path.chmod(0o644)
    with open(path, "r+b") as fh:
        fh.write(b"\xff")
    with pytest.raises(ChecksumMismatch):
        images.replicate(other.location, copies, name="damaged", mode="stream")
    with pytest.raises(ChecksumMismatch):
        images.replicate(other.location, copies, name="damaged")  # server_copy: verify_source
    with pytest.raises(NotFound):
        copies.stat("damaged")


@pytest.mark.ceph
def test_rbd_same_cluster_is_an_independent_copy(ceph_cluster: CephCluster, opened: Opened,
                                                  image_id: str) -> None:
    images = opened(ceph_cluster.spec("images"), "images")
    vms = opened(ceph_cluster.spec("vms"), "vms")
    data = data_of(4 * MiB, 3)
    info = images.add(image_id, data)
    rep = images.replicate(info.location, vms)
    assert rep.mode == "cow" and rep.depth == 0 and vms.depth(rep.location) == 0
    assert images.delete(info.location) is DeleteOutcome.DELETED  # the copy does not need it
    assert vms.get(rep.location) == data


@pytest.mark.ceph
def test_rbd_across_clusters_streams_verified(ceph_v1: CephCluster, ceph_v2: CephCluster, opened: Opened,
                                              image_id: str) -> None:
    src = opened(ceph_v1.spec("images"), "edge")
    dst = opened(ceph_v2.spec("images"), "core")
    data = data_of(9 * MiB + 3, 4)
    info = src.add(image_id, data)
    rep = src.replicate(info.location, dst)
    assert rep.mode == "stream" and rep.info.checksums == info.checksums and dst.get(rep.location) == data
    assert src.replicate(info.location, dst).existing


def _kill_replicate(src_spec: dict[str, Any], dst_spec: dict[str, Any], image_id: str, marker: Path) -> None:
    """Run a slow replicate in another process and SIGKILL it once it has sent a few MiB."""
    code = textwrap.dedent(f"""
        import imagestore, pathlib, time
        src = imagestore.open_store({src_spec!r}, "src")
        dst = imagestore.open_store({dst_spec!r}, "dst")
        real = src._driver.open_reader
        sent = [0]
        class Slow:
            def __init__(self, inner): self.inner = inner
            def read(self, n):
                data = self.inner.read(min(n, 1 << 20))
                sent[0] += len(data)
                if sent[0] >= 3 << 20:
                    pathlib.Path({str(marker)!r}).write_text("1")
                    time.sleep(0.2)
                return data
            def close(self): self.inner.close()
        src._driver.open_reader = lambda loc, off, n: Slow(real(loc, off, n))
        src.replicate({image_id!r}, dst, mode="stream")
    """)
    kill_when_started(code, marker, timeout=120, what="replicating process")


def _rerun_after_kill(src: Store, dst: Store, image_id: str, data: bytes, leftovers: Callable[[], list[str]],
                      src_spec: dict[str, Any], dst_spec: dict[str, Any], marker: Path) -> None:
    _kill_replicate(src_spec, dst_spec, image_id, marker)
    with pytest.raises(NotFound):
        dst.stat(image_id)
    assert leftovers(), "the killed replicate left nothing: the test proves nothing"
    rep = src.replicate(image_id, dst, mode="stream")
    assert not rep.existing and rep.mode == "stream" and dst.get(rep.location) == data
    deadline = time.monotonic() + 120  # a dead writer's lock or watch lapses, then it is swept
    while leftovers():
        assert time.monotonic() < deadline, f"never swept: {leftovers()}"
        time.sleep(1)
        src.replicate(image_id, dst)  # each run sweeps the target's dead temporaries first
    reads = record_reads(src)
    assert src.replicate(image_id, dst).existing and reads == []


def test_replicate_after_a_kill_file(tmp_path: Path, opened: Opened, image_id: str) -> None:
    src_spec = {"driver": "file", "root": str(tmp_path / "src")}
    dst_spec = {"driver": "file", "root": str(tmp_path / "dst")}
    src, dst = opened(src_spec, "src"), opened(dst_spec, "dst")
    data = data_of(12 * MiB, 5)
    src.add(image_id, data)

    def leftovers() -> list[str]:
        tmp = tmp_path / "dst" / ".tmp"
        return sorted(p.name for p in tmp.iterdir()) if tmp.is_dir() else []

    _rerun_after_kill(src, dst, image_id, data, leftovers, src_spec, dst_spec, tmp_path / "marker")


@pytest.mark.ceph
def test_replicate_after_a_kill_rbd(ceph_v2: CephCluster, tmp_path: Path, opened: Opened, image_id: str) -> None:
    src_spec = {"driver": "file", "root": str(tmp_path / "src")}
    dst_spec = ceph_v2.spec("vms")
    src, dst = opened(src_spec, "src"), opened(dst_spec, "dst")
    data = data_of(12 * MiB, 6)
    src.add(image_id, data)

    def leftovers() -> list[str]:
        return [n for n in ceph_v2.admin("rbd", "ls", "vms").split() if n.startswith(f".tmp.{image_id}.")]

    _rerun_after_kill(src, dst, image_id, data, leftovers, src_spec, dst_spec, tmp_path / "marker")
