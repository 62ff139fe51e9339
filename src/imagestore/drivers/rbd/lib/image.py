"""An open RBD image (:class:`Image`) and polled aio completions."""

from __future__ import annotations

import ctypes
import errno as _errno
import threading
from collections.abc import Iterator
from ctypes import byref, c_char, c_int, c_size_t, c_uint64, c_void_p
from dataclasses import dataclass
from typing import Any

from ._ffi import (
    RbdError,
    _b,
    _Lib,
    _LinkedImageSpec,
    _s,
    _SnapInfo,
    _SnapSpec,
    _Timespec,
    _Watcher,
    error_for,
)
from .ioctx import IoctxSource


@dataclass(frozen=True)
class ParentSpec:
    """Where a clone's data comes from."""

    pool: str
    image: str
    image_id: str
    snap: str
    trash: bool


@dataclass(frozen=True)
class ChildSpec:
    """A clone of a snapshot."""

    pool: str
    image: str
    image_id: str
    trash: bool


class Completion:
    """A polled aio completion (no callback): submit, then :meth:`wait`.

    It owns the I/O's buffer until the I/O has finished: a completion dropped unwaited
    (a reader abandoned mid-stream) waits for its I/O before it lets the buffer go, so
    librbd never writes into freed memory; and it is released exactly once.
    """

    __slots__ = ("_c", "_lib", "_ret", "keep")

    def __init__(self, lib: _Lib, keep: Any = None) -> None:
        self._lib = lib
        self._c = c_void_p()
        self._ret = 0
        self.keep = keep  # the buffer must outlive the I/O
        ret = lib.rbd_aio_create_completion(None, None, byref(self._c))
        if ret < 0:
            raise error_for(ret, "rbd_aio_create_completion")

    @property
    def handle(self) -> c_void_p:
        return self._c

    def wait(self) -> int:
        """Block until done; the I/O's return value (negative errno on failure). Releases the
        completion on the first call; later calls return the same value."""
        if self._c:
            c = self._c
            try:
                self._lib.rbd_aio_wait_for_complete(c)
                self._ret = int(self._lib.rbd_aio_get_return_value(c))
            finally:
                self._c = c_void_p()
                self._lib.rbd_aio_release(c)
                self.keep = None
        return self._ret

    def discard(self) -> None:
        """Release a completion whose I/O was never submitted."""
        if self._c:
            c, self._c = self._c, c_void_p()
            self._lib.rbd_aio_release(c)
            self.keep = None

    def __del__(self) -> None:
        try:
            self.wait()
        except Exception:  # noqa: BLE001 - nothing to report to during garbage collection
            pass


