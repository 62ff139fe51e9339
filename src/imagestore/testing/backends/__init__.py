"""One entry per backend kind: how to open its two stores, what they must be able to do, how to
reach the stored bits outside imagestore, and the teardown.

The conformance suite, the crash sweeps, the fault and load runs and the bench are written
against :class:`Backend` only, so a new backend joins them by subclassing it (and, for the
hardening runs, adding its class to :data:`BACKENDS`). Every store pair is ``images`` and
``vms``: two stores a native clone can go between (two roots of one filesystem, two pools of
one cluster, two buckets of one endpoint). Services are started elsewhere: a backend is
given endpoints and credentials.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from imagestore import NotFound, Store
from imagestore.store.tables import is_companion

from .base import CAPABILITIES, SERVER_LIMIT, STORES, Backend, BackendObject, open_table, store_source
from .file import FileBackend
from .memory import MemoryBackend
from .rbd import RbdBackend
from .s3 import S3Backend
from .swift import SwiftBackend

__all__ = ["BACKENDS", "CAPABILITIES", "SERVER_LIMIT", "STORES", "Backend", "BackendObject", "FileBackend",
           "MemoryBackend", "RbdBackend", "S3Backend", "SwiftBackend", "open_table", "store_source", "visible"]


def visible(backend: Backend, stores: Mapping[str, Store], prefix: str) -> dict[tuple[str, str], Any]:
    """``(store, id) -> ImageInfo`` of every published image of the run that ``stat`` finds (block
    tables, which the store keeps beside its images, are not images)."""
    out: dict[tuple[str, str], Any] = {}
    for obj in backend.objects(prefix):
        if obj.kind != "image" or is_companion(obj.name):
            continue
        try:
            out[(obj.store, obj.name)] = stores[obj.store].stat(obj.name)
        except NotFound:
            continue
    return out


BACKENDS: dict[str, Callable[..., Backend]] = {"file": FileBackend, "rbd": RbdBackend, "s3": S3Backend,
                                               "swift": SwiftBackend}
"""Backend kind -> its entry for the hardening runs (backends that list their objects outside
imagestore): a new backend joins the crash sweeps, fault runs and load runs by adding its class here."""
