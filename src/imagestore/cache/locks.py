"""Cross-process coordination of a compute-node cache: per-key flocks, leases, and who
has an entry open.

A fetch or a use holds the key's lock shared; filling, re-checking or removing an entry
holds it exclusive, so an entry is never removed under a user of the API. Processes
that opened an entry by path (a hypervisor) are found in ``/proc/*/fd``.
"""

from __future__ import annotations

import fcntl
import os
import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from ..errors import InvalidArgument

__all__ = ["key_lock", "leased", "open_paths", "try_key_lock", "valid_holder"]

_HOLDER_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")


def _open_lock(path: Path) -> int:
    return os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)


@contextmanager
def key_lock(path: Path, *, exclusive: bool) -> Iterator[None]:
    """Hold the flock at ``path`` (blocking) for the ``with`` body."""
    fd = _open_lock(path)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH)
        yield
    finally:
        os.close(fd)


def try_key_lock(path: Path) -> int | None:
    """An fd holding the exclusive flock at ``path``, or None if someone holds it."""
    fd = _open_lock(path)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        return None
    return fd


def valid_holder(holder: str) -> str:
    """A lease holder name (an instance uuid, a volume id...) safe as a file name."""
    if not isinstance(holder, str) or not _HOLDER_RE.fullmatch(holder) or ".." in holder:
        raise InvalidArgument(f"bad lease holder {holder!r}: letters, digits, '.', '_' or '-'")
    return holder


def leased(lease_dir: Path) -> list[str]:
    """The holders of an entry's leases."""
    try:
        return sorted(os.listdir(lease_dir))
    except FileNotFoundError:
        return []


def open_paths(directory: Path) -> set[str]:
    """Paths under ``directory`` that some process has open (by ``/proc/PID/fd``); processes
    this one may not inspect are not seen (run the cache as root, or as the hypervisor's user)."""
    prefix = os.path.realpath(directory) + os.sep
    found: set[str] = set()
    try:
        pids = [p for p in os.listdir("/proc") if p.isdigit()]
    except OSError:
        return found
    for pid in pids:
        fd_dir = f"/proc/{pid}/fd"
        try:
            fds = os.listdir(fd_dir)
        except OSError:
            continue
        for fd in fds:
            try:
                target = os.readlink(f"{fd_dir}/{fd}")
            except OSError:
                continue
            if target.startswith(prefix):
                found.add(target)
    return found
