"""Removing the temporaries of dead writers from ``ROOT/.tmp``: a file no writer holds
``flock``-ed, older than the caller's age (and never younger than ``_MIN_AGE``)."""

from __future__ import annotations

import fcntl
import os
import time

from ...spi.contract import SweepReport
from .core import OPEN_FLAGS, TMP

__all__ = ["sweep_tmp"]

_MIN_AGE = 10.0  # seconds: a temporary younger than this may not hold its writer's lock yet


def sweep_tmp(root_fd: int, older_than: float, deadline: float | None = None) -> SweepReport:
    """Remove ``.tmp`` files whose writer is dead (no flock held) and older than ``older_than``."""
    report = SweepReport()
    try:
        tmp_fd = os.open(TMP, os.O_RDONLY | os.O_DIRECTORY | OPEN_FLAGS, dir_fd=root_fd)
    except FileNotFoundError:
        return report  # nothing was ever written
    try:
        now = time.time()
        for entry in os.scandir(tmp_fd):
            if deadline is not None and time.monotonic() > deadline:
                break
            try:
                st = entry.stat(follow_symlinks=False)
                if now - st.st_mtime < max(older_than, _MIN_AGE):
                    continue
                fd = os.open(entry.name, os.O_RDONLY | OPEN_FLAGS | os.O_NONBLOCK, dir_fd=tmp_fd)
            except OSError:
                continue
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                os.unlink(entry.name, dir_fd=tmp_fd)  # while locked: no writer can be using it
            except (BlockingIOError, FileNotFoundError):
                continue  # a live writer holds it, or another sweep removed it
            finally:
                os.close(fd)
            report += SweepReport(1, st.st_blocks * 512)
    finally:
        os.close(tmp_fd)
    return report
