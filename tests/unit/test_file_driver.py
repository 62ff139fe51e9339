"""File driver specifics: root confinement, temporaries of dead writers, modes, xattrs."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import time
from pathlib import Path

import pytest

import imagestore
from imagestore import InvalidLocation, Location, NotFound
from imagestore.drivers.file import sweeper as file_sweeper


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
    live = store._driver.open_writer("live", None)  # holds its flock
    tmp = tmp_path / "root" / ".tmp"
    dead = tmp / "img.1.dead"
    dead.write_bytes(b"partial" * 1000)
    old = time.time() - 3600
    os.utime(dead, (old, old))
    young = tmp / "img.2.young"
    young.write_bytes(b"partial")
    os.utime(tmp / live.tmp_name, (old, old))
    report = store.sweep(60)
    assert report.removed == 1 and report.bytes_freed >= 7000
    assert not dead.exists() and young.exists() and (tmp / live.tmp_name).exists()
    live.write(memoryview(b"data"))
    live.commit({})
    assert store.get("live", verify=False) == b"data"
    monkeypatch.setattr(file_sweeper, "_MIN_AGE", 0.0)
    assert store.sweep(0).removed == 1 and not young.exists()


def test_probes_leave_a_fresh_root_empty(tmp_path: Path) -> None:
    """Opening, listing and reading make ROOT but put nothing in it; the first write makes .tmp."""
    root = tmp_path / "fresh"
    store = imagestore.open_store({"driver": "file", "root": str(root)}, "f")
    assert root.is_dir() and os.listdir(root) == []
    assert store.capabilities.cow_clone is False  # this filesystem (ext4/overlay) has no reflink
    with pytest.raises(NotFound):
        store.stat("nothing")
    assert store.sweep(0).removed == 0 and os.listdir(root) == []
    store.add("first", b"abc", 3)
    assert sorted(os.listdir(root)) == [".tmp", "first"] and os.listdir(root / ".tmp") == []


def test_a_vanished_root_is_not_recreated(tmp_path: Path) -> None:
    """An unmounted or removed root makes writes fail naming it; nothing lands underneath."""
    root = tmp_path / "mnt"
    store = imagestore.open_store({"driver": "file", "root": str(root)}, "f")
    store.add("before", b"abc", 3)
    moved = tmp_path / "moved-away"
    root.rename(moved)
    with pytest.raises(imagestore.BackendError) as err:
        store.add("after", b"abcdef", 6)
    assert str(root) in str(err.value) and "gone" in str(err.value)
    assert not root.exists()
    root.mkdir()  # something else mounted or made there: still not the store's root
    with pytest.raises(imagestore.BackendError):
        store.add("after", b"abcdef", 6)
    assert os.listdir(root) == [] and "after" not in os.listdir(moved)


def test_disk_full_is_no_space_and_leaves_nothing(tmp_path: Path) -> None:
    """A real full filesystem (a 4 MiB tmpfs): NoSpace naming store and image, no temporary left."""
    if os.geteuid() != 0:
        pytest.fail("this test needs root to mount a tmpfs", pytrace=False)
    mnt = tmp_path / "small"
    mnt.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", str(mnt)], check=True)
    store = imagestore.open_store({"driver": "file", "root": str(mnt / "images")}, "small")
    try:
        with pytest.raises(imagestore.NoSpace) as err:
            store.add("too-big", os.urandom(6 << 20))
        assert "'small'" in str(err.value) and "'too-big'" in str(err.value)
        assert os.listdir(mnt / "images" / ".tmp") == []
        with pytest.raises(NotFound):
            store.stat("too-big")
        assert store.get(store.add("fits", b"x" * 1000, 1000).location) == b"x" * 1000
    finally:
        store.close()
        subprocess.run(["umount", str(mnt)], check=True)


def test_cli_reports_a_full_disk_in_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from imagestore.cli import main

    if os.geteuid() != 0:
        pytest.fail("this test needs root to mount a tmpfs", pytrace=False)
    mnt = tmp_path / "small"
    mnt.mkdir()
    src = tmp_path / "big.raw"
    src.write_bytes(os.urandom(6 << 20))
    cfg = tmp_path / "c.toml"
    cfg.write_text(f'[stores.s]\ndriver = "file"\nroot = "{mnt}/images"\n')
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", str(mnt)], check=True)
    try:
        code = main(["--config", str(cfg), "--json", "add", "big", str(src)])
    finally:
        subprocess.run(["umount", str(mnt)], check=True)
    out, err = capsys.readouterr()
    assert code == 1 and out == ""
    [line] = err.strip().splitlines()
    assert json.loads(line)["error"] == "NoSpace"


def test_clone_across_filesystems_streams(store: imagestore.Store) -> None:
    shm = "/dev/shm"
    if not os.path.isdir(shm) or os.stat(shm).st_dev == os.stat(store._driver.root.rsplit("/", 1)[0]).st_dev:
        pytest.fail("this test needs /dev/shm on a filesystem of its own")
    other = imagestore.open_store({"driver": "file", "root": f"{shm}/imagestore-test-{os.getpid()}"}, "shm")
    info = store.add("img", b"abc" * 1000, 3000)
    check = store.can_clone(info.location, other)
    assert check.mode == "stream" and "different filesystems" in check.reason
    res = store.clone(info.location, other)
    assert other.get(res.location) == b"abc" * 1000
    other.delete(res.location)
