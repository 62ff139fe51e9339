"""File driver specifics: root confinement, temporaries of dead writers, modes, xattrs."""

from __future__ import annotations

import os
import stat
import time
from pathlib import Path

import pytest

import imagestore
from imagestore import InvalidLocation, Location, NotFound
from imagestore.drivers import file as file_driver


@pytest.fixture
def store(tmp_path: Path) -> imagestore.Store:
    return imagestore.open_store({"driver": "file", "root": str(tmp_path / "root"), "file_mode": 0o600}, "f")


def test_symlink_in_root_is_not_followed(store: imagestore.Store, tmp_path: Path) -> None:
    secret = tmp_path / "outside.txt"
    secret.write_text("host file")
    store.add("real", b"x", 1)
    os.symlink(secret, tmp_path / "root" / "link")
    for op in (store.stat, store.get, store.locate, store.delete):
        with pytest.raises(NotFound):
            op("link")
    assert secret.read_text() == "host file"


def test_symlinked_tmp_dir_is_refused(tmp_path: Path) -> None:
    root = tmp_path / "root"
    root.mkdir()
    (tmp_path / "elsewhere").mkdir()
    os.symlink(tmp_path / "elsewhere", root / ".tmp")
    store = imagestore.open_store({"driver": "file", "root": str(root)}, "f")
    with pytest.raises(imagestore.ImageStoreError):
        store.add("x", b"data", 4)
    assert list((tmp_path / "elsewhere").iterdir()) == []


def test_non_regular_files_are_not_images(store: imagestore.Store, tmp_path: Path) -> None:
    store.add("seed", b"x", 1)
    os.mkfifo(tmp_path / "root" / "fifo")
    (tmp_path / "root" / "dir").mkdir()
    for name in ("fifo", "dir"):
        with pytest.raises(NotFound):
            store.stat(name)
        with pytest.raises(NotFound):
            store.delete(name)


def test_locations_outside_root_refused(store: imagestore.Store, tmp_path: Path) -> None:
    info = store.add("img", b"abc", 3)
    parent = Location("file", "", (*info.location.path[:-2], "img"), "f")
    for bad in (parent, Location("file", "", ("etc", "shadow"), "f"),
                Location("file", "", (*info.location.path[:-1], ".tmp"), "f")):
        with pytest.raises(InvalidLocation):
            store.stat(bad)


def test_file_mode_and_xattrs(store: imagestore.Store, tmp_path: Path) -> None:
    info = store.add("img", b"abc", 3)
    path = tmp_path / "root" / "img"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert os.getxattr(path, "user.imagestore.checksum.md5").decode() == info.checksums["md5"]


def test_sweep_removes_dead_writers_only(store: imagestore.Store, tmp_path: Path,
                                        monkeypatch: pytest.MonkeyPatch) -> None:
    store.add("seed", b"x", 1)
    live = store.driver.open_writer("live", None)  # holds its flock
    tmp = tmp_path / "root" / ".tmp"
    dead = tmp / "img.1.dead"
    dead.write_bytes(b"partial")
    old = time.time() - 3600
    os.utime(dead, (old, old))
    young = tmp / "img.2.young"
    young.write_bytes(b"partial")
    os.utime(tmp / live.tmp_name, (old, old))
    assert store.sweep() == 1
    assert not dead.exists() and young.exists() and (tmp / live.tmp_name).exists()
    live.write(memoryview(b"data"))
    live.commit({})
    assert store.get("live", verify=False) == b"data"
    monkeypatch.setattr(file_driver, "_STALE_AFTER", 0.0)
    assert store.sweep() == 1 and not young.exists()


def test_reflink_probe_false_on_this_filesystem(store: imagestore.Store) -> None:
    store.add("seed", b"x", 1)
    assert store.capabilities.cow_clone is store.driver.reflink_capable()
    assert os.listdir(store.driver.root + "/.tmp") == []


def test_clone_across_filesystems_streams(store: imagestore.Store) -> None:
    shm = "/dev/shm"
    if not os.path.isdir(shm) or os.stat(shm).st_dev == os.stat(store.driver.root.rsplit("/", 1)[0]).st_dev:
        pytest.fail("this test needs /dev/shm on a filesystem of its own")
    other = imagestore.open_store({"driver": "file", "root": f"{shm}/imagestore-test-{os.getpid()}"}, "shm")
    info = store.add("img", b"abc" * 1000, 3000)
    check = store.can_clone(info.location, other)
    assert check.mode == "stream" and "different filesystems" in check.reason
    res = store.clone(info.location, other)
    assert other.get(res.location) == b"abc" * 1000
    other.delete(res.location)
