"""Opening throwaway file stores for the scenarios and timing one call."""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import imagestore

from .context import Context, settle

T = TypeVar("T")


def file_store(root: Path, **settings: Any) -> imagestore.Store:
    """A ``file`` store rooted at ``root`` with the given facade settings (e.g. ``inspect=False``)."""
    return imagestore.open_store({"driver": "file", "root": str(root), **settings}, name="bench")


def timed(ctx: Context | None, fn: Callable[..., T], *args: Any) -> tuple[float, float, T]:
    """Wall and process CPU seconds of ``fn(*args)`` and its result; with ``ctx``, waits for an
    idle machine first (see :func:`settle`)."""
    settle(ctx)
    cpu = time.process_time()
    start = time.perf_counter()
    result = fn(*args)
    return time.perf_counter() - start, time.process_time() - cpu, result


def drain(reader: imagestore.ImageReader) -> int:
    """Iterate a reader to the end (verifying if it does); returns the bytes seen."""
    total = 0
    with reader:
        for chunk in reader:
            total += len(chunk)
    return total


def remove_tree(path: Path) -> None:
    """Delete a scratch directory and everything in it, ignoring what is already gone."""
    shutil.rmtree(path, ignore_errors=True)
