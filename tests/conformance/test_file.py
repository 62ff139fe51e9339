"""The conformance suite on the file driver: an ordinary filesystem and a real XFS reflink mount."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

import imagestore
from imagestore.testing.backends import Backend, FileBackend
from imagestore.testing.conformance import ConformanceSuite, ReadOnlySuite
from tests.services.require import unavailable


class TestFileOrdinary(ConformanceSuite):
    """On the test machine's own filesystem (ext4 or overlay: no reflink)."""

    @pytest.fixture
    def backend(self, tmp_path: Path) -> Backend:
        b = FileBackend(tmp_path)
        assert not b.make().capabilities.cow_clone, "this filesystem reflinks; the XFS class covers that"
        return b


@pytest.mark.xfs
class TestFileXfsReflink(ConformanceSuite):
    """On a real XFS filesystem with reflink=1: clones are FICLONE (mode cow)."""

    @pytest.fixture
    def backend(self, xfs_mount: Path, request: pytest.FixtureRequest) -> Iterator[Backend]:
        base = xfs_mount / f"t{abs(hash(request.node.nodeid)) % 10**10}-{os.getpid()}"
        base.mkdir()
        b = FileBackend(base, reflink=True)
        assert b.make().capabilities.cow_clone
        yield b


@pytest.fixture
def read_only_bind(tmp_path: Path) -> Iterator[tuple[Path, Path]]:
    """A directory and a read-only bind mount of it (root only: mount)."""
    if os.geteuid() != 0:
        unavailable("a read-only bind mount", "needs root for mount")
    rw, ro = tmp_path / "rw", tmp_path / "ro"
    rw.mkdir()
    ro.mkdir()
    for cmd in (["mount", "--bind", str(rw), str(ro)], ["mount", "-o", "remount,ro,bind", str(ro)]):
        proc = subprocess.run(cmd, capture_output=True, text=True)
        if proc.returncode != 0:
            subprocess.run(["umount", str(ro)], capture_output=True)
            unavailable("a read-only bind mount", proc.stderr.strip())
    try:
        yield rw, ro
    finally:
        subprocess.run(["umount", str(ro)], capture_output=True, check=True)


class TestFileReadOnly(ReadOnlySuite):
    """A file store whose root is mounted read-only: probed as write=False when opened."""

    @pytest.fixture
    def stores(self, read_only_bind: tuple[Path, Path]) -> Iterator[tuple[imagestore.Store, imagestore.Store]]:
        rw, ro = read_only_bind
        writable = imagestore.open_store({"driver": "file", "root": str(rw)}, "rw")
        view = imagestore.open_store({"driver": "file", "root": str(ro)}, "ro")
        yield writable, view
        view.close()
        writable.close()
