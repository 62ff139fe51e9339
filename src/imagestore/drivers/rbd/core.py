"""Shared state of the RBD driver: names and prefixes of its layout, the ``clone_flatten``
policy, the publish/remove steps, and the :class:`RbdStore` view of a store that the
writer, reader, adoption, cloner and sweeper get instead of the driver class."""

from __future__ import annotations

import re
import secrets
import time
from typing import Protocol

from ...errors import AlreadyExists, ConfigError, InUse, NotFound, PermissionDenied, Transient
from ...location import Location
from ...spi.retry import RetryPolicy
from .lib import Cluster

TMP_PREFIX = ".tmp."
META_PREFIX = "imagestore."  # RBD image-metadata keys of the facade's metadata
MIMIC = 13  # the Ceph release from which librbd makes clone v2 ("auto" clone format)
# what sweep leaves for a later sweep: in use, gone meanwhile, unreachable, not ours to remove
SWEEP_SKIPS = (InUse, NotFound, Transient, PermissionDenied)
_FLATTEN_RE = re.compile(r"never|always|max_depth=(\d+)")


class RbdStore(Protocol):
    """What the parts of the driver use of one rbd store (the driver is one)."""

    name: str
    cluster: Cluster
    pool: str
    user: str
    snapshot: str
    order: int
    chunk: int
    write_concurrency: int
    retry: RetryPolicy
    max_clone_depth: int | None
    min_temp_age: float

    @property
    def fsid(self) -> str:
        """The cluster fsid (connects on first use)."""
        ...

    def location_for(self, image_id: str) -> Location:
        """The location of a published image of this store."""
        ...


def parse_flatten(value: str) -> int | None:
    """The maximum clone depth allowed by a ``clone_flatten`` policy (None: unlimited)."""
    m = _FLATTEN_RE.fullmatch(value.strip()) if isinstance(value, str) else None
    if m is None:
        raise ConfigError(f"expected 'never', 'always' or 'max_depth=N', got {value!r}", key="clone_flatten")
    if value.strip() == "never":
        return None
    if value.strip() == "always":
        return 0
    return int(m.group(1))


def tmp_name(image_id: str) -> str:
    """A fresh name of a hidden temporary image for ``image_id`` (its creation second in it)."""
    return f"{TMP_PREFIX}{image_id}.{int(time.time())}.{secrets.token_hex(4)}"


def image_exists(cluster: Cluster, pool: str, name: str, snap: str | None = None) -> bool:
    """Whether the image (or its snapshot ``snap``) can be opened."""
    try:
        with cluster.open(pool, name, snap=snap, read_only=True):
            return True
    except NotFound:
        return False


def remove_fully(cluster: Cluster, pool: str, name: str) -> None:
    """Unprotect and remove every snapshot, then remove the image (NotFound if absent)."""
    with cluster.open(pool, name) as img:
        for _, snap, _ in img.snap_list():
            if img.snap_is_protected(snap):
                img.snap_unprotect(snap)
            img.snap_remove(snap)
    cluster.remove(pool, name)


def publish(store: RbdStore, tmp: str, name: str, image_id: str) -> None:
    """Rename ``tmp`` to ``name`` in the store's pool; AlreadyExists unless our image got the name.

    ``rbd_rename`` refuses a taken name, but when renames of several images to one
    name race it can return success to the losers without renaming them, so the
    result is checked: the name must now resolve to our image's id.
    """
    store.cluster.rename(store.pool, tmp, name)
    try:
        with store.cluster.open(store.pool, name, read_only=True) as img:
            winner = img.image_id()
    except NotFound:
        winner = ""
    if winner != image_id:
        raise AlreadyExists("another writer published this name first", store=store.name, image=name)
