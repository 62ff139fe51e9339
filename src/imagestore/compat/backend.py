"""One Glance backend over one imagestore store: glance_store's add/get/get_size/delete.

Shared by the glance_store driver (which turns the errors into glance_store's
exceptions) and by :mod:`imagestore.compat.glance` (which keeps imagestore's).
Nothing here imports glance_store.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator
from typing import IO, Any, Protocol

from ..spi.contract import DeleteOutcome
from ..errors import BackendUnavailable, ImageStoreError, InvalidLocation
from ..engine.hashing import validate_algorithms
from ..location import Location
from ..engine.reader import ImageReader
from ..spi.retry import backoff_delay
from ..store import Store
from .uris import PROBE_ID, GlanceForm, form_for, glance_uri, is_secure, url_prefix

__all__ = ["HASHING_KEY", "AddResult", "GlanceBackend", "Reopening", "Verifier"]

log = logging.getLogger("imagestore.glance")

HASHING_KEY = "hashing_algo"
"""The ``key`` of the ConfigError for a ``hashing_algo`` hashlib does not offer."""
AddResult = tuple[str, int, str, str, dict[str, str]]
"""glance_store's ``(uri, size, md5, multihash, metadata)``."""


class Verifier(Protocol):
    """What Glance passes to check an image signature: it sees every byte uploaded."""

    def update(self, data: bytes) -> Any: ...


class _Feeding:
    """The upload's file object; every chunk read from it also goes to the signature verifier.

    The facade reads each chunk once and hashes, inspects and writes it, so the
    verifier rides the same single pass instead of a second loop over the data.
    """

    def __init__(self, source: IO[bytes], verifier: Verifier) -> None:
        self._source = source
        self._verifier = verifier

    def read(self, n: int = -1) -> bytes:
        data = self._source.read(n)
        if data:
            self._verifier.update(data)
        return data


def _stream(reader: ImageReader) -> Iterator[bytes]:
    """The reader's chunks; the backend reader is released however iteration ends."""
    with reader:
        yield from reader


class GlanceBackend:
    """A Glance backend id bound to an opened imagestore :class:`Store`.

    URIs given are glance_store forms of images in the store; anything else
    (another store's path, a URI outside the root) is InvalidLocation.
    """

    def __init__(self, backend_id: str | None, store: Store) -> None:
        self.id = backend_id
        self.store = store
        self.form: GlanceForm = form_for(store.scheme)
        host = store.location(PROBE_ID).host  # the endpoint the store's locations name
        self.secure = is_secure(store.describe()["backend"], host)
        self.url_prefix = url_prefix(store.location, secure=self.secure)

    def __repr__(self) -> str:
        return f"<GlanceBackend {self.id!r} store={self.store.name!r} prefix={self.url_prefix!r}>"

    @property
    def schemes(self) -> tuple[str, ...]:
        """The URI schemes of this backend's images (``file``, ``rbd``, ...)."""
        return self.form.schemes

    def uri(self, location: Location) -> str:
        """The glance_store URI of a location of this store."""
        return glance_uri(location, secure=self.secure)

    def location(self, uri: str) -> Location:
        """The store's location for a glance_store URI of one of its images."""
        scheme = uri.partition("://")[0].lower() if isinstance(uri, str) else ""
        if scheme not in self.form.schemes:
            raise InvalidLocation(f"{scheme or uri!r} is not a scheme of this backend", store=self.store.name)
        return self.store.location(Location.from_glance(uri))

    def metadata(self) -> dict[str, str]:
        """Location metadata Glance keeps beside the URI: the backend id."""
        return {"store": self.id} if self.id else {}

    def add(self, image_id: str, data: IO[bytes], size: int | None, hashing_algo: str,
            verifier: Verifier | None = None) -> AddResult:
        """Store ``data``; ``size`` 0 or None is unknown. md5 and ``hashing_algo`` are computed
        in the store's one pass, beside its own checksums; the format policy and caps apply."""
        validate_algorithms([hashing_algo], key=HASHING_KEY)
        source: Any = _Feeding(data, verifier) if verifier is not None else data
        info = self.store.add(image_id, source, size or None, checksums=["md5", hashing_algo])
        uri = self.uri(info.location)
        log.info("glance backend %s: stored %s at %s (%d bytes)", self.id, image_id, uri, info.size)
        return uri, info.size, info.checksums["md5"], info.checksums[hashing_algo], self.metadata()

    def get(self, uri: str, offset: int = 0, chunk_size: int | None = None) -> tuple[Iterator[bytes], int]:
        """``(chunks, length)`` of the image, or of ``chunk_size`` bytes from ``offset``.

        A whole read is verified against the stored digest or checksum when there is one, a
        ranged read block by block against the image's block table; images written by
        glance_store's own drivers carry neither and are read as they are.
        """
        loc = self.location(uri)
        info = self.store.stat(loc)
        verify = None if info.checksums or info.integrity else False
        reader = self.store.open(loc, offset, chunk_size, verify=verify)
        return _stream(reader), reader.size

    def get_size(self, uri: str) -> int:
        """The image's size in bytes."""
        return self.store.stat(self.location(uri)).size

    def delete(self, uri: str) -> DeleteOutcome:
        """Delete the image (``DEFERRED`` when clones still depend on it)."""
        return self.store.delete(self.location(uri))


class Reopening:
    """A backend whose store is opened on demand: after a failed open, again on a later call,
    no sooner than an exponential backoff (jittered, capped) allows, so a dead backend is not
    hammered and one that comes back is used without restarting the service.
    """

    def __init__(self, backend_id: str | None, store_name: str, open_backend: Callable[[], GlanceBackend], *,
                 first_delay: float = 1.0, clock: Callable[[], float] = time.monotonic) -> None:
        self.backend_id = backend_id
        self.store_name = store_name
        self._open = open_backend
        self._first_delay = first_delay
        self._clock = clock
        self._lock = threading.Lock()
        self._backend: GlanceBackend | None = None
        self.failures = 0
        """Failed opens since the last success."""
        self._error: ImageStoreError | None = None
        self._retry_at = 0.0

    @property
    def backend(self) -> GlanceBackend | None:
        """The opened backend, or None while the store has not opened."""
        return self._backend

    def _unavailable(self, image: str | None, now: float) -> BackendUnavailable:
        wait = max(0.0, self._retry_at - now)
        return BackendUnavailable(f"glance backend {self.backend_id}: the store cannot be opened ({self._error}); "
                                  f"next attempt in {wait:.1f}s", store=self.store_name, image=image)

    def get(self, image: str | None = None) -> GlanceBackend:
        """The opened backend; opens it if the backoff allows, else BackendUnavailable saying why and when."""
        backend = self._backend
        if backend is not None:
            return backend
        with self._lock:  # one thread opens; the others wait for its outcome
            if self._backend is not None:
                return self._backend
            now = self._clock()
            if self.failures and now < self._retry_at:
                raise self._unavailable(image, now)
            try:
                backend = self._open()
            except ImageStoreError as exc:
                self._error = exc
                self._retry_at = now + backoff_delay(self.failures, self._first_delay)
                self.failures += 1
                log.warning("glance backend %s: imagestore store %r cannot be opened (attempt %d): %s; "
                            "next attempt on a request after %.1fs", self.backend_id, self.store_name,
                            self.failures, exc, self._retry_at - now)
                raise self._unavailable(image, now) from None
            if self.failures:
                log.info("glance backend %s: imagestore store %r is open again after %d failed attempt(s)",
                         self.backend_id, self.store_name, self.failures)
            self._backend, self.failures, self._error = backend, 0, None
            return backend
