"""The Ceph RBD driver (``imagestore.drivers.rbd:RbdDriver``): the driver class in
:mod:`.backend`, its parts in sibling modules, the ctypes librbd binding in :mod:`.lib`."""

from __future__ import annotations

from .backend import RbdDriver
from .core import META_PREFIX, TMP_PREFIX

__all__ = ["META_PREFIX", "TMP_PREFIX", "RbdDriver"]
