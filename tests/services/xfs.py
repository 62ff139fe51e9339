"""A real XFS filesystem with reflink=1 on a loop device, made by scripts/xfs-mount.sh."""

from __future__ import annotations

import os
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from .require import unavailable

SCRIPTS = Path(__file__).resolve().parents[2] / "scripts"


@pytest.fixture(scope="session")
def xfs_mount() -> Iterator[Path]:
    """A mounted XFS reflink filesystem for the session (root only), unmounted at the end."""
    if os.geteuid() != 0:
        unavailable("the XFS reflink mount", "needs root for losetup and mount")
    mnt = Path(tempfile.mkdtemp(prefix="isxfs-", dir="/tmp"))
    proc = subprocess.run(["bash", str(SCRIPTS / "xfs-mount.sh"), str(mnt), "8G"],
                          capture_output=True, text=True, timeout=300)
    if proc.returncode != 0:
        unavailable("the XFS reflink mount", proc.stderr.strip()[-2000:])
    try:
        yield mnt
    finally:
        subprocess.run(["bash", str(SCRIPTS / "xfs-umount.sh"), str(mnt)], capture_output=True, timeout=120)
