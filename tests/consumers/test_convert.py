"""Convert once, clone forever: non-raw images (qcow2 plain, compressed and with snapshots; vmdk
streamOptimized and monolithicSparse; vhdx; vdi; vhd) cloned with ``format="raw"`` into a real
RBD pool and into a real XFS reflink file store. The first clone converts the verified, inspected
source into a raw base once (``qemu-img``), later clones are copy-on-write clones of it; every
clone reads as the source does (``qemu-img compare``); unsafe sources are refused before any
``qemu-img`` process starts; a changed source is refused; nothing of a failed conversion is left."""

from __future__ import annotations

import json
import os
import subprocess
import threading
from collections.abc import Callable
from pathlib import Path

import pytest

from imagestore import BackendError, ChecksumMismatch, CloneRefusal, Store, UnsafeImage
from imagestore.engine import qemu
from imagestore.store import bases
from imagestore.testing.payloads import payload
from imagestore.testing.processes import race_adds
from tests.services.ceph import CephCluster

from .conftest import MiB, Opened

DISK = 48 * MiB
"""The guest disk every source holds: data at a few offsets, zeros elsewhere."""
DATA = ((0, 3 * MiB + 5), (17 * MiB, 2 * MiB), (DISK - MiB, MiB))
STAMP = 40 * MiB
"""Where each test's disk holds its own id (4 KiB): no two tests share a base in a shared pool."""


def _run(*argv: str) -> None:
    subprocess.run(argv, check=True, capture_output=True, timeout=120)


def _guest_disk(tmp: Path, stamp: str) -> Path:
    """A raw guest disk with data in ``DATA`` and ``stamp`` at ``STAMP``, holes elsewhere."""
    path = tmp / "guest.raw"
    with open(path, "wb") as fh:
        fh.truncate(DISK)
        for n, (at, length) in enumerate(DATA):
            fh.seek(at)
            fh.write(payload(length, seed=70 + n))
        fh.seek(STAMP)
        fh.write(stamp.encode().ljust(4096, b"."))
    return path


# name -> (glance format, qemu-img convert options)
SOURCES: dict[str, tuple[str, tuple[str, ...]]] = {
    "qcow2": ("qcow2", ("-O", "qcow2")),
    "qcow2-compressed": ("qcow2", ("-O", "qcow2", "-c")),
    "qcow2-snapshots": ("qcow2", ("-O", "qcow2")),
    "vmdk-stream-optimized": ("vmdk", ("-O", "vmdk", "-o", "subformat=streamOptimized")),
    "vmdk-monolithic-sparse": ("vmdk", ("-O", "vmdk", "-o", "subformat=monolithicSparse")),
    "vhdx": ("vhdx", ("-O", "vhdx")),
    "vdi": ("vdi", ("-O", "vdi")),
    "vhd": ("vhd", ("-O", "vpc", "-o", "force_size=on")),
}


def _source(tmp: Path, kind: str, stamp: str) -> Path:
    """The guest disk converted to ``kind`` by qemu-img (the snapshots kind: two internal
    snapshots, the data of the active layer differing from both)."""
    guest = _guest_disk(tmp, stamp)
    fmt, options = SOURCES[kind]
    path = tmp / f"{kind}.img"
    _run("qemu-img", "convert", "-f", "raw", *options, str(guest), str(path))
    if kind == "qcow2-snapshots":
        _run("qemu-img", "snapshot", "-c", "before", str(path))
        _run("qemu-io", "-f", "qcow2", "-c", "write -P 0x61 1M 64k", str(path))
        _run("qemu-img", "snapshot", "-c", "after", str(path))
        _run("qemu-io", "-f", "qcow2", "-c", "write -P 0x62 20M 1M", str(path))
    return path


