"""Hostile images made with qemu-img (qemu-utils is required, as for tests/formats), a file
store to attack, and a canary file outside its root that no attack may read or touch."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

import imagestore
from imagestore import Store


def qemu_img(*args: str, cwd: Path) -> None:
    if shutil.which("qemu-img") is None:
        pytest.fail("qemu-img is missing: apt install qemu-utils (scripts/test.sh installs it)", pytrace=False)
    subprocess.run(["qemu-img", *args], cwd=cwd, check=True, capture_output=True)


@dataclass(frozen=True)
class Attack:
    """A store, its root, and a canary file outside the root with known content."""

    store: Store
    root: Path
    canary: Path
    secret_text: bytes

    def canary_intact(self) -> bool:
        return self.canary.read_bytes() == self.secret_text


@pytest.fixture
def attack(tmp_path: Path) -> Iterator[Attack]:
    outside = tmp_path / "outside"
    outside.mkdir()
    canary = outside / "host-secret"
    text = b"host secret: never served, never deleted\n" * 100
    canary.write_bytes(text)
    root = tmp_path / "root"
    store = imagestore.open_store({"driver": "file", "root": str(root), "auto_sweep": False}, "local")
    try:
        yield Attack(store, root, canary, text)
    finally:
        store.close()


@pytest.fixture(scope="session")
def hostile(tmp_path_factory: pytest.TempPathFactory) -> dict[str, bytes]:
    """Images that make a consumer read a host file, keyed by what they do."""
    d = tmp_path_factory.mktemp("hostile")
    (d / "base.raw").write_bytes(b"\x01" * (1 << 20))
    qemu_img("create", "-q", "-f", "qcow2", "-u", "-b", "/etc/passwd", "-F", "raw", "backing.qcow2", "1M", cwd=d)
    qemu_img("create", "-q", "-f", "qcow2", "-o", "data_file=/tmp/imagestore-hostile-data.raw", "datafile.qcow2",
             "1M", cwd=d)
    qemu_img("create", "-q", "-f", "qcow2", "-o", "data_file=ext.raw,data_file_raw=on", "datafile-raw.qcow2", "1M",
             cwd=d)
    qemu_img("create", "-q", "-f", "qed", "-b", "base.raw", "-F", "raw", "backing.qed", "1M", cwd=d)
    qemu_img("create", "-q", "-f", "vmdk", "-o", "subformat=monolithicFlat", "flat.vmdk", "1M", cwd=d)
    descriptor = (d / "flat.vmdk").read_text()
    (d / "flat-etc.vmdk").write_text(descriptor.replace('"flat-flat.vmdk"', '"/etc/passwd"'))
    qemu_img("create", "-q", "-f", "vmdk", "-b", "flat.vmdk", "-F", "vmdk", "child.vmdk", "1M", cwd=d)
    qemu_img("create", "-q", "-f", "qcow2", "plain.qcow2", "1M", cwd=d)
    qemu_img("create", "-q", "-f", "vmdk", "sparse.vmdk", "1M", cwd=d)
    Path("/tmp/imagestore-hostile-data.raw").unlink(missing_ok=True)
    return {name: (d / name).read_bytes() for name in ("backing.qcow2", "datafile.qcow2", "datafile-raw.qcow2",
                                                        "backing.qed", "flat-etc.vmdk", "flat.vmdk", "child.vmdk",
                                                        "plain.qcow2", "sparse.vmdk")}