class Image:
    """An open librbd image handle; use as a context manager, one operation or stream at a time.

    Every librbd call on the handle and its close are serialised by a lock, so a close from
    another thread (or the connection's shutdown) never frees the handle under a running call,
    and a call after the close is an error, not a use of a freed handle. An image dropped
    unclosed is closed when collected.
    """

    def __init__(
        self,
        cluster: IoctxSource,
        pool: str,
        name: str,
        *,
        snap: str | None = None,
        read_only: bool = False,
        by_id: bool = False,
    ) -> None:
        self.cluster = cluster
        self.lib = cluster.lib
        self.pool = pool
        self.name = name
        self._h = c_void_p()
        self._use = threading.Lock()
        io = cluster.ioctx(pool)
        if by_id:
            fn, op = self.lib.rbd_open_by_id, "rbd_open_by_id"
        elif read_only:
            fn, op = self.lib.rbd_open_read_only, "rbd_open_read_only"
        else:
            fn, op = self.lib.rbd_open, "rbd_open"
        where = f"{pool}/{name}" + (f"@{snap}" if snap else "")
        h = c_void_p()
        self._check(fn(io, _b(name), byref(h), _b(snap)), f"{op}({where})")
        if not cluster.hold_image(h, self):
            self.lib.rbd_close(h)
            raise RbdError("the ceph connection is closed", errno=_errno.ESHUTDOWN, store=cluster.label, image=name)
        self._h = h

    def _check(self, ret: int, op: str) -> int:
        if ret < 0:
            raise error_for(ret, op, store=self.cluster.label, image=self.name)
        return ret

    def _call(self, op: str, fn: Any, *args: Any) -> int:
        """``fn(handle, *args)`` under the handle's lock; its (checked) return value."""
        with self._use:
            if not self._h:
                raise RbdError(f"{op} on a closed image", errno=_errno.EBADF, store=self.cluster.label,
                               image=self.name)
            ret = int(fn(self._h, *args))
        return self._check(ret, op)

    def _raw(self, fn: Any, *args: Any) -> int:
        """``fn(handle, *args)`` under the handle's lock, unchecked (for ERANGE/ENOENT loops)."""
        with self._use:
            if not self._h:
                return -_errno.EBADF
            return int(fn(self._h, *args))

    def close(self) -> None:
        """Close the handle (librbd waits for its I/O in flight and flushes writes); safe to call
        twice, from another thread, and after the connection's shutdown (which closed it)."""
        with self._use:
            if not self._h:
                return
            h, self._h = self._h, c_void_p()
            if self.cluster.release_image(h):
                self._check(self.lib.rbd_close(h), "rbd_close")

    def close_for_shutdown(self, h: c_void_p) -> None:
        """Close ``h`` (this image's handle, already forgotten by the connection) for its shutdown."""
        with self._use:
            if self._h and self._h.value == h.value:
                self._h = c_void_p()
            self.lib.rbd_close(h)

    def __del__(self) -> None:
        """An image dropped unclosed releases its handle (and a read-write open's watch, which
        would hold off a delete of the image until it timed out)."""
        try:
            if getattr(self, "_h", None):
                self.close()
        except Exception:  # noqa: BLE001 - nothing to report to during garbage collection
            pass

    def __enter__(self) -> Image:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- size and data ------------------------------------------------------
    def size(self) -> int:
        """Size in bytes of the head or of the open snapshot."""
        v = c_uint64()
        self._call("rbd_get_size", self.lib.rbd_get_size, byref(v))
        return v.value

    def resize(self, size: int) -> None:
        """Grow or shrink the image."""
        self._call(f"rbd_resize({size})", self.lib.rbd_resize, size)

    def image_id(self) -> str:
        """The image's internal id (stable across renames)."""
        buf = ctypes.create_string_buffer(128)
        self._call("rbd_get_id", self.lib.rbd_get_id, buf, 128)
        return buf.value.decode()

    def op_features(self) -> int:
        """The operation features bitmask (clone v2 parent/child, ...)."""
        v = c_uint64()
        self._call("rbd_get_op_features", self.lib.rbd_get_op_features, byref(v))
        return v.value

    def create_timestamp(self) -> float:
        """When the image was created (seconds since the epoch)."""
        ts = _Timespec()
        self._call("rbd_get_create_timestamp", self.lib.rbd_get_create_timestamp, byref(ts))
        return float(ts.tv_sec + ts.tv_nsec / 1e9)

    def read(self, offset: int, length: int) -> bytes:
        """Read up to ``length`` bytes at ``offset`` (synchronously)."""
        buf = ctypes.create_string_buffer(length)
        n = self._call("rbd_read", self.lib.rbd_read, offset, length, buf)
        return buf.raw[:n]

    def write(self, offset: int, data: bytes | bytearray | memoryview) -> None:
        """Write ``data`` at ``offset`` (synchronously)."""
        mv = memoryview(data).cast("B")
        if mv.readonly:
            mv = memoryview(bytearray(mv))
        arr = (c_char * len(mv)).from_buffer(mv)
        n = self._call("rbd_write", self.lib.rbd_write, offset, len(mv), ctypes.cast(arr, c_void_p))
        if n != len(mv):
            raise RbdError(
                f"rbd_write wrote {n} of {len(mv)} bytes", errno=_errno.EIO, store=self.cluster.label, image=self.name
            )

    def aio_write(self, offset: int, buf: bytearray, length: int) -> Completion:
        """Start writing ``buf[:length]`` at ``offset``; ``buf`` is kept until the wait."""
        return self._aio("rbd_aio_write", offset, buf, length)

    def aio_read(self, offset: int, buf: bytearray, length: int) -> Completion:
        """Start reading ``length`` bytes at ``offset`` into ``buf``."""
        return self._aio("rbd_aio_read", offset, buf, length)

    def _aio(self, call: str, offset: int, buf: bytearray, length: int) -> Completion:
        """Submit one aio read or write of ``buf[:length]``; the completion keeps ``buf`` alive."""
        arr = (c_char * length).from_buffer(buf)
        comp = Completion(self.lib, keep=arr)
        ret = self._raw(getattr(self.lib, call), offset, length, ctypes.cast(arr, c_void_p), comp.handle)
        if ret < 0:  # not submitted: nothing will complete it
            comp.discard()
            self._check(ret, call if ret != -_errno.EBADF else f"{call} on a closed image")
        return comp

    def flush(self) -> None:
        """Wait until every write is durable."""
        self._call("rbd_flush", self.lib.rbd_flush)

    def flatten(self) -> None:
        """Copy the parent's data into this clone and detach it."""
        self._call("rbd_flatten", self.lib.rbd_flatten)

    # -- snapshots ------------------------------------------------------------
    def snap_create(self, snap: str) -> None:
        self._call(f"rbd_snap_create({snap})", self.lib.rbd_snap_create, _b(snap))

    def snap_remove(self, snap: str) -> None:
        self._call(f"rbd_snap_remove({snap})", self.lib.rbd_snap_remove, _b(snap))

    def snap_protect(self, snap: str) -> None:
        self._call(f"rbd_snap_protect({snap})", self.lib.rbd_snap_protect, _b(snap))

    def snap_unprotect(self, snap: str) -> None:
        self._call(f"rbd_snap_unprotect({snap})", self.lib.rbd_snap_unprotect, _b(snap))

    def snap_is_protected(self, snap: str) -> bool:
        v = c_int()
        self._call(f"rbd_snap_is_protected({snap})", self.lib.rbd_snap_is_protected, _b(snap), byref(v))
        return bool(v.value)

    def snap_set(self, snap: str | None) -> None:
        """Read from ``snap`` (None: the head) from now on."""
        self._call(f"rbd_snap_set({snap})", self.lib.rbd_snap_set, _b(snap))

    def snap_list(self) -> list[tuple[int, str, int]]:
        """``(id, name, size)`` of every user snapshot."""
        n = c_int(8)
        while True:
            arr = (_SnapInfo * n.value)()
            ret = self._raw(self.lib.rbd_snap_list, arr, byref(n))
            if ret == -_errno.ERANGE:
                continue
            self._check(ret, "rbd_snap_list")
            try:
                return [(arr[i].id, _s(arr[i].name), arr[i].size) for i in range(ret)]
            finally:
                self.lib.rbd_snap_list_end(arr)

    # -- clones ---------------------------------------------------------------
    def parent(self) -> ParentSpec | None:
        """The parent of this clone, or None if it has none (or was flattened)."""
        img, snap = _LinkedImageSpec(), _SnapSpec()
        ret = self._raw(self.lib.rbd_get_parent, byref(img), byref(snap))
        if ret == -_errno.ENOENT:
            return None
        self._check(ret, "rbd_get_parent")
        try:
            return ParentSpec(_s(img.pool_name), _s(img.image_name), _s(img.image_id), _s(snap.name), bool(img.trash))
        finally:
            self.lib.rbd_linked_image_spec_cleanup(byref(img))
            self.lib.rbd_snap_spec_cleanup(byref(snap))

    def _sized_list(self, call: str, struct: Any, start: int) -> tuple[Any, int]:
        """Call a librbd list function that answers ERANGE with the count it needs: (array, count)."""
        n = c_size_t(start)
        while True:
            arr = (struct * max(n.value, 1))()
            ret = self._raw(getattr(self.lib, call), arr, byref(n))
            if ret != -_errno.ERANGE:
                self._check(ret, call)
                return arr, n.value

    def children(self) -> list[ChildSpec]:
        """The clones of the snapshot this handle is set to (see :meth:`snap_set`)."""
        arr, count = self._sized_list("rbd_list_children3", _LinkedImageSpec, 8)
        try:
            return [
                ChildSpec(_s(arr[i].pool_name), _s(arr[i].image_name), _s(arr[i].image_id), bool(arr[i].trash))
                for i in range(count)
            ]
        finally:
            self.lib.rbd_linked_image_spec_list_cleanup(arr, count)

    def watchers(self) -> int:
        """How many clients watch the image (hold it open read-write); a read-only open is not one."""
        arr, count = self._sized_list("rbd_watchers_list", _Watcher, 4)
        self.lib.rbd_watchers_list_cleanup(arr, count)
        return int(count)

    # -- metadata -------------------------------------------------------------
    def metadata_set(self, key: str, value: str) -> None:
        self._call(f"rbd_metadata_set({key})", self.lib.rbd_metadata_set, _b(key), _b(value))

    def metadata_remove(self, key: str) -> None:
        """Remove ``key`` (NotFound when absent)."""
        self._call(f"rbd_metadata_remove({key})", self.lib.rbd_metadata_remove, _b(key))

    def metadata_get(self, key: str) -> str | None:
        """The value of ``key``, or None when absent."""
        size = c_size_t(256)
        while True:
            buf = ctypes.create_string_buffer(size.value)
            ret = self._raw(self.lib.rbd_metadata_get, _b(key), buf, byref(size))
            if ret == -_errno.ERANGE:
                continue
            if ret == -_errno.ENOENT:
                return None
            self._check(ret, f"rbd_metadata_get({key})")
            return buf.value.decode()

    def metadata_list(self) -> dict[str, str]:
        """Every metadata key and value of the image."""
        out: dict[str, str] = {}
        start = b""
        while True:
            klen, vlen = c_size_t(4096), c_size_t(65536)
            while True:
                kbuf = ctypes.create_string_buffer(klen.value)
                vbuf = ctypes.create_string_buffer(vlen.value)
                ret = self._raw(self.lib.rbd_metadata_list, start, 256, kbuf, byref(klen), vbuf, byref(vlen))
                if ret != -_errno.ERANGE:
                    break
            self._check(ret, "rbd_metadata_list")
            keys = kbuf.raw[: klen.value].split(b"\0")[:-1] if klen.value else []
            values = vbuf.raw[: vlen.value].split(b"\0")[:-1] if vlen.value else []
            for k, v in zip(keys, values, strict=False):
                out[k.decode()] = v.decode()
            if len(keys) < 256:
                return out
            start = keys[-1]


def iter_chunks(offset: int, end: int, chunk: int) -> Iterator[tuple[int, int]]:
    """``(offset, length)`` pieces covering ``[offset, end)``, aligned to ``chunk`` boundaries."""
    pos = offset
    while pos < end:
        nxt = min(end, (pos // chunk + 1) * chunk)
        yield pos, nxt - pos
        pos = nxt

