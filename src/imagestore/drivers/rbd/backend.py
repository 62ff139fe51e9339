"""Ceph RBD driver: images in a pool, laid out the way glance_store does it.

Each image is an RBD image named by its id with a protected snapshot (``snap``)
that readers, ``locate`` and clones use, so Nova and Cinder can clone it in
place. Uploads go to a hidden temporary image that is renamed into place on
commit (atomic: of concurrent adds of one id exactly one rename wins). Metadata
lives in RBD image metadata under the ``imagestore.`` prefix. With clone v2
(``require_min_compat_client >= mimic``) an image with clones is moved to the
trash on delete and purged when its last clone goes.

This module holds the driver class; writer, reader, adopt, cloner, trash and sweeper
hold its steps and see the store only through :class:`.core.RbdStore`.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Mapping
from typing import Any, ClassVar

from ...spi.capabilities import Capabilities
from ...spi.contract import ClonePlan, CloneRequest, DeleteOutcome, DriverContext, Option, Stored, SweepReport
from ...errors import (
    AlreadyExists,
    ConfigError,
    InUse,
    InvalidLocation,
    NotFound,
    Transient,
    Unsupported,
)
from ...location import DirectAccess, Location, validate_image_id
from ...results import CloneRefusal
from ...spi.driver import Driver
from ...spi.retry import RetryPolicy, Timeouts
from . import cloner, sweeper
from .adopt import RbdAdoption
from .core import META_PREFIX, MIMIC, TMP_PREFIX, image_exists, parse_flatten
from .lib import Cluster, ParentSpec, RbdError
from .reader import RbdReader
from .trash import children, is_v2_child, purge_trashed
from .writer import RbdWriter

__all__ = ["RbdDriver"]

log = logging.getLogger("imagestore")
# concurrent deletes of one image can all see rbd_trash_move succeed, and then purge together:
# each one's open handle (a watch) makes the others' rbd_trash_remove EBUSY for milliseconds
_PURGE = RetryPolicy(retries=4, backoff=0.05, cap=0.4)


class RbdDriver(Driver):
    """Images in one Ceph RBD pool, reached with one lazily opened, shared librados connection."""

    scheme: ClassVar[str] = "rbd"
    OPTIONS: ClassVar[Mapping[str, Option]] = {
        "conf": Option(str, required=True, help="path of ceph.conf (mon_host, and keyring unless given)"),
        "pool": Option(str, required=True, help="RBD pool holding the images"),
        "user": Option(str, default="admin", help="cephx client id, without 'client.'"),
        "keyring": Option(str, default=None, help="keyring file path (default: from ceph.conf)"),
        "snapshot": Option(str, default="snap", help="name of the protected snapshot of every image"),
        "order": Option(int, default=23, help="object size as a power of two (23 = 8 MiB)"),
        "op_timeout": Option((int, float), default=None,
                             help="seconds before a mon/OSD operation fails (default: the store's io_timeout)"),
        "clone_flatten": Option(
            str, default="never", help="flatten clones made into this store: never, always or max_depth=N"
        ),
    }
    min_temp_age: float = 10.0
    """Seconds before ``sweep`` looks at a temporary image: its writer may not watch it yet."""
    default_concurrency: ClassVar[int] = 8
    """aio writes (and read-ahead reads) in flight when the store sets no ``concurrency``."""

    def __init__(
        self,
        name: str,
        *,
        conf: str,
        pool: str,
        user: str = "admin",
        keyring: str | None = None,
        snapshot: str = "snap",
        order: int = 23,
        connect_timeout: float | None = None,
        op_timeout: float | None = None,
        clone_flatten: str = "never",
    ) -> None:
        super().__init__(name)
        if not 12 <= order <= 25:
            raise ConfigError(f"must be between 12 and 25, got {order}", key=f"stores.{name}.order")
        if not pool or "/" in pool:
            raise ConfigError(f"bad pool name {pool!r}", key=f"stores.{name}.pool")
        if not snapshot or "/" in snapshot or "@" in snapshot:
            raise ConfigError(f"bad snapshot name {snapshot!r}", key=f"stores.{name}.snapshot")
        if user.startswith("client."):
            user = user[len("client.") :]
        try:
            self.max_clone_depth = parse_flatten(clone_flatten)
        except ConfigError as exc:
            raise ConfigError(str(exc).split(": ", 1)[-1], key=f"stores.{name}.clone_flatten") from None
        self.conf = conf
        self.pool = pool
        self.user = user
        self.keyring = keyring
        self.snapshot = snapshot
        self.order = order
        self.clone_flatten = clone_flatten
        self.write_concurrency = self.default_concurrency
        self.retry = RetryPolicy()
        self.clone_v2 = False
        self.chunk = 1 << min(max(order, 20), 25)  # I/O unit: one object, 1..32 MiB
        # raises DriverNotInstalled (naming the packages) or ConfigError now, connects later
        self._timeouts = (connect_timeout, op_timeout)
        connect, op = self._apply_timeouts(Timeouts())
        self.cluster = Cluster(conf, user, keyring, connect_timeout=connect, op_timeout=op, label=name)
        self._fsid: str | None = None
        self._fsid_lock = threading.Lock()

    def _apply_timeouts(self, timeouts: Timeouts) -> tuple[float, float]:
        """(connect, op) seconds for librados: this driver's own values, else the store's."""
        mine = timeouts.override(*self._timeouts)
        return mine.connect, mine.io

    # -- description ------------------------------------------------------------
    def open(self, context: DriverContext) -> Capabilities:
        """Connect, learn the fsid and whether librbd makes clone v2 (deletes can be deferred)."""
        self.write_concurrency = context.concurrency or self.default_concurrency
        self.retry = context.retry
        self.cluster.use_timeouts(*self._apply_timeouts(context.timeouts))
        self._fsid = self.cluster.fsid()
        fmt = self.cluster.conf_get("rbd_default_clone_format")
        self.clone_v2 = fmt == "2" or (fmt == "auto" and self.cluster.require_min_compat_client() >= MIMIC)
        return Capabilities(
            write=True,
            range_read=True,
            cow_clone=True,
            server_copy=False,
            direct_access=True,
            presign=False,
            atomic_create=True,
            unknown_size=True,
            deferred_delete=self.clone_v2,
            persistent=True,
            adopt=True,
            metadata_update=True,
        )

    def describe(self) -> dict[str, Any]:
        """Where the images are (no key)."""
        return {"conf": self.conf, "pool": self.pool, "user": self.user, "clone_format": 2 if self.clone_v2 else 1}

    def __repr__(self) -> str:
        return f"RbdDriver({self.name!r}, conf={self.conf!r}, pool={self.pool!r}, user={self.user!r})"

    @property
    def fsid(self) -> str:
        """The cluster fsid (connects on first use)."""
        if self._fsid is None:
            with self._fsid_lock:
                if self._fsid is None:
                    self._fsid = self.cluster.fsid()
        return self._fsid

    def _known_fsid(self) -> str:
        """The fsid without a network round trip when ceph.conf names it, else the live one."""
        if self._fsid is not None:
            return self._fsid
        try:
            configured = self.cluster.conf_get("fsid")
        except Exception:  # noqa: BLE001 - fall back to asking the cluster
            configured = ""
        if configured and configured != "00000000-0000-0000-0000-000000000000":
            return configured
        return self.fsid

    def location_for(self, image_id: str) -> Location:
        """``rbd://<fsid>/<pool>/<id>/<snap>?store=NAME`` (glance_store's layout)."""
        validate_image_id(image_id)
        return Location("rbd", self._known_fsid(), (self.pool, image_id, self.snapshot), store=self.name)

    def owns(self, location: Location) -> bool:
        """An rbd location in this pool of this cluster, or the legacy one-segment ``rbd://image``."""
        if location.scheme != "rbd":
            return False
        if location.host == "" and len(location.path) == 1:
            return True
        return len(location.path) == 3 and location.path[0] == self.pool and location.host == self._known_fsid()

    def _resolve(self, location: Location) -> tuple[str, str, str]:
        """``(pool, image, snapshot)`` of a location of this store, else InvalidLocation."""
        if not self.owns(location):
            raise InvalidLocation(f"location {location} is not in this rbd store (pool {self.pool!r})", store=self.name)
        if len(location.path) == 1:
            return self.pool, location.path[0], self.snapshot
        pool, image, snap = location.path
        return pool, image, snap

    # -- data -----------------------------------------------------------------------
    def open_writer(self, image_id: str, size: int | None) -> RbdWriter:
        """Start an upload into a hidden temporary image; AlreadyExists early if the id is taken."""
        validate_image_id(image_id)
        if size is not None and size < 0:
            raise ValueError("size must be >= 0")
        if image_exists(self.cluster, self.pool, image_id):
            raise AlreadyExists("an image with this id exists", store=self.name, image=image_id)
        return RbdWriter(self, image_id, size)

    def open_reader(self, location: Location, offset: int, length: int) -> RbdReader:
        """Read the image's snapshot from ``offset``, with ``write_concurrency`` reads ahead."""
        pool, name, snap = self._resolve(location)
        return RbdReader(self, pool, name, snap, offset, length)

    def stat(self, location: Location) -> Stored:
        """Size of the snapshot, the image's metadata (without the key prefix) and the version
        ``IMAGE_ID@SNAP_ID``: a snapshot re-created under the same name is another version."""
        pool, name, snap = self._resolve(location)
        with self.cluster.open(pool, name, snap=snap, read_only=True) as img:
            size = img.size()
            meta = img.metadata_list()
            snap_ids = [sid for sid, sname, _ in img.snap_list() if sname == snap]
            version = f"{img.image_id()}@{snap_ids[0]}" if snap_ids else None
            written = img.create_timestamp()
        plen = len(META_PREFIX)
        return Stored(size, {k[plen:]: v for k, v in meta.items() if k.startswith(META_PREFIX)}, version,
                      written)

    def update_metadata(self, location: Location, changes: Mapping[str, str]) -> None:
        """Set image-meta keys on the image (its head: metadata is the image's, not a snapshot's)."""
        pool, name, _ = self._resolve(location)
        with self.cluster.open(pool, name) as img:
            for key, value in changes.items():
                img.metadata_set(META_PREFIX + key, value)

    def list_images(self) -> list[str]:
        """The pool's images but this store's temporaries (the trash is not listed); an image of
        someone else's in the pool is listed too and found to be no image of ours by ``stat``."""
        return [name for _, name in self.cluster.list_images(self.pool) if not name.startswith(TMP_PREFIX)]

    def delete(self, location: Location) -> DeleteOutcome:
        """Remove the image; with clone v2 clones it goes to the trash ("deferred"), with v1 ones InUse.

        The one step that removes the name is ``rbd_trash_move``: a delete killed
        at any later point leaves a trash entry (never a visible image without its
        snapshot), which ``sweep`` purges once no clone depends on it and no client
        has it open.
        """
        pool, name, _ = self._resolve(location)
        with self.cluster.open(pool, name, read_only=True) as img:
            clones = children(img)
            image_id = img.image_id()
            parent = img.parent()
        if clones:
            v1 = [c for c in clones if not is_v2_child(self.cluster, c)]
            if v1:
                names = ", ".join(f"{c.pool}/{c.image}" for c in v1[:5])
                raise InUse(
                    f"{len(clones)} clone(s) depend on it ({names}); clone v1 children must be "
                    "flattened or deleted first",
                    store=self.name,
                    image=name,
                )
        # NotFound if a concurrent delete moved it first. A client that has the image open
        # keeps reading it (as an unlinked file); its purge then waits for sweep.
        self.cluster.trash_move(pool, name)
        if clones:
            return DeleteOutcome.DEFERRED
        try:
            _PURGE.run(lambda: purge_trashed(self.cluster, pool, image_id), site="rbd-purge", retry_on=InUse,
                       what=f"store {self.name}: purge {name} from the trash", quiet=True)
            if parent is not None and parent.trash:
                purge_trashed(self.cluster, parent.pool, parent.image_id)
        except (InUse, NotFound, Transient, RbdError) as exc:  # the name is gone; sweep finishes
            log.info("store %s: %s moved to the trash; its purge is left to sweep (%s)", self.name, name, exc)
        return DeleteOutcome.DELETED

    # -- clones ----------------------------------------------------------------------
    def plan_clone(self, location: Location, target: Driver) -> ClonePlan:
        """"cow" into an rbd store of the same cluster whose pool this store's image is readable from."""
        if not isinstance(target, RbdDriver):
            return ClonePlan(None, f"target store {target.name!r} is not an rbd store", CloneRefusal.DIFFERENT_BACKEND)
        pool, name, snap = self._resolve(location)
        return cloner.plan(self, target, pool, name, snap)

    def clone(self, location: Location, target: Driver, request: CloneRequest) -> Location:
        """RBD-clone into the target's pool, resize, flatten per its policy, snapshot; the new location."""
        if request.mode != "cow":
            raise Unsupported(f"the rbd driver clones only with mode 'cow', not {request.mode!r}", store=self.name)
        plan = self.plan_clone(location, target)
        if plan.code is CloneRefusal.SNAPSHOT_MISSING:  # deleted since it was planned
            raise NotFound(f"the source is gone: {plan.reason}", store=self.name, image=location.image)
        if plan.mode != "cow" or not isinstance(target, RbdDriver):
            raise Unsupported(f"cannot clone natively: {plan.reason}", store=self.name, image=location.image)
        validate_image_id(request.name)
        pool, name, snap = self._resolve(location)
        return cloner.clone(self, target, pool, name, snap, request)

    def locate(self, location: Location, ttl: float | None = None) -> DirectAccess:
        """Cluster fsid, pool, image, snapshot and monitor addresses (never a key)."""
        pool, name, snap = self._resolve(location)
        with self.cluster.open(pool, name, snap=snap, read_only=True):
            pass
        return DirectAccess(
            kind="rbd", fsid=self.fsid, pool=pool, image=name, snapshot=snap, mon_hosts=self.cluster.mon_hosts()
        )

    def clone_depth(self, location: Location) -> int:
        """How many ancestors the image's snapshot has (Cinder's clone depth)."""
        pool, name, snap = self._resolve(location)
        with self.cluster.open(pool, name, snap=snap, read_only=True) as img:
            return cloner.depth(self.cluster, img)

    def flatten(self, location: Location) -> None:
        """Copy the parents' data into the image and detach it, its snapshot included.

        librbd flattens the head only; a snapshot taken before keeps its parent, so the
        snapshot is taken again from the flattened head (the same bytes: a published
        image's head is never written by imagestore). InUse while clones of that
        snapshot exist: they would lose their parent.
        """
        pool, name, snap = self._resolve(location)
        with self.cluster.open(pool, name) as img:
            if img.parent() is not None:
                img.flatten()
            img.snap_set(snap)
            try:
                still = img.parent() is not None
                clones = img.children() if still else []
            finally:
                img.snap_set(None)
            if not still:
                return
            if clones:
                names = ", ".join(f"{c.pool}/{c.image}" for c in clones[:5])
                raise InUse(f"clones of {pool}/{name}@{snap} depend on it ({names}); flatten or delete them first",
                            store=self.name, image=name)
            if img.snap_is_protected(snap):
                img.snap_unprotect(snap)
            img.snap_remove(snap)
            img.snap_create(snap)
            img.snap_protect(snap)

    def adopt(self, location: Location) -> RbdAdoption:
        """Protect (creating it if missing) the snapshot a consumer's image is read from."""
        pool, name, snap = self._resolve(location)
        validate_image_id(name)
        return RbdAdoption(self, pool, name, snap)

    def parent_of(self, location: Location) -> ParentSpec | None:
        """The image this one was cloned from (None if flat); for tests and tools."""
        pool, name, snap = self._resolve(location)
        with self.cluster.open(pool, name, snap=snap, read_only=True) as img:
            return img.parent()

    def sweep(self, older_than: float, deadline: float | None = None) -> SweepReport:
        """Remove dead writers' temporary images (unwatched, older than ``older_than``) and
        trashed images whose clones are all gone, until a pass removes nothing: one sweep
        leaves no trash entry that became childless while it ran (temporaries go first, and
        a dead clone's trashed parent goes with it, in whichever pool)."""
        return sweeper.sweep(self, older_than, deadline)

    def close(self) -> None:
        """Shut the librados connection down."""
        self.cluster.shutdown()
