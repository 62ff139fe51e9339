"""Every error imagestore raises, all under :class:`ImageStoreError`.

Messages name the store and the image where known and never contain a secret:
callers may log them as they are.
"""

from __future__ import annotations

import errno as _errno
import os
from collections.abc import Sequence

__all__ = [
    "AlreadyExists",
    "BackendError",
    "BackendUnavailable",
    "Busy",
    "ChecksumMismatch",
    "ConfigError",
    "DriverNotInstalled",
    "ImageStoreError",
    "ImageTooLarge",
    "InUse",
    "InvalidArgument",
    "InvalidLocation",
    "NoSpace",
    "NotFound",
    "PermissionDenied",
    "SizeMismatch",
    "Transient",
    "UnsafeImage",
    "Unsupported",
    "UploadTimeout",
    "from_os_error",
]


class ImageStoreError(Exception):
    """Root of every imagestore error; ``store`` and ``image`` say where it happened."""

    def __init__(self, message: str, *, store: str | None = None, image: str | None = None) -> None:
        self.store = store
        self.image = image
        where = []
        if store is not None:
            where.append(f"store {store!r}")
        if image is not None:
            where.append(f"image {image!r}")
        full = f"{message} ({', '.join(where)})" if where else message
        super().__init__(full)
        self.message = full


class NotFound(ImageStoreError):
    """The image (or the location's container, pool or bucket) does not exist."""


class AlreadyExists(ImageStoreError):
    """An image with this id is already published in the store."""


class ImageTooLarge(ImageStoreError):
    """The upload went past the store's ``max_image_size``; nothing was kept."""


class SizeMismatch(ImageStoreError):
    """The stream ended at a size other than the one the caller declared."""


class ChecksumMismatch(ImageStoreError):
    """The bytes read do not hash to the stored (or expected) checksum."""

    def __init__(
        self,
        message: str,
        *,
        algorithm: str,
        expected: str,
        actual: str,
        store: str | None = None,
        image: str | None = None,
    ) -> None:
        super().__init__(message, store=store, image=image)
        self.algorithm = algorithm
        self.expected = expected
        self.actual = actual


class UnsafeImage(ImageStoreError):
    """The image was rejected by the format policy; ``reasons`` says why."""

    def __init__(
        self,
        message: str,
        *,
        reasons: Sequence[str] = (),
        format: str | None = None,
        store: str | None = None,
        image: str | None = None,
    ) -> None:
        text = message if not reasons else f"{message}: {'; '.join(reasons)}"
        super().__init__(text, store=store, image=image)
        self.reasons = tuple(reasons)
        self.format = format


class Unsupported(ImageStoreError):
    """The store cannot do this (e.g. ``mode="cow"`` between unrelated stores)."""


class InUse(ImageStoreError):
    """The image cannot be deleted: other images depend on it."""


class InvalidArgument(ImageStoreError, ValueError):
    """An argument of a call is out of range or of the wrong kind (a negative size, an
    unknown mode or checksum algorithm...); also a ``ValueError`` for callers that catch that."""


class InvalidLocation(ImageStoreError):
    """A location string or object is malformed or names no configured store."""


class BackendUnavailable(ImageStoreError):
    """The backend could not be reached, even after the configured retries."""


class ConfigError(ImageStoreError):
    """The configuration is wrong; ``key`` names the offending key."""

    def __init__(self, message: str, *, key: str | None = None, store: str | None = None) -> None:
        text = f"{key}: {message}" if key else message
        super().__init__(text, store=store)
        self.key = key


class DriverNotInstalled(ImageStoreError):
    """A driver's optional dependency is missing; the message says what to install."""


class PermissionDenied(ImageStoreError):
    """The backend refused the operation for lack of permission."""


class BackendError(ImageStoreError):
    """The backend failed in a way that retrying will not fix (I/O error, read-only
    filesystem, a driver fault); ``errno`` is set when the failure was an OS error."""

    def __init__(self, message: str, *, errno: int | None = None, store: str | None = None,
                 image: str | None = None) -> None:
        super().__init__(message, store=store, image=image)
        self.errno = errno


class Busy(ImageStoreError):
    """The store already runs as many uploads as ``max_concurrent_adds`` allows."""


class UploadTimeout(ImageStoreError):
    """The upload's source sent nothing for ``idle_timeout`` seconds; nothing was kept."""


class NoSpace(BackendError):
    """The backend is full (disk, pool or quota); nothing of the upload was kept."""


class Transient(Exception):
    """Raised by a driver for a failure worth retrying (timeout, 5xx, connection reset).

    Driver-facing only: the :class:`~imagestore.store.Store` facade retries what
    may be retried and turns the rest into :class:`BackendUnavailable`, so a
    ``Transient`` never reaches a caller. Its message must hold no secret.
    """


_NO_SPACE = {_errno.ENOSPC, _errno.EDQUOT, _errno.EFBIG}
_DENIED = {_errno.EACCES, _errno.EPERM}
_UNREACHABLE = {_errno.ETIMEDOUT, _errno.ECONNRESET, _errno.ECONNREFUSED, _errno.ECONNABORTED,
                _errno.EHOSTUNREACH, _errno.ENETUNREACH, _errno.EPIPE, _errno.ESHUTDOWN}


def from_os_error(exc: OSError, *, op: str, store: str | None = None, image: str | None = None) -> ImageStoreError:
    """The imagestore error for an ``OSError`` met during ``op``, naming what the errno means.

    Only the errno's meaning is used, never ``exc.filename``: a path outside the
    store's root must not leak into a message.
    """
    code = exc.errno
    meaning = os.strerror(code) if code else (exc.strerror or type(exc).__name__)
    text = f"{op}: {meaning}"
    if code in _NO_SPACE:
        return NoSpace(f"{op}: the backend is full ({meaning})", errno=code, store=store, image=image)
    if code in _DENIED:
        return PermissionDenied(text, store=store, image=image)
    if code in _UNREACHABLE:
        return BackendUnavailable(text, store=store, image=image)
    return BackendError(text, errno=code, store=store, image=image)
