"""Ceph RBD driver: images in a pool, laid out the way glance_store does it.

Each image is an RBD image named by its id with a protected snapshot (``snap``)
that readers, ``locate`` and clones use, so Nova and Cinder can clone it in
place. Uploads go to a hidden temporary image that is renamed into place on
commit (atomic: of concurrent adds of one id exactly one rename wins). Metadata
lives in RBD image metadata under the ``imagestore.`` prefix. With clone v2
(``require_min_compat_client >= mimic``) an image with clones is moved to the
trash on delete and purged when its last clone goes.
"""

from __future__ import annotations

import re
import secrets
import threading
import time
from collections import deque
from collections.abc import Mapping
from typing import Any, ClassVar

from ..capabilities import Capabilities
from ..errors import AlreadyExists, ConfigError, InUse, InvalidLocation, NotFound, PermissionDenied, Unsupported
from ..location import DirectAccess, Location, validate_image_id
from . import rbdlib
from .base import ClonePlan, CloneRequest, DeleteResult, Driver, Option, Stored, Transient
from .rbdlib import Cluster, Completion, Image, ParentSpec

__all__ = ["RbdDriver"]

META_PREFIX = "imagestore."
TMP_PREFIX = ".tmp."
_FLATTEN_RE = re.compile(r"never|always|max_depth=(\d+)")


