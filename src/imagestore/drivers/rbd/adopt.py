"""Adopting an RBD image a consumer wrote itself (Nova's direct snapshot, a volume uploaded
into the images pool): its protected snapshot is what makes it immutable.

The snapshot is created if the consumer made none, and protected if it is not; abort
undoes exactly that, so a refused image is left with the snapshots it had.
"""

from __future__ import annotations

from collections.abc import Mapping

from ...errors import AlreadyExists, NotFound
from ...location import Location
from .core import META_PREFIX, RbdStore
from .lib import Image

__all__ = ["RbdAdoption"]


class RbdAdoption:
    """One adoption in progress: ``location`` names the protected snapshot to read."""

    def __init__(self, driver: RbdStore, pool: str, name: str, snap: str) -> None:
        self._d, self._pool, self._name, self._snap = driver, pool, name, snap
        self.created = self.protected = False
        with driver.cluster.open(pool, name) as img:
            if any(key.startswith(META_PREFIX) for key in img.metadata_list()):
                raise AlreadyExists("the image is registered already", store=driver.name, image=name)
            if snap not in {s for _, s, _ in img.snap_list()}:
                img.snap_create(snap)
                self.created = True
            try:
                if not img.snap_is_protected(snap):
                    img.snap_protect(snap)
                    self.protected = True
            except BaseException:
                self._undo(img)
                raise
        with driver.cluster.open(pool, name, snap=snap, read_only=True) as view:
            self.size = view.size()
        self.location = Location("rbd", driver.fsid, (pool, name, snap), driver.name)

    def _undo(self, img: Image) -> None:
        if self.protected:
            img.snap_unprotect(self._snap)
            self.protected = False
        if self.created:
            img.snap_remove(self._snap)
            self.created = False

    def commit(self, metadata: Mapping[str, str]) -> Location:
        """Write the facade's metadata on the image; the snapshot stays protected."""
        with self._d.cluster.open(self._pool, self._name) as img:
            for key, value in metadata.items():
                img.metadata_set(META_PREFIX + key, value)
        self.created = self.protected = False  # nothing to undo any more
        return self.location

    def abort(self) -> None:
        """Unprotect and remove only what this adoption made; the image's data is never touched."""
        if not (self.created or self.protected):
            return
        try:
            with self._d.cluster.open(self._pool, self._name) as img:
                self._undo(img)
        except NotFound:
            pass
