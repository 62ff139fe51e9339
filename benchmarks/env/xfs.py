"""Finding or mounting the XFS reflink filesystem the cow-clone figure needs."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Callable
from pathlib import Path

from .checkout import SCRIPTS, need_checkout

REFLINK_FS = frozenset({"xfs", "btrfs", "bcachefs", "ocfs2"})


def is_mountpoint(path: Path) -> bool:
    """Whether ``path`` is a mount point (its device differs from its parent's)."""
    return os.path.ismount(path)


def fs_type(path: Path) -> str | None:
    """The filesystem type holding ``path``, from /proc/mounts (longest matching mount)."""
    best, kind = "", None
    real = os.path.realpath(path)
    try:
        with open("/proc/mounts") as fh:
            for line in fh:
                parts = line.split()
                mnt = parts[1].replace("\\040", " ")
                if (real == mnt or real.startswith(mnt.rstrip("/") + "/")) and len(mnt) >= len(best):
                    best, kind = mnt, parts[2]
    except OSError:
        return None
    return kind


class XfsMount:
    """An XFS mount for the run: an existing one, or one made by ``scripts/xfs-mount.sh``.

    ``path`` is None when there is none, and ``skip`` then says why. A mount made
    here is undone by :meth:`release`.
    """

    def __init__(self, requested: Path | None, *, allow_mount: bool, size_gib: int,
                 log: Callable[[str], None]) -> None:
        self.path: Path | None = None
        self.skip: str | None = None
        self.mounted_here = False
        if requested is not None and requested.is_dir() and fs_type(requested) in REFLINK_FS:
            self.path = requested
            return
        if requested is not None and requested.exists() and any(requested.iterdir()):
            self.skip = f"skipped: no XFS ({requested} is not on a reflink filesystem and is not empty)"
            return
        if not allow_mount:
            self.skip = ("skipped: no XFS (pass --xfs DIR with a mounted reflink XFS, or run without "
                         "--quick as root to mount one)")
            return
        if os.geteuid() != 0:
            self.skip = "skipped: no XFS (not root, so none can be mounted; pass --xfs DIR)"
            return
        script = SCRIPTS / "xfs-mount.sh"
        if not script.exists():
            self.skip = f"skipped: no XFS ({need_checkout('mounting one', 'scripts/xfs-mount.sh')}; or pass --xfs DIR)"
            return
        target = requested or Path(f"/var/tmp/imagestore-bench-xfs-{os.getpid()}")
        log(f"mounting an XFS reflink filesystem on {target} ({size_gib}G sparse)")
        proc = subprocess.run(["bash", str(script), str(target), f"{size_gib}G"],
                              capture_output=True, text=True, check=False)
        if proc.returncode != 0 or not is_mountpoint(target):
            self.skip = f"skipped: no XFS (xfs-mount.sh failed: {proc.stderr.strip()[-500:]})"
            return
        self.path = target
        self.mounted_here = True

    def release(self) -> None:
        """Unmount and delete what this run mounted (nothing otherwise)."""
        if self.mounted_here and self.path is not None:
            subprocess.run(["bash", str(SCRIPTS / "xfs-umount.sh"), str(self.path)],
                           capture_output=True, text=True, check=False)
            self.mounted_here = False
