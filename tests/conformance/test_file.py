"""The conformance suite on the file driver: an ordinary filesystem and a real XFS reflink mount."""

from __future__ import annotations

import hashlib
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import imagestore
from tests.services.require import unavailable

from .suite import Backend, ConformanceSuite, ReadOnlySuite


class FileBackend(Backend):
    def __init__(self, base: Path, native: str) -> None:
        self.root = base / "images"
        self.sibling_root = base / "vms"
        self.native_clone_mode = native
        # a reflink filesystem (XFS reflink=1) clones by FICLONE; every filesystem copies in the kernel
        self.capabilities = {"write": True, "range_read": True, "cow_clone": native == "cow", "server_copy": True,
                             "direct_access": True, "presign": False, "atomic_create": True, "unknown_size": True,
                             "deferred_delete": False, "persistent": True, "adopt": True, "max_object_size": None}

    def spec(self) -> dict[str, Any]:
        return {"driver": "file", "root": str(self.root)}

    def sibling_spec(self) -> dict[str, Any]:
        return {"driver": "file", "root": str(self.sibling_root)}

    def place_native(self, name: str, data: bytes) -> str:
        """A consumer writing a file straight into the store's root."""
        self.root.mkdir(parents=True, exist_ok=True)
        path = self.root / name
        path.write_bytes(data)
        return f"file://{path}"  # glance_store's form of a file location

    def native_state(self, name: str) -> object:
        path = self.root / name
        st = path.stat()
        xattrs = sorted((k, os.getxattr(path, k)) for k in os.listxattr(path))
        return hashlib.sha256(path.read_bytes()).hexdigest(), st.st_mode, st.st_mtime_ns, st.st_ctime_ns, xattrs

    def leftovers(self) -> list[str]:
        found = []
        for root in (self.root, self.sibling_root):
            tmp = root / ".tmp"
            if tmp.is_dir():
                found += [str(p) for p in tmp.iterdir()]
        return found


class TestFileOrdinary(ConformanceSuite):
    """On the test machine's own filesystem (ext4 or overlay: no reflink)."""

    @pytest.fixture
    def backend(self, tmp_path: Path) -> Backend:
        b = FileBackend(tmp_path, "server_copy")
        assert not b.make().capabilities.cow_clone, "this filesystem reflinks; the XFS class covers that"
        return b


@pytest.mark.xfs
class TestFileXfsReflink(ConformanceSuite):
    """On a real XFS filesystem with reflink=1: clones are FICLONE (mode cow)."""

    @pytest.fixture
    def backend(self, xfs_mount: Path, request: pytest.FixtureRequest) -> Iterator[Backend]:
        base = xfs_mount / f"t{abs(hash(request.node.nodeid)) % 10**10}-{os.getpid()}"
        base.mkdir()
        b = FileBackend(base, "cow")
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
