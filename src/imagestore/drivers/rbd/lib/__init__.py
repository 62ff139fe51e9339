"""A small typed ctypes shim over ``librados.so.2`` and ``librbd.so.1``.

It covers exactly what the RBD driver needs (connect, images, snapshots, clones,
trash, image metadata, aio) and works on any CPython. Every negative errno
becomes an imagestore error (:func:`error_for`); messages name the operation,
the pool and the image, never a key.
"""

from __future__ import annotations

from ._ffi import (
    INSTALL_HINT,
    OP_FEATURE_CLONE_CHILD,
    OP_FEATURE_CLONE_PARENT,
    RBD_FEATURE_LAYERING,
    TRASH_SOURCE_USER,
    RbdError,
    RbdTransient,
    error_for,
    librbd_version,
    load,
)
from .cluster import Cluster, TrashEntry, split_mon_host
from .image import ChildSpec, Completion, Image, ParentSpec, iter_chunks

__all__ = [
    "INSTALL_HINT",
    "OP_FEATURE_CLONE_CHILD",
    "OP_FEATURE_CLONE_PARENT",
    "RBD_FEATURE_LAYERING",
    "TRASH_SOURCE_USER",
    "ChildSpec",
    "Cluster",
    "Completion",
    "Image",
    "ParentSpec",
    "RbdError",
    "RbdTransient",
    "TrashEntry",
    "error_for",
    "iter_chunks",
    "librbd_version",
    "load",
    "split_mon_host",
]
