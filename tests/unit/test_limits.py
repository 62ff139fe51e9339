"""Denial-of-service limits of adds: concurrent uploads, idle (slow-loris) uploads, free space."""

from __future__ import annotations

import os
import subprocess
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

import imagestore
from imagestore import ConfigError, NoSpace, NotFound
from imagestore.errors import Busy, UploadTimeout

MiB = 1 << 20


def test_max_concurrent_adds_refuses_the_next_upload(tmp_path: Path) -> None:
    store = imagestore.open_store({"driver": "file", "root": str(tmp_path / "r"), "max_concurrent_adds": 1}, "f")
    started, release = threading.Event(), threading.Event()
    results: list[object] = []

    def slow() -> Iterator[bytes]:
        yield b"a" * MiB
        started.set()
        release.wait(30)
        yield b"b" * MiB

    thread = threading.Thread(target=lambda: results.append(store.add("first", slow())))
    thread.start()
    try:
        assert started.wait(30)
        with pytest.raises(Busy) as err:
            store.add("second", b"x" * 10, 10)
        assert "max_concurrent_adds=1" in str(err.value)
    finally:
        release.set()
        thread.join(30)
    assert isinstance(results[0], imagestore.ImageInfo)
    assert store.add("second", b"x" * 10, 10).size == 10  # the slot is free again
    with pytest.raises(NotFound):
        store.stat("never")


def test_an_idle_upload_is_aborted_while_its_source_still_hangs(tmp_path: Path) -> None:
    root = tmp_path / "r"
    store = imagestore.open_store({"driver": "file", "root": str(root), "idle_timeout": "0.5s"}, "f")
    stalled, release = threading.Event(), threading.Event()
    outcome: list[BaseException] = []

    def slow_loris() -> Iterator[bytes]:
        yield b"z" * (3 * MiB)
        stalled.set()
        release.wait(30)  # the client stops sending
        yield b"more"

    def run() -> None:
        try:
            store.add("loris", slow_loris())
        except BaseException as exc:  # noqa: BLE001
            outcome.append(exc)

    thread = threading.Thread(target=run)
    thread.start()
    try:
        assert stalled.wait(30)
        deadline = time.monotonic() + 10
        while os.listdir(root / ".tmp"):  # aborted by the watch while the source is still blocked
            assert time.monotonic() < deadline, "the idle upload kept its temporary"
            time.sleep(0.05)
    finally:
        release.set()
        thread.join(30)
    assert len(outcome) == 1 and isinstance(outcome[0], UploadTimeout), outcome
    assert "idle_timeout" in str(outcome[0]) and "'loris'" in str(outcome[0])
    with pytest.raises(NotFound):
        store.stat("loris")
    assert store.add("loris", b"a steady upload", 15).size == 15


def test_idle_timeout_can_be_turned_off_and_is_validated(tmp_path: Path) -> None:
    store = imagestore.open_store({"driver": "memory", "idle_timeout": 0}, "m")
    assert store.settings.idle_timeout is None
    with pytest.raises(ConfigError) as err:
        imagestore.open_store({"driver": "memory", "idle_timeout": "soon"}, "m")
    assert err.value.key == "stores.m.idle_timeout"
    with pytest.raises(ConfigError) as err:
        imagestore.open_store({"driver": "memory", "max_concurrent_adds": 0}, "m")
    assert err.value.key == "stores.m.max_concurrent_adds"


def test_a_declared_size_larger_than_the_free_space_is_refused_before_any_byte(tmp_path: Path) -> None:
    if os.geteuid() != 0:
        pytest.fail("this test needs root to mount a tmpfs", pytrace=False)
    mnt = tmp_path / f"small-{uuid.uuid4().hex[:6]}"
    mnt.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", str(mnt)], check=True)
    store = imagestore.open_store({"driver": "file", "root": str(mnt / "images")}, "small")
    pulled = 0

    def source() -> Iterator[bytes]:
        nonlocal pulled
        for _ in range(6):
            pulled += MiB
            yield b"\1" * MiB

    try:
        with pytest.raises(NoSpace) as err:
            store.add("big", source(), 6 * MiB)
        assert pulled == 0 and "does not fit" in str(err.value)
        assert not (mnt / "images" / ".tmp").exists() or os.listdir(mnt / "images" / ".tmp") == []
    finally:
        store.close()
        subprocess.run(["umount", str(mnt)], check=True)
