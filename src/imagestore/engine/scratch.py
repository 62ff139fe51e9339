"""Local scratch directories for conversions (the verified spool, qemu-img's socket), under
``$TMPDIR``: checked for room before the first byte, locked while in use, and removed when the
conversion ends. A process killed mid-conversion cannot remove its own: the next conversion
removes every scratch directory whose lock no process holds (an ``flock``, so it works across
processes and containers that share the directory, whatever their pids)."""

from __future__ import annotations

import fcntl
import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager

from ..errors import NoSpace

__all__ = ["PREFIX", "reap", "scratch"]

PREFIX = "imagestore-convert-"
_LOCK = ".lock"


@contextmanager
def scratch(need: int, *, store: str, image: str) -> Iterator[str]:
    """A new, locked scratch directory with room for ``need`` bytes; NoSpace when ``$TMPDIR``
    has less. Stale scratch directories of dead conversions are removed first."""
    root = tempfile.gettempdir()
    reap(root)
    free = shutil.disk_usage(root).free
    if need > free:
        raise NoSpace(f"converting needs up to {need} bytes of scratch space in {root} ($TMPDIR), which has "
                      f"{free} free", store=store, image=image)
    with tempfile.TemporaryDirectory(prefix=f"{PREFIX}{os.getpid()}-", dir=root) as work:
        fd = _lock(work)
        try:
            yield work
        finally:
            os.close(fd)


def _lock(work: str) -> int:
    """Hold the directory's lock; it gets its name only once held, so that no reaper can take a
    lock file that its owner has not locked yet."""
    pending = os.path.join(work, _LOCK + ".new")
    fd = os.open(pending, os.O_CREAT | os.O_RDWR | os.O_CLOEXEC, 0o600)
    fcntl.flock(fd, fcntl.LOCK_EX)
    os.rename(pending, os.path.join(work, _LOCK))
    return fd


def reap(root: str) -> list[str]:
    """Remove the scratch directories in ``root`` that are this user's and whose lock no process
    holds (their conversion died); returns their names."""
    removed: list[str] = []
    try:
        entries = [e for e in os.scandir(root) if e.name.startswith(PREFIX)]
    except OSError:
        return removed
    for entry in entries:
        try:
            if not entry.is_dir(follow_symlinks=False) or entry.stat(follow_symlinks=False).st_uid != os.getuid():
                continue
            fd = os.open(os.path.join(entry.path, _LOCK), os.O_RDWR | os.O_NOFOLLOW | os.O_CLOEXEC)
        except OSError:
            continue  # no lock yet (being set up) or gone already
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            continue  # a conversion is using it
        try:
            shutil.rmtree(entry.path, ignore_errors=True)
            removed.append(entry.name)
        finally:
            os.close(fd)
    return removed
