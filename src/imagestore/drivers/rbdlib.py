"""Deprecated alias of :mod:`imagestore.drivers.rbd.lib` (the ctypes librbd binding), kept for
one release for third-party code; it re-exports the same objects, so the libraries load once."""

from __future__ import annotations

import warnings

from .rbd.lib import (
    INSTALL_HINT,
    OP_FEATURE_CLONE_CHILD,
    OP_FEATURE_CLONE_PARENT,
    RBD_FEATURE_LAYERING,
    TRASH_SOURCE_USER,
    ChildSpec,
    Cluster,
    Completion,
    Image,
    ParentSpec,
    RbdError,
    RbdTransient,
    TrashEntry,
    error_for,
    iter_chunks,
    librbd_version,
    load,
    split_mon_host,
)

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

warnings.warn(
    "imagestore.drivers.rbdlib is deprecated; import imagestore.drivers.rbd.lib instead",
    DeprecationWarning,
    stacklevel=2,
)