def _parse_flatten(value: str) -> int | None:
    """The maximum clone depth allowed by a ``clone_flatten`` policy (None: unlimited)."""
    m = _FLATTEN_RE.fullmatch(value.strip()) if isinstance(value, str) else None
    if m is None:
        raise ConfigError(f"expected 'never', 'always' or 'max_depth=N', got {value!r}", key="clone_flatten")
    if value.strip() == "never":
        return None
    if value.strip() == "always":
        return 0
    return int(m.group(1))


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
        "connect_timeout": Option((int, float), default=10.0, help="seconds to wait for the monitors"),
        "op_timeout": Option((int, float), default=60.0, help="seconds before a mon/OSD operation fails"),
        "clone_flatten": Option(
            str, default="never", help="flatten clones made into this store: never, always or max_depth=N"
        ),
        "write_concurrency": Option(int, default=8, help="writes (and read-ahead reads) in flight"),
    }
    stale_upload_age: ClassVar[float] = 3600.0
    """``sweep`` removes temporary upload images older than this (seconds)."""

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
        connect_timeout: float = 10.0,
        op_timeout: float = 60.0,
        clone_flatten: str = "never",
        write_concurrency: int = 8,
    ) -> None:
        super().__init__(name)
        if not 12 <= order <= 25:
            raise ConfigError(f"must be between 12 and 25, got {order}", key=f"stores.{name}.order")
        if write_concurrency < 1:
            raise ConfigError("must be at least 1", key=f"stores.{name}.write_concurrency")
        if not pool or "/" in pool:
            raise ConfigError(f"bad pool name {pool!r}", key=f"stores.{name}.pool")
        if not snapshot or "/" in snapshot or "@" in snapshot:
            raise ConfigError(f"bad snapshot name {snapshot!r}", key=f"stores.{name}.snapshot")
        if user.startswith("client."):
            user = user[len("client.") :]
        try:
            self.max_clone_depth = _parse_flatten(clone_flatten)
        except ConfigError as exc:
            raise ConfigError(str(exc).split(": ", 1)[-1], key=f"stores.{name}.clone_flatten") from None
        self.conf = conf
        self.pool = pool
        self.user = user
        self.keyring = keyring
        self.snapshot = snapshot
        self.order = order
        self.clone_flatten = clone_flatten
        self.write_concurrency = write_concurrency
        self.chunk = 1 << min(max(order, 20), 25)  # I/O unit: one object, 1..32 MiB
        # raises DriverNotInstalled (naming the packages) or ConfigError now, connects later
        self.cluster = Cluster(
            conf, user, keyring, connect_timeout=float(connect_timeout), op_timeout=float(op_timeout), label=name
        )
        self._fsid: str | None = None
        self._fsid_lock = threading.Lock()

    # -- description ------------------------------------------------------------
    @property
    def capabilities(self) -> Capabilities:
        """RBD clones in O(1), gives direct access, and defers deletes with clone v2."""
        return Capabilities(
            write=True,
            range_read=True,
            cow_clone=True,
            server_copy=False,
            direct_access=True,
            presign=False,
            atomic_create=True,
            unknown_size=True,
            deferred_delete=True,
            persistent=True,
        )

    def describe(self) -> dict[str, Any]:
        """Where the images are (no key)."""
        return {"conf": self.conf, "pool": self.pool, "user": self.user}

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

    # -- helpers ------------------------------------------------------------------
    def _tmp_name(self, image_id: str) -> str:
        return f"{TMP_PREFIX}{image_id}.{int(time.time())}.{secrets.token_hex(4)}"

    def _exists(self, pool: str, name: str, snap: str | None = None) -> bool:
        try:
            with self.cluster.open(pool, name, snap=snap, read_only=True):
                return True
        except NotFound:
            return False

    def _remove_fully(self, pool: str, name: str) -> None:
        """Unprotect and remove every snapshot, then remove the image (NotFound if absent)."""
        with self.cluster.open(pool, name) as img:
            for _, snap, _ in img.snap_list():
                if img.snap_is_protected(snap):
                    img.snap_unprotect(snap)
                img.snap_remove(snap)
        self.cluster.remove(pool, name)

    def _publish(self, tmp: str, name: str, image_id: str) -> None:
        """Rename ``tmp`` to ``name`` in this pool; AlreadyExists unless our image got the name.

        ``rbd_rename`` refuses a taken name, but when renames of several images to one
        name race it can return success to the losers without renaming them, so the
        result is checked: the name must now resolve to our image's id.
        """
        self.cluster.rename(self.pool, tmp, name)
        try:
            with self.cluster.open(self.pool, name, read_only=True) as img:
                winner = img.image_id()
        except NotFound:
            winner = ""
        if winner != image_id:
            raise AlreadyExists("another writer published this name first", store=self.name, image=name)

    def _is_v2_child(self, child: rbdlib.ChildSpec) -> bool:
        """Whether a clone is a clone v2 (its parent may then go to the trash)."""
        try:
            if child.trash:
                img = self.cluster.open(child.pool, child.image_id, by_id=True)
            else:
                img = self.cluster.open(child.pool, child.image, read_only=True)
            with img:
                return bool(img.op_features() & rbdlib.OP_FEATURE_CLONE_CHILD)
        except (NotFound, PermissionDenied):
            return False

    def _children(self, img: Image) -> list[rbdlib.ChildSpec]:
        """The clones of every snapshot of an open image."""
        found: list[rbdlib.ChildSpec] = []
        try:
            for _, snap, _ in img.snap_list():
                img.snap_set(snap)
                found.extend(img.children())
        finally:
            img.snap_set(None)
        return found

    def _purge_trashed(self, pool: str, image_id: str) -> bool:
        """Remove a trashed image whose clones are all gone (and its trashed ancestors); True if removed."""
        try:
            img = self.cluster.open(pool, image_id, by_id=True)
        except NotFound:
            return False
        with img:
            if self._children(img):
                return False
            grandparent = img.parent()
            for _, snap, _ in img.snap_list():
                if img.snap_is_protected(snap):
                    img.snap_unprotect(snap)
                img.snap_remove(snap)
        self.cluster.trash_remove(pool, image_id)
        if grandparent is not None and grandparent.trash:
            self._purge_trashed(grandparent.pool, grandparent.image_id)
        return True

    def _depth(self, img: Image) -> int:
        """How many ancestors the (snapshot of the) open image has."""
        depth, parent = 0, img.parent()
        while parent is not None and depth < 64:
            depth += 1
            if parent.trash:
                nxt = self.cluster.open(parent.pool, parent.image_id, by_id=True)
                nxt.snap_set(parent.snap)
            else:
                nxt = self.cluster.open(parent.pool, parent.image, snap=parent.snap, read_only=True)
            with nxt:
                parent = nxt.parent()
        return depth

    # -- data -----------------------------------------------------------------------
    def open_writer(self, image_id: str, size: int | None) -> _RbdWriter:
        """Start an upload into a hidden temporary image; AlreadyExists early if the id is taken."""
        validate_image_id(image_id)
        if size is not None and size < 0:
            raise ValueError("size must be >= 0")
        if self._exists(self.pool, image_id):
            raise AlreadyExists("an image with this id exists", store=self.name, image=image_id)
        return _RbdWriter(self, image_id, size)

    def open_reader(self, location: Location, offset: int = 0, length: int | None = None) -> _RbdReader:
        """Read the image's snapshot from ``offset``, with ``write_concurrency`` reads ahead."""
        if offset < 0 or (length is not None and length < 0):
            raise ValueError("offset and length must be >= 0")
        pool, name, snap = self._resolve(location)
        return _RbdReader(self, pool, name, snap, offset, length)

    def stat(self, location: Location) -> Stored:
        """Size of the snapshot and the image's metadata (without the key prefix)."""
        pool, name, snap = self._resolve(location)
        with self.cluster.open(pool, name, snap=snap, read_only=True) as img:
            size = img.size()
            meta = img.metadata_list()
        plen = len(META_PREFIX)
        return Stored(size, {k[plen:]: v for k, v in meta.items() if k.startswith(META_PREFIX)})

    def delete(self, location: Location) -> DeleteResult:
        """Remove the image; with clone v2 clones it goes to the trash ("deferred"), with v1 ones InUse."""
        pool, name, _ = self._resolve(location)
        with self.cluster.open(pool, name) as img:
            children = self._children(img)
            parent = img.parent() if not children else None
            if not children:
                for _, snap, _ in img.snap_list():
                    if img.snap_is_protected(snap):
                        img.snap_unprotect(snap)
                    img.snap_remove(snap)
        if children:
            v1 = [c for c in children if not self._is_v2_child(c)]
            if v1:
                names = ", ".join(f"{c.pool}/{c.image}" for c in v1[:5])
                raise InUse(
                    f"{len(children)} clone(s) depend on it ({names}); clone v1 children must be "
                    "flattened or deleted first",
                    store=self.name,
                    image=name,
                )
            self.cluster.trash_move(pool, name)
            return "deferred"
        try:
            self.cluster.remove(pool, name)
        except InUse as exc:  # a watcher (another client has it open): retry later
            raise Transient(f"image {name!r} is still open elsewhere: {exc}") from exc
        if parent is not None and parent.trash:
            try:
                self._purge_trashed(parent.pool, parent.image_id)
            except (InUse, NotFound):
                pass
        return "deleted"

    # -- clones ----------------------------------------------------------------------
    def plan_clone(self, location: Location, target: Driver) -> ClonePlan:
        """"cow" into an rbd store of the same cluster whose pool this store's image is readable from."""
        if not isinstance(target, RbdDriver):
            return ClonePlan(None, f"target store {target.name!r} is not an rbd store")
        pool, name, snap = self._resolve(location)
        try:
            src, dst = self.fsid, target.fsid
        except (Transient, PermissionDenied, ConfigError) as exc:
            return ClonePlan(None, f"cannot reach a cluster to compare: {exc}")
        if src != dst:
            return ClonePlan(None, f"different Ceph clusters (fsid {src} vs {dst})")
        tc = target.cluster
        try:
            if not tc.pool_exists(target.pool):
                return ClonePlan(None, f"target pool {target.pool!r} does not exist")
            tc.list_images(target.pool)
        except PermissionDenied:
            return ClonePlan(None, f"client.{target.user} may not use pool {target.pool!r}")
        try:
            with tc.open(pool, name, snap=snap, read_only=True):
                pass
        except PermissionDenied:
            return ClonePlan(None, f"client.{target.user} may not read pool {pool!r}")
        return ClonePlan("cow", f"same Ceph cluster {src}: RBD clone {pool}/{name}@{snap} into pool {target.pool!r}")

    def clone(self, location: Location, target: Driver, request: CloneRequest) -> Location:
        """RBD-clone into the target's pool, resize, flatten per its policy, snapshot; the new location."""
        if request.mode != "cow":
            raise Unsupported(f"the rbd driver clones only with mode 'cow', not {request.mode!r}", store=self.name)
        plan = self.plan_clone(location, target)
        if plan.mode != "cow" or not isinstance(target, RbdDriver):
            raise Unsupported(f"cannot clone natively: {plan.reason}", store=self.name, image=location.image)
        validate_image_id(request.name)
        pool, name, snap = self._resolve(location)
        tc = target.cluster
        if target._exists(target.pool, request.name):
            raise AlreadyExists("the clone target name is taken", store=target.name, image=request.name)
        with tc.open(pool, name, snap=snap, read_only=True) as src:
            src_size = src.size()
            depth = self._depth(src) + 1
        if request.size is not None and request.size < src_size:
            raise Unsupported(
                f"cannot clone into a smaller size ({request.size} < {src_size} bytes)", store=self.name, image=name
            )
        tmp = target._tmp_name(request.name)
        tc.clone(pool, name, snap, target.pool, tmp, order=target.order)
        try:
            with tc.open(target.pool, tmp) as child:
                if request.size is not None and request.size != src_size:
                    child.resize(request.size)
                if target.max_clone_depth is not None and depth > target.max_clone_depth:
                    child.flatten()
                for key, value in request.metadata.items():
                    child.metadata_set(META_PREFIX + key, value)
                child.snap_create(target.snapshot)
                child.snap_protect(target.snapshot)
                mine = child.image_id()
            target._publish(tmp, request.name, mine)
        except BaseException:
            try:
                target._remove_fully(target.pool, tmp)
            except Exception:  # noqa: BLE001 - keep the original error; sweep() retries
                pass
            raise
        return target.location_for(request.name)

    def locate(self, location: Location) -> DirectAccess:
        """Cluster fsid, pool, image, snapshot and monitor addresses (never a key)."""
        pool, name, snap = self._resolve(location)
        with self.cluster.open(pool, name, snap=snap, read_only=True):
            pass
        return DirectAccess(
            kind="rbd", fsid=self.fsid, pool=pool, image=name, snapshot=snap, mon_hosts=self.cluster.mon_hosts()
        )

    def parent_of(self, location: Location) -> ParentSpec | None:
        """The image this one was cloned from (None if flat); for tests and tools."""
        pool, name, snap = self._resolve(location)
        with self.cluster.open(pool, name, snap=snap, read_only=True) as img:
            return img.parent()

    def sweep(self) -> int:
        """Remove stale temporary uploads and trashed images whose clones are all gone."""
        removed = 0
        now = time.time()
        for entry in self.cluster.trash_list(self.pool):
            if entry.source != rbdlib.TRASH_SOURCE_USER or entry.deferment_end_time > now:
                continue
            try:
                removed += self._purge_trashed(self.pool, entry.id)
            except (InUse, NotFound, Transient):
                continue
        for _, image in self.cluster.list_images(self.pool):
            if not image.startswith(TMP_PREFIX):
                continue
            try:
                stamp = int(image.rsplit(".", 2)[1])
            except (IndexError, ValueError):
                continue
            if now - stamp < self.stale_upload_age:
                continue
            try:
                self._remove_fully(self.pool, image)
                removed += 1
            except (InUse, NotFound, Transient):
                continue
        return removed

    def close(self) -> None:
        """Shut the librados connection down."""
        self.cluster.shutdown()


