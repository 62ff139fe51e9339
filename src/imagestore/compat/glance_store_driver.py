"""The glance_store driver ``imagestore``: unmodified Glance keeps its images in an imagestore store.

Loaded by glance_store from the entry point ``imagestore`` of the group
``glance_store.drivers`` (``imagestore`` itself never imports this module). A
backend is configured as ``enabled_backends = fast:imagestore`` with, in
``[fast]``, ``imagestore_config`` (an imagestore TOML file) and
``imagestore_store`` (a store in it; default: its default store). Glance records
glance_store's own URI forms (``file:///root/ID``, ``rbd://FSID/POOL/IMAGE/SNAP``,
...), so Nova and Cinder parse them as always and glance_store's own driver of
that backend type reads the images too, and the other way round.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import IO, Any

try:
    from glance_store import capabilities, driver, exceptions
    from glance_store import location as glance_location
    from oslo_config import cfg
except ImportError as exc:  # this module runs inside Glance, where glance_store is
    raise ImportError(f"imagestore's glance_store driver needs glance_store ({exc}): "
                      "pip install 'imagestore[glance]'") from exc

from ..errors import ConfigError, ImageStoreError, InvalidLocation  # noqa: E402
from ..location import Location  # noqa: E402
from ..store import Stores  # noqa: E402
from . import glance_discovery  # noqa: E402
from .backend import HASHING_KEY, AddResult, GlanceBackend, Reopening, Verifier  # noqa: E402
from .glance_store_errors import Op, to_glance_store  # noqa: E402
from .uris import form_for  # noqa: E402

__all__ = ["OPTIONS", "Store", "StoreLocation"]

log = logging.getLogger("imagestore.glance")

ENTRY_POINT = "imagestore"
"""The entry-point name: the backend TYPE in ``enabled_backends`` and a scheme of every instance."""

OPTIONS = [
    cfg.StrOpt("imagestore_config",
               help="Path of the imagestore TOML file that defines the store this backend uses."),
    cfg.StrOpt("imagestore_store",
               help="Name of the store in imagestore_config (default: that file's default store)."),
]

_Bits = capabilities.BitMasks


class StoreLocation(glance_location.StoreLocation):  # type: ignore[misc]  # glance_store is untyped
    """A glance_store URI of an image in an imagestore store, as Glance recorded it."""

    def process_specs(self) -> None:
        self.uri: str | None = self.specs.get("uri")

    def parse_uri(self, uri: str) -> None:
        try:
            Location.from_glance(uri)
        except InvalidLocation as exc:
            raise exceptions.BadStoreUri(message=str(exc)) from None
        self.uri = uri

    def get_uri(self) -> str | None:
        return self.uri


def _wrap(chunks: Iterator[bytes], op: Op) -> Iterator[bytes]:
    """Chunks of a read whose errors arrive, mid-stream too, as glance_store exceptions."""
    try:
        yield from chunks
    except ImageStoreError as exc:
        raise to_glance_store(exc, op) from None


class Store(driver.Store):  # type: ignore[misc]  # glance_store is untyped
    """A Glance backend whose images live in one imagestore store (opened once, shared by threads)."""

    _CAPABILITIES = _Bits.READ_RANDOM | _Bits.WRITE_ACCESS | _Bits.DRIVER_REUSABLE
    OPTIONS = OPTIONS

    def __init__(self, conf: Any, backend: str | None = None) -> None:
        super().__init__(conf, backend)
        self._stores: Stores | None = None
        self._loaded: tuple[Stores, str] | None = None
        self._opening: Reopening | None = None
        self._failure = "the backend was not configured"
        glance_discovery.install()

    # ------------------------------------------------------------ configuration
    def _options(self) -> tuple[str | None, str | None]:
        group = getattr(self.conf, self.backend_group or "glance_store")
        return group.imagestore_config, group.imagestore_store

    def _bad(self, reason: str) -> exceptions.BadStoreConfiguration:
        self._failure = reason
        return exceptions.BadStoreConfiguration(store_name=self.backend_group or ENTRY_POINT, reason=reason)

    def _load(self) -> tuple[Stores, str]:
        """The configured stores and this backend's store name (checked once); BadStoreConfiguration
        naming the option."""
        if self._loaded is not None:
            return self._loaded
        path, name = self._options()
        if not path:
            raise self._bad("imagestore_config is not set: give the path of an imagestore TOML file")
        if self._stores is None:
            try:
                self._stores = Stores.from_file(path)
            except ImageStoreError as exc:
                raise self._bad(f"imagestore_config {path}: {exc}") from None
        stores = self._stores
        name = name or stores.default_name
        if name not in list(stores):  # names only: `in` on the mapping would open the store
            raise self._bad(f"imagestore_store: no store named {name!r} in {path} "
                            f"(configured: {', '.join(stores)})")
        try:
            stores.check(name)
            form_for(stores.driver_name(name))
        except ImageStoreError as exc:
            raise self._bad(f"imagestore_store {name!r}: {exc}") from None
        self._loaded = (stores, name)
        return self._loaded

    def get_schemes(self) -> tuple[str, ...]:
        """``imagestore`` (how glance_store finds the backend by its type) and the URI schemes of
        the store's images (``file``/``filesystem``, ``rbd``, ``s3``..., ``swift``...)."""
        try:
            stores, name = self._load()
            return (ENTRY_POINT, *form_for(stores.driver_name(name)).schemes)
        except (exceptions.BadStoreConfiguration, InvalidLocation) as exc:
            log.warning("glance backend %s: %s", self.backend_group, exc)
            return (ENTRY_POINT,)

    def configure_add(self) -> None:
        """Open the store (a configuration error disables writes, as in glance_store); a store that
        cannot be opened yet is opened again on a later request, after a backoff."""
        if self._opening is not None:
            return
        stores, name = self._load()
        self._opening = Reopening(self.backend_group, name, lambda: self._open(stores, name))
        try:
            self._opening.get()
        except ImageStoreError:  # logged by Reopening; writes stay enabled so a request retries
            pass

    def _open(self, stores: Stores, name: str) -> GlanceBackend:
        """Open the store; set the URI prefix and what it can do (read-only, no ranges)."""
        backend = GlanceBackend(self.backend_group, stores[name])
        self._url_prefix = backend.url_prefix
        caps = backend.store.capabilities
        if not caps.range_read:
            self.unset_capabilities(_Bits.READ_RANDOM)
            self.set_capabilities(_Bits.READ_ACCESS)
        if not caps.write:
            self.unset_capabilities(_Bits.WRITE_ACCESS)
        self.update_capabilities()
        log.info("glance backend %s: imagestore store %s (%s), URIs %s...", self.backend_group, name,
                 backend.store.scheme, backend.url_prefix)
        return backend

    def _require(self, image: str | None = None) -> GlanceBackend:
        """The opened backend (opened now if it could not be before); ImageStoreError if it cannot be."""
        if self._opening is None:
            raise exceptions.BackendException(
                f"glance backend {self.backend_group or ENTRY_POINT} is not usable: {self._failure}")
        return self._opening.get(image)

    def glance_detail(self) -> dict[str, Any]:
        """What ``GET /v2/info/stores/detail`` shows of this backend: its imagestore store, the
        store's driver, whether it takes uploads and whether it is open (never a secret)."""
        detail: dict[str, Any] = {"imagestore_store": None, "driver": None, "read_only": False, "available": False}
        try:
            stores, name = self._load()
        except exceptions.BadStoreConfiguration:
            detail["read_only"] = True  # glance_store disabled its writes; the reason is in the log
            return detail
        backend = self._opening.backend if self._opening else None
        detail.update(imagestore_store=name, driver=stores.driver_name(name), available=backend is not None,
                      read_only=not self.is_capable(_Bits.WRITE_ACCESS))
        if backend is not None:
            detail["url_prefix"] = backend.url_prefix
        return detail

    @staticmethod
    def _uri(location: Any) -> str:
        uri = location.store_location.get_uri()
        if not uri:
            raise exceptions.BadStoreUri(message="the location has no URI")
        return str(uri)

    # ------------------------------------------------------------ data
    @capabilities.check  # type: ignore[untyped-decorator]
    def get(self, location: Any, offset: int = 0, chunk_size: int | None = None,
            context: Any = None) -> tuple[Iterator[bytes], int]:
        """``(chunks, length)``; ``chunk_size`` is the length of a ranged read, as in glance_store."""
        try:
            chunks, length = self._require().get(self._uri(location), offset or 0, chunk_size)
        except ImageStoreError as exc:
            raise to_glance_store(exc, "get") from None
        return _wrap(chunks, "get"), length

    def get_size(self, location: Any, context: Any = None) -> int:
        """The image's size in bytes."""
        try:
            return self._require().get_size(self._uri(location))
        except ImageStoreError as exc:
            raise to_glance_store(exc, "get_size") from None

    @driver.back_compat_add  # type: ignore[untyped-decorator]
    @capabilities.check  # type: ignore[untyped-decorator]
    def add(self, image_id: str, image_file: IO[bytes], image_size: int, hashing_algo: str,
            context: Any = None, verifier: Verifier | None = None) -> AddResult:
        """Store the upload; returns ``(uri, size, md5, multihash, {'store': backend id})``."""
        try:
            return self._require(image_id).add(image_id, image_file, image_size, hashing_algo, verifier)
        except ImageStoreError as exc:
            if isinstance(exc, ConfigError) and exc.key == HASHING_KEY:
                raise exceptions.UnknownHashingAlgo(algo=hashing_algo) from None
            if isinstance(exc, InvalidLocation):  # an image id imagestore refuses
                raise exceptions.Invalid(message=str(exc)) from None
            raise to_glance_store(exc, "add") from None

    @capabilities.check  # type: ignore[untyped-decorator]
    def delete(self, location: Any, context: Any = None) -> None:
        """Delete the image; an RBD parent with clones (clone v2) goes to the trash instead."""
        try:
            outcome = self._require().delete(self._uri(location))
        except ImageStoreError as exc:
            raise to_glance_store(exc, "delete") from None
        log.info("glance backend %s: delete %s -> %s", self.backend_group, self._uri(location), outcome)
