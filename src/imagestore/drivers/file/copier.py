"""Copying an image file into a writer's temporary in the kernel: a reflink (``FICLONE``,
O(1), grown with a hole if asked) or ``copy_file_range`` within one filesystem."""

from __future__ import annotations

import fcntl
import os

from ...spi.contract import CloneMode
from .core import FICLONE

__all__ = ["copy_in_kernel"]


def copy_in_kernel(src: int, dst: int, size: int, mode: CloneMode, grow_to: int | None) -> None:
    """Put the ``size`` bytes of ``src`` into ``dst``: ``mode`` ``cow`` reflinks (then grows
    ``dst`` to ``grow_to`` with a hole that reads zeros), any other copies them."""
    if mode == "cow":
        fcntl.ioctl(dst, FICLONE, src)
        if grow_to is not None and grow_to > size:
            os.ftruncate(dst, grow_to)  # grown: a hole, reads zeros
    else:
        left = size
        while left > 0:
            n = os.copy_file_range(src, dst, min(left, 1 << 30))
            if n == 0:
                break
            left -= n
