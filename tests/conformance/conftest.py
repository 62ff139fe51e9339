"""Images built with qemu-img for the format-policy conformance tests."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest


def _qemu_img(tmp: Path, name: str, *args: str) -> bytes:
    if shutil.which("qemu-img") is None:
        pytest.fail("qemu-img is missing: apt install qemu-utils (.ci/run installs it)", pytrace=False)
    path = tmp / name
    subprocess.run(["qemu-img", "create", "-q", *args, str(path), "64M"], check=True)
    return path.read_bytes()


@pytest.fixture(scope="session")
def qcow2_plain(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    """A benign, empty 64 MiB qcow2 image."""
    return _qemu_img(tmp_path_factory.mktemp("qcow2"), "plain.qcow2", "-f", "qcow2")


@pytest.fixture(scope="session")
def qcow2_with_backing(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    """A qcow2 whose backing file is a host file: the classic OSSA-2015-014 attack."""
    return _qemu_img(tmp_path_factory.mktemp("qcow2b"), "evil.qcow2", "-f", "qcow2", "-u",
                     "-b", "/etc/passwd", "-F", "raw")
