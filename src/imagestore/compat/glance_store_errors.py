"""imagestore's errors as the glance_store exceptions Glance handles (imported by the driver only).

Glance turns these into HTTP answers: Duplicate and NotFound as such,
StorageFull into 413, StorageWriteDenied and TimeoutError into 503, Invalid into
400 (an upload refused so puts the image back to ``queued``), InUseByStore into
409, RemoteServiceUnavailable (a read) into 503. The message is imagestore's,
which never holds a secret.
"""

from __future__ import annotations

from typing import Any

try:
    from glance_store import exceptions
except ImportError as exc:  # this module runs inside Glance, where glance_store is
    raise ImportError(f"imagestore's glance_store driver needs glance_store ({exc}): "
                      "pip install 'imagestore[glance]'") from exc

from .. import errors  # noqa: E402

__all__ = ["to_glance_store"]

Op = str
"""``"add"``, ``"get"``, ``"get_size"`` or ``"delete"``: a few errors read differently per call."""

_BY_CLASS: tuple[tuple[type[errors.ImageStoreError], type[Exception]], ...] = (
    (errors.AlreadyExists, exceptions.Duplicate),
    (errors.NotFound, exceptions.NotFound),
    (errors.NoSpace, exceptions.StorageFull),
    (errors.ImageTooLarge, exceptions.StorageFull),
    (errors.UnsafeImage, exceptions.Invalid),
    (errors.SizeMismatch, exceptions.Invalid),
    (errors.InUse, exceptions.InUseByStore),
    (errors.InvalidLocation, exceptions.BadStoreUri),
    (errors.BackendUnavailable, exceptions.RemoteServiceUnavailable),
    (errors.ConfigError, exceptions.BackendException),
    (errors.DriverNotInstalled, exceptions.BackendException),
)


_RETRY_LATER = frozenset({"Busy", "UploadTimeout"})
"""Errors, by class name (newer than some facades), that mean "try the upload again later"."""


def to_glance_store(exc: errors.ImageStoreError, op: Op) -> Exception:
    """The glance_store exception Glance expects for ``exc`` raised during ``op``."""
    message = str(exc)
    retry_later = any(k.__name__ in _RETRY_LATER for k in type(exc).__mro__)
    if op == "add" and (retry_later or isinstance(exc, errors.BackendUnavailable)):
        cls: type[Exception] = exceptions.TimeoutError  # Glance: 503, the image back to queued
    elif isinstance(exc, errors.PermissionDenied):
        cls = exceptions.StorageWriteDenied if op == "add" else exceptions.Forbidden
    elif isinstance(exc, errors.ChecksumMismatch):
        # on add the caller's expected digest was wrong; on a read the stored bytes are bad
        cls = exceptions.Invalid if op == "add" else exceptions.BackendException
    elif isinstance(exc, errors.Unsupported) and op == "get":
        cls = exceptions.StoreRandomGetNotSupported
    else:
        cls = next((glance for ours, glance in _BY_CLASS if isinstance(exc, ours)), exceptions.BackendException)
    if issubclass(cls, exceptions.GlanceStoreException):
        glance_error: Any = cls  # untyped: its message is a keyword, formatted with none
        return glance_error(message=message)  # type: ignore[no-any-return]
    return cls(message)
