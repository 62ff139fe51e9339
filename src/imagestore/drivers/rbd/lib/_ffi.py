"""The ctypes layer: library loading, C structs, typed signatures and errno mapping.

Nothing is compiled, so it works on any CPython; ctypes releases the GIL during
every foreign call. A missing library is a :class:`DriverNotInstalled` that
names the Debian packages.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import errno as _errno
import os
import threading
from ctypes import POINTER, Structure, c_bool, c_char_p, c_int, c_int64, c_size_t, c_ssize_t, c_uint64, c_void_p
from typing import Any

from ....errors import (
    AlreadyExists,
    BackendError,
    DriverNotInstalled,
    InUse,
    NoSpace,
    NotFound,
    PermissionDenied,
    Transient,
)

RBD_FEATURE_LAYERING = 1
OP_FEATURE_CLONE_PARENT = 1 << 0
OP_FEATURE_CLONE_CHILD = 1 << 1
TRASH_SOURCE_USER = 0

INSTALL_HINT = "install the Ceph client libraries: apt install librbd1 librados2 (Debian/Ubuntu)"


class RbdError(BackendError):
    """A librados/librbd failure with no more specific imagestore error; ``errno`` says which."""

    def __init__(self, message: str, *, errno: int, store: str | None = None, image: str | None = None):
        super().__init__(message, errno=errno, store=store, image=image)


class RbdTransient(Transient):
    """A retryable librados/librbd failure (timeout, connection refused or shut down)."""

    def __init__(self, message: str, *, errno: int) -> None:
        super().__init__(message)
        self.errno = errno


_TRANSIENT = {_errno.ETIMEDOUT, _errno.ESHUTDOWN, _errno.ECONNREFUSED, _errno.ECONNRESET, _errno.EAGAIN}


def error_for(code: int, op: str, *, store: str | None = None, image: str | None = None) -> Exception:
    """The exception for errno ``code`` (positive or negative) returned by ``op``."""
    code = abs(code)
    text = f"{op} failed: {os.strerror(code)} (errno {code})"
    exc: Exception
    if code == _errno.ENOENT:
        exc = NotFound(text, store=store, image=image)
    elif code == _errno.EEXIST:
        exc = AlreadyExists(text, store=store, image=image)
    elif code in (_errno.EBUSY, _errno.ENOTEMPTY):
        exc = InUse(text, store=store, image=image)
    elif code in (_errno.EPERM, _errno.EACCES):
        exc = PermissionDenied(text, store=store, image=image)
    elif code in (_errno.ENOSPC, _errno.EDQUOT):
        return NoSpace(f"{op}: the pool is full or over its quota ({os.strerror(code)})", errno=code,
                       store=store, image=image)
    elif code in _TRANSIENT:
        where = "".join(f", {k} {v!r}" for k, v in (("store", store), ("image", image)) if v)
        return RbdTransient(text + where, errno=code)
    else:
        return RbdError(text, errno=code, store=store, image=image)
    setattr(exc, "errno", code)  # noqa: B010 - imagestore errors carry no errno field of their own
    return exc


# ---------------------------------------------------------------- C types
class _LinkedImageSpec(Structure):
    _fields_ = [
        ("pool_id", c_int64),
        ("pool_name", c_char_p),
        ("pool_namespace", c_char_p),
        ("image_id", c_char_p),
        ("image_name", c_char_p),
        ("trash", c_bool),
    ]


class _SnapSpec(Structure):
    _fields_ = [("id", c_uint64), ("namespace_type", c_int), ("name", c_char_p)]


class _SnapInfo(Structure):
    _fields_ = [("id", c_uint64), ("size", c_uint64), ("name", c_char_p)]


class _ImageSpec(Structure):
    _fields_ = [("id", c_char_p), ("name", c_char_p)]


class _TrashInfo(Structure):
    _fields_ = [
        ("id", c_char_p),
        ("name", c_char_p),
        ("source", c_int),
        ("deletion_time", ctypes.c_long),  # time_t
        ("deferment_end_time", ctypes.c_long),
    ]


class _Watcher(Structure):
    _fields_ = [("addr", c_char_p), ("id", c_int64), ("cookie", c_uint64)]


class _Timespec(Structure):
    _fields_ = [("tv_sec", ctypes.c_long), ("tv_nsec", ctypes.c_long)]


_P = POINTER
_SIGNATURES: dict[str, tuple[str, Any, tuple[Any, ...]]] = {
    # librados
    "rados_create": ("rados", c_int, (_P(c_void_p), c_char_p)),
    "rados_conf_read_file": ("rados", c_int, (c_void_p, c_char_p)),
    "rados_conf_set": ("rados", c_int, (c_void_p, c_char_p, c_char_p)),
    "rados_conf_get": ("rados", c_int, (c_void_p, c_char_p, c_char_p, c_size_t)),
    "rados_connect": ("rados", c_int, (c_void_p,)),
    "rados_shutdown": ("rados", None, (c_void_p,)),
    "rados_cluster_fsid": ("rados", c_int, (c_void_p, c_char_p, c_size_t)),
    "rados_get_min_compatible_client": ("rados", c_int, (c_void_p, _P(ctypes.c_int8), _P(ctypes.c_int8))),
    "rados_pool_lookup": ("rados", c_int64, (c_void_p, c_char_p)),
    "rados_ioctx_create": ("rados", c_int, (c_void_p, c_char_p, _P(c_void_p))),
    "rados_ioctx_destroy": ("rados", None, (c_void_p,)),
    # librbd: pool level
    "rbd_version": ("rbd", None, (_P(c_int), _P(c_int), _P(c_int))),
    "rbd_create2": ("rbd", c_int, (c_void_p, c_char_p, c_uint64, c_uint64, _P(c_int))),
    "rbd_clone2": (
        "rbd",
        c_int,
        (c_void_p, c_char_p, c_char_p, c_void_p, c_char_p, c_uint64, _P(c_int), c_uint64, c_int),
    ),
    "rbd_remove": ("rbd", c_int, (c_void_p, c_char_p)),
    "rbd_rename": ("rbd", c_int, (c_void_p, c_char_p, c_char_p)),
    "rbd_list2": ("rbd", c_int, (c_void_p, _P(_ImageSpec), _P(c_size_t))),
    "rbd_image_spec_list_cleanup": ("rbd", None, (_P(_ImageSpec), c_size_t)),
    "rbd_trash_move": ("rbd", c_int, (c_void_p, c_char_p, c_uint64)),
    "rbd_trash_list": ("rbd", c_int, (c_void_p, _P(_TrashInfo), _P(c_size_t))),
    "rbd_trash_list_cleanup": ("rbd", None, (_P(_TrashInfo), c_size_t)),
    "rbd_trash_remove": ("rbd", c_int, (c_void_p, c_char_p, c_bool)),
    # librbd: image level
    "rbd_open": ("rbd", c_int, (c_void_p, c_char_p, _P(c_void_p), c_char_p)),
    "rbd_open_read_only": ("rbd", c_int, (c_void_p, c_char_p, _P(c_void_p), c_char_p)),
    "rbd_open_by_id": ("rbd", c_int, (c_void_p, c_char_p, _P(c_void_p), c_char_p)),
    "rbd_close": ("rbd", c_int, (c_void_p,)),
    "rbd_get_size": ("rbd", c_int, (c_void_p, _P(c_uint64))),
    "rbd_get_id": ("rbd", c_int, (c_void_p, c_char_p, c_size_t)),
    "rbd_get_op_features": ("rbd", c_int, (c_void_p, _P(c_uint64))),
    "rbd_get_create_timestamp": ("rbd", c_int, (c_void_p, _P(_Timespec))),
    "rbd_resize": ("rbd", c_int, (c_void_p, c_uint64)),
    "rbd_read": ("rbd", c_ssize_t, (c_void_p, c_uint64, c_size_t, c_void_p)),
    "rbd_write": ("rbd", c_ssize_t, (c_void_p, c_uint64, c_size_t, c_void_p)),
    "rbd_flush": ("rbd", c_int, (c_void_p,)),
    "rbd_flatten": ("rbd", c_int, (c_void_p,)),
    "rbd_snap_create": ("rbd", c_int, (c_void_p, c_char_p)),
    "rbd_snap_remove": ("rbd", c_int, (c_void_p, c_char_p)),
    "rbd_snap_protect": ("rbd", c_int, (c_void_p, c_char_p)),
    "rbd_snap_unprotect": ("rbd", c_int, (c_void_p, c_char_p)),
    "rbd_snap_is_protected": ("rbd", c_int, (c_void_p, c_char_p, _P(c_int))),
    "rbd_snap_set": ("rbd", c_int, (c_void_p, c_char_p)),
    "rbd_snap_list": ("rbd", c_int, (c_void_p, _P(_SnapInfo), _P(c_int))),
    "rbd_snap_list_end": ("rbd", None, (_P(_SnapInfo),)),
    "rbd_get_parent": ("rbd", c_int, (c_void_p, _P(_LinkedImageSpec), _P(_SnapSpec))),
    "rbd_linked_image_spec_cleanup": ("rbd", None, (_P(_LinkedImageSpec),)),
    "rbd_linked_image_spec_list_cleanup": ("rbd", None, (_P(_LinkedImageSpec), c_size_t)),
    "rbd_snap_spec_cleanup": ("rbd", None, (_P(_SnapSpec),)),
    "rbd_list_children3": ("rbd", c_int, (c_void_p, _P(_LinkedImageSpec), _P(c_size_t))),
    "rbd_watchers_list": ("rbd", c_int, (c_void_p, _P(_Watcher), _P(c_size_t))),
    "rbd_watchers_list_cleanup": ("rbd", None, (_P(_Watcher), c_size_t)),
    "rbd_metadata_get": ("rbd", c_int, (c_void_p, c_char_p, c_char_p, _P(c_size_t))),
    "rbd_metadata_set": ("rbd", c_int, (c_void_p, c_char_p, c_char_p)),
    "rbd_metadata_remove": ("rbd", c_int, (c_void_p, c_char_p)),
    "rbd_metadata_list": (
        "rbd",
        c_int,
        (c_void_p, c_char_p, c_uint64, c_char_p, _P(c_size_t), c_char_p, _P(c_size_t)),
    ),
    # aio, polled: a completion without callback, waited for by the writer thread
    "rbd_aio_create_completion": ("rbd", c_int, (c_void_p, c_void_p, _P(c_void_p))),
    "rbd_aio_write": ("rbd", c_int, (c_void_p, c_uint64, c_size_t, c_void_p, c_void_p)),
    "rbd_aio_read": ("rbd", c_int, (c_void_p, c_uint64, c_size_t, c_void_p, c_void_p)),
    "rbd_aio_wait_for_complete": ("rbd", c_int, (c_void_p,)),
    "rbd_aio_get_return_value": ("rbd", c_ssize_t, (c_void_p,)),
    "rbd_aio_release": ("rbd", None, (c_void_p,)),
}


class _Lib:
    """The two libraries with typed functions as attributes (``lib.rbd_open(...)``)."""

    def __init__(self, rados: ctypes.CDLL, rbd: ctypes.CDLL) -> None:
        libs = {"rados": rados, "rbd": rbd}
        for name, (which, restype, argtypes) in _SIGNATURES.items():
            fn = getattr(libs[which], name)
            fn.restype = restype
            fn.argtypes = list(argtypes)
            setattr(self, name, fn)

    def __getattr__(self, name: str) -> Any:  # only reached for names not bound above
        raise AttributeError(name)


_lib: _Lib | None = None
_lib_lock = threading.Lock()


def _open_cdll(name: str, soname: str) -> ctypes.CDLL:
    errors = []
    for candidate in (soname, ctypes.util.find_library(name)):
        if not candidate:
            continue
        try:
            return ctypes.CDLL(candidate)
        except OSError as exc:
            errors.append(str(exc))
    raise DriverNotInstalled(
        f"the rbd driver needs {soname} ({'; '.join(errors) or 'not found'}): {INSTALL_HINT}"
    )


def load() -> _Lib:
    """The loaded libraries; DriverNotInstalled (naming the packages) when they are missing."""
    global _lib
    with _lib_lock:
        if _lib is None:
            rados = _open_cdll("rados", "librados.so.2")
            rbd = _open_cdll("rbd", "librbd.so.1")
            try:
                _lib = _Lib(rados, rbd)
            except AttributeError as exc:
                raise DriverNotInstalled(
                    f"librbd is too old (missing {exc}); need Ceph >= 14: {INSTALL_HINT}"
                ) from None
        return _lib


def librbd_version() -> tuple[int, int, int]:
    """The loaded librbd's (major, minor, extra) version."""
    lib = load()
    a, b, c = c_int(), c_int(), c_int()
    lib.rbd_version(ctypes.byref(a), ctypes.byref(b), ctypes.byref(c))
    return a.value, b.value, c.value


def _b(text: str | None) -> bytes | None:
    return None if text is None else text.encode()


def _s(raw: bytes | None) -> str:
    return "" if raw is None else raw.decode()

