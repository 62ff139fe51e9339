"""A librados connection (:class:`Cluster`) and the pool-level RBD operations."""

from __future__ import annotations

import atexit
import ctypes
import errno as _errno
import math
import os
import re
import threading
import weakref
from ctypes import byref, c_int, c_size_t, c_void_p
from dataclasses import dataclass

from ....errors import ConfigError, NotFound
from ._ffi import RBD_FEATURE_LAYERING, RbdError, RbdTransient, _b, _ImageSpec, _s, _TrashInfo, error_for, load
from .image import Image

# what rados_connect returns when no monitor answers: ETIMEDOUT after client_mount_timeout,
# EINVAL for a mon_host that does not resolve, EINPROGRESS on a handle whose connect failed
_NO_MONITOR = frozenset(-e for e in (_errno.ETIMEDOUT, _errno.EINPROGRESS, _errno.EINVAL, _errno.ECONNREFUSED,
                                     _errno.EHOSTUNREACH, _errno.ENETUNREACH, _errno.ECONNRESET, _errno.ESHUTDOWN))
_MON_TOKEN = re.compile(r"\[[^\]]*\]|[^\s,;]+")
# connections still open when the interpreter exits are shut down first: librados'
# threads must not outlive the Python objects (and C++ statics) they use
_OPEN: weakref.WeakSet[Cluster] = weakref.WeakSet()


@atexit.register
def _shutdown_open_clusters() -> None:
    for cluster in list(_OPEN):
        cluster.shutdown()


def split_mon_host(value: str) -> tuple[str, ...]:
    """``mon_host`` as a tuple of entries; ``[v2:a,v1:b]`` groups stay whole."""
    return tuple(m.group(0) for m in _MON_TOKEN.finditer(value))