class Target:
    """A store that clones copy-on-write, and how qemu-img names one of its images."""

    def __init__(self, store: Store, name: Callable[[str], str], admin: Callable[..., str] | None = None) -> None:
        self.store, self.qemu_name, self.admin = store, name, admin

    def compare(self, source: Path, fmt: str, image: str) -> None:
        """``qemu-img compare`` of the source file with the raw image: identical guest disks."""
        proc = subprocess.run(["qemu-img", "compare", "-f", qemu.DRIVERS[fmt], "-F", "raw", str(source),
                               self.qemu_name(image)], capture_output=True, text=True, timeout=120)
        assert proc.returncode == 0, proc.stdout + proc.stderr


@pytest.fixture(params=["rbd", "xfs"])
def target(request: pytest.FixtureRequest, opened: Opened, tmp_path: Path) -> Target:
    if request.param == "rbd":
        cluster: CephCluster = request.getfixturevalue("ceph_v2")
        store = opened(cluster.spec("vms"), "vms")
        conf = f"conf={cluster.conf}:id=imagestore:keyring={cluster.keyring}"
        return Target(store, lambda image: f"rbd:vms/{image}:{conf}", cluster.admin)
    mount: Path = request.getfixturevalue("xfs_mount")
    root = mount / f"convert-{tmp_path.name}"
    store = opened({"driver": "file", "root": str(root)}, "vms")
    assert store.capabilities.cow_clone
    return Target(store, lambda image: str(root / image))


@pytest.fixture
def source_store(opened: Opened, tmp_path: Path) -> Store:
    return opened({"driver": "file", "root": str(tmp_path / "images")}, "images")


@pytest.fixture
def lenient(opened: Opened, tmp_path: Path) -> Store:
    """A source store that does not inspect: it keeps what it is told (as an older store may have)."""
    return opened({"driver": "file", "root": str(tmp_path / "lenient"), "inspect": False}, "lenient")


def _bases(store: Store) -> list[str]:
    return sorted(n for n in store._driver.list_images() if bases.is_base(n))


@pytest.mark.ceph
@pytest.mark.xfs
@pytest.mark.parametrize("kind", sorted(SOURCES))
def test_first_clone_converts_later_clones_reuse_the_base(kind: str, target: Target, source_store: Store,
                                                          tmp_path: Path, image_id: str) -> None:
    path = _source(tmp_path, kind, image_id)
    fmt = SOURCES[kind][0]
    info = source_store.add(image_id, path.read_bytes(), format=fmt)
    assert info.format == fmt
    check = source_store.can_clone(info.location, target.store, format="raw")
    assert (check.possible, check.mode, check.code) == (True, "cow", None) and f"convert {fmt} to raw" in check.reason

    before = set(_bases(target.store))
    first = source_store.clone(info.location, target.store, name=f"{image_id}-a", format="raw")
    assert (first.mode, first.converted) == ("cow", True) and first.base is not None
    assert first.base.image == bases.base_id(info) and set(_bases(target.store)) - before == {first.base.image}
    base = target.store.stat(first.base)
    assert base.format == "raw" and base.size == DISK and base.integrity is not None
    target.compare(path, fmt, first.base.image)
    target.compare(path, fmt, f"{image_id}-a")

    assert "converted before" in source_store.can_clone(info.location, target.store, format="raw").reason
    second = source_store.clone(info.location, target.store, name=f"{image_id}-b", format="raw")
    assert (second.mode, second.converted, second.base) == ("cow", False, first.base)
    target.compare(path, fmt, f"{image_id}-b")
    assert target.store.get(f"{image_id}-b", 17 * MiB, MiB) == payload(2 * MiB, seed=71)[:MiB]  # verified
    assert set(_bases(target.store)) - before == {first.base.image}