class _RbdWriter:
    """An upload into a temporary image: object-sized aio writes, ``write_concurrency`` in flight."""

    def __init__(self, driver: RbdDriver, image_id: str, size: int | None) -> None:
        self._d = driver
        self._id = image_id
        self._tmp = driver._tmp_name(image_id)
        self._chunk = driver.chunk
        self._cap = size or 0
        self._written = 0
        self._state = "open"
        self._inflight: deque[tuple[Completion, bytearray]] = deque()
        self._free: list[bytearray] = []
        self._buf = bytearray(self._chunk)
        self._fill = 0
        driver.cluster.create(driver.pool, self._tmp, self._cap, order=driver.order)
        try:
            self._img: Image | None = driver.cluster.open(driver.pool, self._tmp)
        except BaseException:
            driver.cluster.remove(driver.pool, self._tmp)
            raise

    def write(self, data: memoryview | bytes | bytearray) -> None:
        """Append ``data`` (copied into object-sized buffers, written asynchronously)."""
        if self._state != "open":
            raise ValueError(f"write on a {self._state} upload")
        mv = memoryview(data).cast("B")
        pos, total = 0, len(mv)
        while pos < total:
            n = min(total - pos, self._chunk - self._fill)
            self._buf[self._fill : self._fill + n] = mv[pos : pos + n]
            self._fill += n
            pos += n
            if self._fill == self._chunk:
                self._submit()

    def _zero(self, n: int) -> bool:
        """Whether the first ``n`` buffered bytes are all zero (fresh image: no need to write them)."""
        if n == self._chunk:
            return self._buf == _zeros(self._chunk)
        return self._buf[:n] == _zeros(self._chunk)[:n]

    def _submit(self) -> None:
        assert self._img is not None
        n, offset = self._fill, self._written
        if n == 0:
            return
        end = offset + n
        if end > self._cap:  # unknown (or exceeded) size: grow by doubling, trimmed at commit
            self._cap = max(end, self._cap * 2, 64 << 20)
            self._img.resize(self._cap)
        if not self._zero(n):
            while len(self._inflight) >= self._d.write_concurrency:
                self._reap()
            comp = self._img.aio_write(offset, self._buf, n)
            self._inflight.append((comp, self._buf))
            self._buf = self._free.pop() if self._free else bytearray(self._chunk)
        self._fill = 0
        self._written = end

    def _reap(self) -> None:
        comp, buf = self._inflight.popleft()
        ret = comp.wait()
        self._free.append(buf)
        if ret < 0:
            raise rbdlib.error_for(ret, "rbd_aio_write", store=self._d.name, image=self._id)

    def _drain(self) -> None:
        first: BaseException | None = None
        while self._inflight:
            try:
                self._reap()
            except BaseException as exc:  # noqa: BLE001 - wait for every I/O before raising
                first = first or exc
        if first is not None:
            raise first

    def commit(self, metadata: Mapping[str, str]) -> Location:
        """Finish the writes, store metadata, snapshot+protect, and rename into place."""
        if self._state != "open":
            raise ValueError(f"commit on a {self._state} upload")
        d = self._d
        try:
            self._submit()
            self._drain()
            img = self._img
            assert img is not None
            if self._cap != self._written:
                img.resize(self._written)
            img.flush()
            for key, value in metadata.items():
                img.metadata_set(META_PREFIX + key, value)
            img.snap_create(d.snapshot)
            img.snap_protect(d.snapshot)
            mine = img.image_id()
            self._img = None
            img.close()
            d._publish(self._tmp, self._id, mine)
        except AlreadyExists:
            self.abort()
            raise AlreadyExists("another upload published this id first", store=d.name, image=self._id) from None
        except BaseException:
            self.abort()
            raise
        self._state = "committed"
        self._buf = bytearray()
        self._free.clear()
        return d.location_for(self._id)

    def abort(self) -> None:
        """Stop the writes and remove the temporary image; safe to call twice."""
        if self._state in ("aborted", "committed"):
            return
        self._state = "aborted"
        try:
            self._drain()
        except BaseException:  # noqa: BLE001 - the image is removed anyway
            pass
        img, self._img = self._img, None
        if img is not None:
            try:
                img.close()
            except Exception:  # noqa: BLE001
                pass
        try:
            self._d._remove_fully(self._d.pool, self._tmp)
        except NotFound:
            pass
        self._buf = bytearray()
        self._free.clear()