class Cluster:
    """One librados connection: opened lazily, reused, thread-safe; caches one ioctx per pool."""

    def __init__(
        self,
        conf: str,
        user: str = "admin",
        keyring: str | None = None,
        *,
        connect_timeout: float = 10.0,
        op_timeout: float = 60.0,
        label: str | None = None,
    ) -> None:
        self.lib = load()
        self.conf = conf
        self.user = user
        self.label = label
        self._keyring = keyring
        self._connect_timeout = max(1, math.ceil(connect_timeout))
        self._op_timeout = max(1, math.ceil(op_timeout))
        self._lock = threading.Lock()
        self._ioctx: dict[str, c_void_p] = {}
        # open image handles by address, each with a weak reference to its Image: shutdown
        # closes those still open before librados goes (an image collected together with its
        # connection, or still open at exit), and the Image then knows not to close it again
        self._images: dict[int, tuple[c_void_p, weakref.ref[Image]]] = {}
        self._connected = False
        self._closed = True  # until the handle is configured: nothing for shutdown() to release
        self._handle = c_void_p()
        if not os.path.isfile(conf):
            raise ConfigError(f"ceph configuration file {conf!r} does not exist", key=f"stores.{label}.conf")
        self._configure()
        self._closed = False
        _OPEN.add(self)

    def use_timeouts(self, connect_timeout: float, op_timeout: float) -> None:
        """Set ``client_mount_timeout`` and the mon/OSD op timeouts (whole seconds); librados
        reads them when it connects, so this counts before the first connect (and every reconnect)."""
        with self._lock:
            self._connect_timeout = max(1, math.ceil(connect_timeout))
            self._op_timeout = max(1, math.ceil(op_timeout))
            if not self._connected and not self._closed:
                self._set("client_mount_timeout", str(self._connect_timeout))
                self._set("rados_mon_op_timeout", str(self._op_timeout))
                self._set("rados_osd_op_timeout", str(self._op_timeout))

    def _configure(self) -> None:
        """Create ``self._handle`` and configure it from the conf file and the options."""
        handle = c_void_p()
        self._check(self.lib.rados_create(byref(handle), _b(self.user)), "rados_create")
        self._handle = handle
        try:
            ret = self.lib.rados_conf_read_file(handle, _b(self.conf))
            if ret < 0:
                raise ConfigError(
                    f"cannot read ceph configuration {self.conf!r}: {os.strerror(-ret)}",
                    key=f"stores.{self.label}.conf",
                )
            if self._keyring:
                self._set("keyring", self._keyring)
            # these options take whole seconds; 0 would mean "wait forever"
            self._set("client_mount_timeout", str(self._connect_timeout))
            self._set("rados_mon_op_timeout", str(self._op_timeout))
            self._set("rados_osd_op_timeout", str(self._op_timeout))
            # never write a log file or an admin socket on behalf of a library user
            self._set("log_file", "")
            self._set("admin_socket", "")
            # errors come back as exceptions: keep librbd's own messages off the caller's stderr
            self._set("log_to_stderr", "false")
            self._set("err_to_stderr", "false")
        except BaseException:
            self.lib.rados_shutdown(handle)
            self._handle = c_void_p()
            raise

    def _check(self, ret: int, op: str, image: str | None = None) -> int:
        if ret < 0:
            raise error_for(ret, op, store=self.label, image=image)
        return ret

    def _set(self, option: str, value: str) -> None:
        self._check(self.lib.rados_conf_set(self._handle, _b(option), _b(value)), f"rados_conf_set({option})")

    def conf_get(self, option: str) -> str:
        """A configuration value (from the conf file before connecting, the live one after)."""
        size = 256
        while True:
            buf = ctypes.create_string_buffer(size)
            ret = self.lib.rados_conf_get(self._handle, _b(option), buf, size)
            if ret == -_errno.ENAMETOOLONG and size < 1 << 20:
                size *= 4
                continue
            self._check(ret, f"rados_conf_get({option})")
            return buf.value.decode()

    def connect(self) -> None:
        """Connect if not yet connected; no reachable monitor is Transient (after ``connect_timeout``)."""
        if self._connected:
            return
        with self._lock:
            if self._closed:
                raise RbdError("the ceph connection is closed", errno=_errno.ESHUTDOWN, store=self.label)
            if not self._connected:
                ret = self.lib.rados_connect(self._handle)
                if ret == -_errno.ENOENT:
                    raise ConfigError(
                        f"cannot connect as client.{self.user}: no keyring or key found "
                        f"(conf {self.conf!r})",
                        key=f"stores.{self.label}.keyring",
                    )
                if ret in _NO_MONITOR:
                    raise self._unreachable(-ret)
                self._check(ret, f"rados_connect(client.{self.user})")
                self._connected = True

    def _unreachable(self, code: int) -> RbdTransient:
        """The error of a connect that reached no monitor, naming them; the handle is replaced
        (librados answers every later connect on it with EINPROGRESS), so a retry really retries."""
        try:
            mons = ", ".join(self.mon_hosts()) or "none in mon_host"
        except Exception:  # noqa: BLE001 - the message names what it can
            mons = "unknown"
        self.lib.rados_shutdown(self._handle)
        self._handle = c_void_p()
        self._configure()
        where = f", store {self.label!r}" if self.label else ""
        if code == _errno.EINVAL:
            reason = "their addresses do not resolve"
        elif code == _errno.ETIMEDOUT:
            reason = f"none answered within connect_timeout ({self._connect_timeout} s)"
        else:
            reason = os.strerror(code)
        return RbdTransient(
            f"no Ceph monitor reachable as client.{self.user} (monitors {mons} from {self.conf!r}): "
            f"{reason} (errno {code}){where}",
            errno=code,
        )

    def handle(self) -> c_void_p:
        """The connected rados_t handle."""
        self.connect()
        return self._handle

    def fsid(self) -> str:
        """The cluster fsid as the cluster reports it."""
        buf = ctypes.create_string_buffer(64)
        self._check(self.lib.rados_cluster_fsid(self.handle(), buf, 64), "rados_cluster_fsid")
        return buf.value.decode()

    def require_min_compat_client(self) -> int:
        """The cluster's ``require_min_compat_client`` as a Ceph release number (12 luminous, 13 mimic)."""
        least, required = ctypes.c_int8(), ctypes.c_int8()
        self._check(self.lib.rados_get_min_compatible_client(self.handle(), byref(least), byref(required)),
                    "rados_get_min_compatible_client")
        return int(required.value)

    def mon_hosts(self) -> tuple[str, ...]:
        """The monitor addresses of the configuration (``mon_host``)."""
        return split_mon_host(self.conf_get("mon_host"))

    def pool_exists(self, pool: str) -> bool:
        """Whether the pool exists (visible to this user)."""
        ret = self.lib.rados_pool_lookup(self.handle(), _b(pool))
        if ret == -_errno.ENOENT:
            return False
        self._check(int(ret), f"rados_pool_lookup({pool})")
        return True

    def ioctx(self, pool: str) -> c_void_p:
        """The (cached) I/O context of ``pool``; NotFound if the pool does not exist."""
        io = self._ioctx.get(pool)
        if io is not None:
            return io
        handle = self.handle()
        with self._lock:
            io = self._ioctx.get(pool)
            if io is None:
                io = c_void_p()
                ret = self.lib.rados_ioctx_create(handle, _b(pool), byref(io))
                if ret == -_errno.ENOENT:
                    raise NotFound(f"pool {pool!r} does not exist", store=self.label)
                self._check(ret, f"rados_ioctx_create({pool})")
                self._ioctx[pool] = io
            return io

    def hold_image(self, handle: c_void_p, image: Image) -> bool:
        """Remember an open image handle (see :meth:`shutdown`); False if the connection is closed."""
        with self._lock:
            if self._closed:
                return False
            self._images[handle.value or 0] = (handle, weakref.ref(image))
            return True

    def release_image(self, handle: c_void_p) -> bool:
        """Forget an image handle; False if :meth:`shutdown` closed it already."""
        with self._lock:
            return self._images.pop(handle.value or 0, None) is not None

    def shutdown(self) -> None:
        """Close the images still open (librbd waits for their I/O), then destroy the I/O
        contexts and the connection; safe to call twice. librados must never go first: its
        threads serve the open images."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            images = list(self._images.values())
            self._images.clear()
        for handle, ref in images:
            image = ref()
            if image is not None:
                image.close_for_shutdown(handle)  # under the image's lock: never under a running call
            else:  # its Image is being collected with this connection: it will not close it
                self.lib.rbd_close(handle)
        with self._lock:
            for io in self._ioctx.values():
                self.lib.rados_ioctx_destroy(io)
            self._ioctx.clear()
            if self._handle:
                self.lib.rados_shutdown(self._handle)
            self._connected = False
        _OPEN.discard(self)

    def __del__(self) -> None:
        """A dropped Store's connection is released, not leaked until exit."""
        try:
            self.shutdown()
        except Exception:  # noqa: BLE001 - nothing to report to during garbage collection
            pass

    # -- pool-level image operations ---------------------------------------
    def create(self, pool: str, name: str, size: int, *, order: int, features: int = RBD_FEATURE_LAYERING) -> None:
        """Create a format-2 image of ``size`` bytes with objects of ``1 << order`` bytes."""
        c_order = c_int(order)
        ret = self.lib.rbd_create2(self.ioctx(pool), _b(name), size, features, byref(c_order))
        self._check(ret, f"rbd_create2({pool}/{name})", name)

    def clone(
        self,
        parent_pool: str,
        parent: str,
        snap: str,
        child_pool: str,
        child: str,
        *,
        order: int = 0,
        features: int = RBD_FEATURE_LAYERING,
    ) -> None:
        """Clone ``parent@snap`` into ``child_pool/child`` (librbd picks v1 or v2 by the cluster)."""
        c_order = c_int(order)
        ret = self.lib.rbd_clone2(
            self.ioctx(parent_pool), _b(parent), _b(snap), self.ioctx(child_pool), _b(child),
            features, byref(c_order), 0, 0,
        )
        self._check(ret, f"rbd_clone2({parent_pool}/{parent}@{snap} -> {child_pool}/{child})", child)

    def remove(self, pool: str, name: str) -> None:
        """Remove an image that has no snapshots."""
        self._check(self.lib.rbd_remove(self.ioctx(pool), _b(name)), f"rbd_remove({pool}/{name})", name)

    def rename(self, pool: str, src: str, dst: str) -> None:
        """Rename atomically; AlreadyExists when ``dst`` is taken."""
        ret = self.lib.rbd_rename(self.ioctx(pool), _b(src), _b(dst))
        self._check(ret, f"rbd_rename({pool}/{src} -> {dst})", dst)

    def list_images(self, pool: str) -> list[tuple[str, str]]:
        """``(id, name)`` of every image in the pool (not the trash)."""
        io = self.ioctx(pool)
        size = c_size_t(64)
        while True:
            arr = (_ImageSpec * size.value)()
            ret = self.lib.rbd_list2(io, arr, byref(size))
            if ret == -_errno.ERANGE:
                continue
            self._check(ret, f"rbd_list2({pool})")
            try:
                return [(_s(arr[i].id), _s(arr[i].name)) for i in range(size.value)]
            finally:
                self.lib.rbd_image_spec_list_cleanup(arr, size.value)

    def trash_move(self, pool: str, name: str) -> None:
        """Move an image to the pool's trash (no deferment)."""
        ret = self.lib.rbd_trash_move(self.ioctx(pool), _b(name), 0)
        self._check(ret, f"rbd_trash_move({pool}/{name})", name)

    def trash_list(self, pool: str) -> list[TrashEntry]:
        """The entries of the pool's trash."""
        io = self.ioctx(pool)
        size = c_size_t(32)
        while True:
            arr = (_TrashInfo * max(size.value, 1))()
            ret = self.lib.rbd_trash_list(io, arr, byref(size))
            if ret == -_errno.ERANGE:
                continue
            self._check(ret, f"rbd_trash_list({pool})")
            try:
                return [
                    TrashEntry(
                        _s(arr[i].id), _s(arr[i].name), arr[i].source, arr[i].deletion_time, arr[i].deferment_end_time
                    )
                    for i in range(size.value)
                ]
            finally:
                self.lib.rbd_trash_list_cleanup(arr, size.value)

    def trash_remove(self, pool: str, image_id: str, *, force: bool = False) -> None:
        """Remove an image from the trash for good."""
        ret = self.lib.rbd_trash_remove(self.ioctx(pool), _b(image_id), force)
        self._check(ret, f"rbd_trash_remove({pool}/id {image_id})", image_id)

    def open(
        self, pool: str, name: str, *, snap: str | None = None, read_only: bool = False, by_id: bool = False
    ) -> Image:
        """Open an image (head, or ``snap`` read-only) for the duration of one operation."""
        return Image(self, pool, name, snap=snap, read_only=read_only, by_id=by_id)


@dataclass(frozen=True)
class TrashEntry:
    """One image in a pool's trash."""

    id: str
    name: str
    source: int
    deletion_time: int
    deferment_end_time: int