@pytest.mark.ceph
def test_the_base_is_sparse_in_rbd(ceph_v2: CephCluster, opened: Opened, source_store: Store, tmp_path: Path,
                                   image_id: str) -> None:
    """``rbd du``: the base holds the guest's data and no object of zeros: at most one object per
    data extent more than the data."""
    path = _source(tmp_path, "qcow2", image_id)
    info = source_store.add(image_id, path.read_bytes(), format="qcow2")
    vms = opened(ceph_v2.spec("vms"), "vms")
    made = source_store.clone(info.location, vms, name=f"{image_id}-a", format="raw")
    assert made.base is not None
    du = json.loads(ceph_v2.admin("rbd", "du", "--format", "json", f"vms/{made.base.image}@snap"))
    used = sum(i["used_size"] for i in du["images"])
    data = sum(length for _, length in DATA) + 4096
    obj = json.loads(ceph_v2.admin("rbd", "info", "--format", "json", f"vms/{made.base.image}"))["object_size"]
    assert used <= 1.1 * data + (len(DATA) + 1) * obj, (used, data, obj)
    touched = {o for at, n in (*DATA, (STAMP, 4096)) for o in range(at // obj, (at + n - 1) // obj + 1)}
    assert used == len(touched) * obj < DISK  # exactly the objects holding data: none of zeros


@pytest.mark.xfs
def test_a_written_clone_leaves_the_base_and_its_sibling_as_they_were(xfs_mount: Path, opened: Opened,
                                                                      source_store: Store, tmp_path: Path,
                                                                      image_id: str) -> None:
    root = xfs_mount / f"written-{tmp_path.name}"
    vms = opened({"driver": "file", "root": str(root)}, "vms")
    path = _source(tmp_path, "qcow2", image_id)
    info = source_store.add(image_id, path.read_bytes(), format="qcow2")
    a = source_store.clone(info.location, vms, name=f"{image_id}-a", format="raw")
    b = source_store.clone(info.location, vms, name=f"{image_id}-b", format="raw")
    assert a.base is not None and a.base == b.base
    os.chmod(root / f"{image_id}-a", 0o600)  # the VM's disk: written by the hypervisor
    _run("qemu-io", "-f", "raw", "-c", "write -P 0x5a 0 1M", "-c", "write -P 0x5b 30M 2M", str(root / f"{image_id}-a"))
    target = Target(vms, lambda image: str(root / image))
    target.compare(path, "qcow2", b.location.image)
    target.compare(path, "qcow2", a.base.image)
    assert vms.scrub(prefix=bases.PREFIX).corrupt == ()  # the base's bytes are its recorded ones
    assert vms.get(b.location, 0, MiB) == payload(3 * MiB + 5, seed=70)[:MiB]


@pytest.mark.ceph
def test_a_written_rbd_clone_leaves_the_base_and_its_sibling_as_they_were(ceph_v2: CephCluster, opened: Opened,
                                                                          source_store: Store, tmp_path: Path,
                                                                          image_id: str) -> None:
    vms = opened(ceph_v2.spec("vms"), "vms")
    conf = f"conf={ceph_v2.conf}:id=imagestore:keyring={ceph_v2.keyring}"
    path = _source(tmp_path, "vmdk-stream-optimized", image_id)
    info = source_store.add(image_id, path.read_bytes(), format="vmdk")
    a = source_store.clone(info.location, vms, name=f"{image_id}-a", format="raw")
    b = source_store.clone(info.location, vms, name=f"{image_id}-b", format="raw")
    assert a.base is not None and a.base == b.base and a.depth == 1
    _run("qemu-io", "-f", "raw", "-c", "write -P 0x5a 0 1M", f"rbd:vms/{image_id}-a:{conf}")
    target = Target(vms, lambda image: f"rbd:vms/{image}:{conf}")
    target.compare(path, "vmdk", f"{image_id}-b")
    target.compare(path, "vmdk", a.base.image)


@pytest.mark.ceph
def test_two_first_clones_at_once_make_one_base(ceph_v2: CephCluster, opened: Opened, source_store: Store,
                                                tmp_path: Path, image_id: str) -> None:
    path = _source(tmp_path, "qcow2-compressed", image_id)
    info = source_store.add(image_id, path.read_bytes(), format="qcow2")
    nodes = [opened(ceph_v2.spec("vms"), f"vms{n}") for n in range(2)]  # two compute nodes' stores
    before = set(_bases(nodes[0]))
    sources = [opened({"driver": "file", "root": str(tmp_path / "images")}, "images") for _ in range(2)]
    start = threading.Barrier(2)

    def one(n: int) -> object:
        start.wait()
        return sources[n].clone(info.location, nodes[n], name=f"{image_id}-{n}", format="raw")

    made = race_adds(one, range(2), timeout=300)
    assert all(not isinstance(r, Exception) for r in made), made
    assert sorted(r.converted for r in made) == [False, True]  # type: ignore[attr-defined]
    assert made[0].base.path == made[1].base.path  # type: ignore[attr-defined]
    assert set(_bases(nodes[0])) - before == {bases.base_id(info)}
    for n in range(2):
        Target(nodes[n], lambda image: f"rbd:vms/{image}:conf={ceph_v2.conf}:id=imagestore:"
                                       f"keyring={ceph_v2.keyring}").compare(path, "qcow2", f"{image_id}-{n}")


@pytest.fixture
def no_qemu_img(monkeypatch: pytest.MonkeyPatch) -> Callable[[], list[list[str]]]:
    """Once called (after the test made its images): records every process started from then on,
    and starts none."""
    started: list[list[str]] = []

    def popen(argv: list[str], *args: object, **kwargs: object) -> None:
        started.append(argv)
        raise AssertionError(f"a process was started: {argv}")

    def arm() -> list[list[str]]:
        monkeypatch.setattr(qemu.subprocess, "Popen", popen)
        return started

    return arm


@pytest.mark.xfs
@pytest.mark.parametrize("kind", ["qcow2-backing-file", "qcow2-data-file", "vmdk-flat-extent"])
def test_unsafe_sources_are_refused_before_qemu_img_runs(kind: str, xfs_mount: Path, opened: Opened, lenient: Store,
                                                         tmp_path: Path, image_id: str,
                                                         no_qemu_img: Callable[[], list[list[str]]]) -> None:
    made = {"qcow2-backing-file": ("qcow2", ["-f", "qcow2", "-u", "-b", "/etc/passwd", "-F", "raw"]),
            "qcow2-data-file": ("qcow2", ["-f", "qcow2", "-o", f"data_file={tmp_path / 'ext.data'},data_file_raw=on"]),
            "vmdk-flat-extent": ("vmdk", ["-f", "vmdk", "-o", "subformat=monolithicFlat"])}[kind]
    path = tmp_path / "evil.img"
    _run("qemu-img", "create", "-q", *made[1], str(path), "16M")
    info = lenient.add(image_id, path.read_bytes(), format=made[0])  # kept as told: no inspection there
    started = no_qemu_img()
    vms = opened({"driver": "file", "root": str(xfs_mount / f"evil-{tmp_path.name}")}, "vms")
    with pytest.raises(UnsafeImage) as err:
        lenient.clone(info.location, vms, name=f"{image_id}-a", format="raw")
    assert err.value.image == image_id and err.value.reasons
    assert started == [] and list(vms._driver.list_images()) == []


def test_a_changed_source_is_refused_and_nothing_is_left(opened: Opened, source_store: Store, tmp_path: Path,
                                                         image_id: str,
                                                         no_qemu_img: Callable[[], list[list[str]]]) -> None:
    vms = opened({"driver": "file", "root": str(tmp_path / "vms")}, "vms")
    path = _source(tmp_path, "qcow2", image_id)
    info = source_store.add(image_id, path.read_bytes(), format="qcow2")
    stored = tmp_path / "images" / image_id
    os.chmod(stored, 0o600)
    with open(stored, "r+b") as fh:  # bit rot, or an object replaced behind the store's back
        fh.seek(os.path.getsize(stored) - 100)
        fh.write(b"\xff")
    started = no_qemu_img()
    with pytest.raises(ChecksumMismatch):
        source_store.clone(info.location, vms, name=f"{image_id}-a", format="raw")
    assert started == [] and list(vms._driver.list_images()) == []


def test_a_failed_conversion_leaves_nothing_after_one_sweep(opened: Opened, source_store: Store, tmp_path: Path,
                                                            image_id: str, monkeypatch: pytest.MonkeyPatch) -> None:
    vms = opened({"driver": "file", "root": str(tmp_path / "vms")}, "vms")
    info = source_store.add(image_id, _source(tmp_path, "vdi", image_id).read_bytes(), format="vdi")
    fake = tmp_path / "qemu-img"
    fake.write_text("#!/bin/sh\necho 'qemu-img: Could not open: simulated failure' >&2\nexit 1\n")
    fake.chmod(0o755)
    monkeypatch.setattr(qemu.shutil, "which", lambda name: str(fake))
    work = Path(os.environ.get("TMPDIR", "/tmp"))
    before = {p.name for p in work.glob(f"imagestore-convert-{os.getpid()}-*")}
    with pytest.raises(BackendError) as err:
        source_store.clone(info.location, vms, name=f"{image_id}-a", format="raw")
    assert "simulated failure" in str(err.value) and err.value.image == image_id
    assert {p.name for p in work.glob(f"imagestore-convert-{os.getpid()}-*")} == before  # no spool left
    vms.sweep(0)
    assert list(vms._driver.list_images()) == []
    assert not (tmp_path / "vms" / ".tmp").exists() or os.listdir(tmp_path / "vms" / ".tmp") == []


def test_raw_clone_into_a_store_without_cow_is_a_converted_copy(opened: Opened, source_store: Store, tmp_path: Path,
                                                                image_id: str) -> None:
    vms = opened({"driver": "file", "root": str(tmp_path / "vms")}, "vms")  # no reflink here
    assert not vms.capabilities.cow_clone
    path = _source(tmp_path, "vhdx", image_id)
    info = source_store.add(image_id, path.read_bytes(), format="vhdx")
    check = source_store.can_clone(info.location, vms, format="raw")
    assert (check.mode, check.code) == ("stream", CloneRefusal.NO_NATIVE_CLONE)
    made = source_store.clone(info.location, vms, name=f"{image_id}-a", format="raw")
    assert (made.mode, made.converted, made.base) == ("stream", True, None)
    Target(vms, lambda image: str(tmp_path / "vms" / image)).compare(path, "vhdx", f"{image_id}-a")
    assert os.stat(tmp_path / "vms" / f"{image_id}-a").st_blocks * 512 < DISK // 2  # holes stay holes
    assert _bases(vms) == []


def test_what_cannot_be_converted_says_why(opened: Opened, source_store: Store, lenient: Store, tmp_path: Path,
                                          image_id: str) -> None:
    vms = opened({"driver": "file", "root": str(tmp_path / "vms")}, "vms")
    iso = lenient.add(image_id, b"\0" * 4096, format="iso")
    check = lenient.can_clone(iso.location, vms, format="raw")
    assert (check.possible, check.code) == (False, CloneRefusal.NOT_CONVERTIBLE)
    with pytest.raises(Exception, match="cannot be converted"):
        lenient.clone(iso.location, vms, name="x", format="raw")
    writer = lenient._driver.open_writer(f"{image_id}-bare", 4096)  # no checksum at all: as glance_store writes
    writer.write(memoryview(_source(tmp_path, "qcow2", image_id).read_bytes()[:4096]))
    bare = writer.commit({"format": "qcow2"})
    check = lenient.can_clone(bare.with_store("lenient"), vms, format="raw")
    assert (check.possible, check.code) == (False, CloneRefusal.NO_CHECKSUM)
    with pytest.raises(Exception, match="format must be None or 'raw'"):
        lenient.can_clone(iso.location, vms, format="qcow2")