_ZEROS: dict[int, bytes] = {}


def _zeros(n: int) -> bytes:
    z = _ZEROS.get(n)
    if z is None:
        z = _ZEROS[n] = bytes(n)
    return z


class _RbdReader:
    """Reads a snapshot with object-sized aio reads kept ``write_concurrency`` deep ahead."""

    def __init__(self, driver: RbdDriver, pool: str, name: str, snap: str, offset: int, length: int | None) -> None:
        self._img: Image | None = driver.cluster.open(pool, name, snap=snap, read_only=True)
        try:
            size = self._img.size()
        except BaseException:
            self._img.close()
            raise
        start = min(offset, size)
        end = size if length is None else min(size, start + length)
        self._store, self._name = driver.name, name
        self._pieces = rbdlib.iter_chunks(start, end, driver.chunk)
        self._depth = driver.write_concurrency
        self._pending: deque[tuple[Completion, bytearray, int]] = deque()
        self._free: list[bytearray] = []
        self._chunk = driver.chunk
        self._cur = memoryview(b"")
        self._cur_buf: bytearray | None = None
        self._fill_pipeline()

    def _fill_pipeline(self) -> None:
        assert self._img is not None
        while len(self._pending) < self._depth:
            piece = next(self._pieces, None)
            if piece is None:
                return
            off, n = piece
            buf = self._free.pop() if self._free else bytearray(self._chunk)
            self._pending.append((self._img.aio_read(off, buf, n), buf, n))

    def _next(self) -> bool:
        if self._cur_buf is not None:
            self._cur.release()
            self._free.append(self._cur_buf)
            self._cur_buf = None
        if not self._pending:
            return False
        comp, buf, n = self._pending.popleft()
        ret = comp.wait()
        if ret < 0:
            self._free.append(buf)
            raise rbdlib.error_for(ret, "rbd_aio_read", store=self._store, image=self._name)
        self._cur_buf = buf
        self._cur = memoryview(buf)[: min(ret, n)]
        self._fill_pipeline()
        return True

    def read(self, n: int = -1) -> bytes:
        """Up to ``n`` bytes (``-1``: everything left); ``b""`` at the end."""
        if self._img is None:  # closed (the facade closes at the end, then may ask once more)
            return b""
        if n is None or n < 0:
            parts = []
            while True:
                part = self.read(self._chunk)
                if not part:
                    return b"".join(parts)
                parts.append(part)
        while not len(self._cur):
            if not self._next():
                return b""
        out = bytes(self._cur[:n])
        self._cur = self._cur[len(out) :]
        return out

    def close(self) -> None:
        """Wait for the reads in flight and close the image."""
        img, self._img = self._img, None
        if img is None:
            return
        while self._pending:
            comp, _, _ = self._pending.popleft()
            comp.wait()
        self._cur.release()
        img.close()

    def __enter__(self) -> _RbdReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
