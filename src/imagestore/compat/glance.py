"""glance_store's multi-store calls over imagestore, for a service that embeds them directly.

:class:`Backends` is built from a dict in the shape of Glance's multi-store
configuration (``enabled_backends`` plus one section of options per backend),
not from a global configuration object, and glance_store need not be installed.
The functions mirror ``glance_store.multi_backend``'s, with the registry in place
of its ``conf``, return the same tuples and URIs, and raise imagestore's errors::

    backends = Backends({"fast": "imagestore", "legacy": "file"},
                        {"fast": {"imagestore_config": "/etc/imagestore.toml", "imagestore_store": "images"},
                         "legacy": {"filesystem_store_datadir": "/var/lib/glance/images"}},
                        default_backend="fast")
    uri, size, md5, multihash, meta = add_with_multihash(backends, image_id, fh, 0, "fast", "sha512")
    chunks, length = get(backends, uri, "fast")
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Mapping
from typing import IO, Any

from ..spi.contract import DeleteOutcome
from ..errors import ConfigError, InvalidLocation
from ..store import Store, Stores, open_store
from .backend import AddResult, GlanceBackend, Verifier

__all__ = ["Backends", "add_with_multihash", "delete", "get", "get_size_from_uri_and_backend"]

_OPTIONS = {
    "imagestore": ({"imagestore_config"}, {"imagestore_config", "imagestore_store"}),
    "file": ({"filesystem_store_datadir"}, {"filesystem_store_datadir"}),
}
"""Backend type -> (required options, accepted options); glance's own two are accepted everywhere."""
_GLANCE_OPTIONS = frozenset({"store_description", "weight"})


def _parse_enabled(enabled: Mapping[str, str] | str) -> dict[str, str]:
    """``{"fast": "imagestore"}`` or glance's ``"fast:imagestore, legacy:file"``."""
    if isinstance(enabled, str):
        pairs: dict[str, str] = {}
        for item in filter(None, (part.strip() for part in enabled.split(","))):
            backend_id, sep, kind = item.partition(":")
            if not sep or not backend_id.strip() or not kind.strip():
                raise ConfigError(f"{item!r} is not ID:TYPE", key="enabled_backends")
            pairs[backend_id.strip()] = kind.strip()
        enabled = pairs
    if not isinstance(enabled, Mapping) or not enabled:
        raise ConfigError("name at least one backend", key="enabled_backends")
    return dict(enabled)


class Backends(Mapping[str, GlanceBackend]):
    """Glance backends by id over imagestore stores, opened on first use, shared by threads.

    Types: ``imagestore`` (options ``imagestore_config``, ``imagestore_store``) and
    ``file`` (``filesystem_store_datadir``: a directory glance_store's filesystem
    driver wrote, served by an imagestore file store with the same URIs).
    """

    def __init__(self, enabled_backends: Mapping[str, str] | str,
                 sections: Mapping[str, Mapping[str, Any]] | None = None, *,
                 default_backend: str | None = None) -> None:
        self._types = _parse_enabled(enabled_backends)
        sections = sections or {}
        self._sections: dict[str, dict[str, Any]] = {}
        for backend_id, kind in self._types.items():
            if kind not in _OPTIONS:
                raise ConfigError(f"backend {backend_id!r} has type {kind!r}; supported: {', '.join(_OPTIONS)}",
                                  key="enabled_backends")
            section = dict(sections.get(backend_id, {}))
            required, accepted = _OPTIONS[kind]
            for option in sorted(required - set(section)):
                raise ConfigError("is required", key=f"{backend_id}.{option}")
            for option in sorted(set(section) - accepted - _GLANCE_OPTIONS):
                raise ConfigError(f"is not an option of a {kind} backend", key=f"{backend_id}.{option}")
            self._sections[backend_id] = section
        if default_backend is None and len(self._types) == 1:
            default_backend = next(iter(self._types))
        if default_backend is not None and default_backend not in self._types:
            raise ConfigError(f"no backend named {default_backend!r}", key="default_backend")
        self.default_backend = default_backend
        self._open: dict[str, GlanceBackend] = {}
        self._configs: dict[str, Stores] = {}
        self._lock = threading.Lock()

    @classmethod
    def from_config(cls, config: Mapping[str, Mapping[str, Any]]) -> Backends:
        """From glance-api.conf's sections as a dict: ``DEFAULT.enabled_backends``,
        ``glance_store.default_backend`` and a section per backend."""
        default = config.get("DEFAULT", {})
        if "enabled_backends" not in default:
            raise ConfigError("is required", key="DEFAULT.enabled_backends")
        sections = {k: v for k, v in config.items() if k not in ("DEFAULT", "glance_store")}
        return cls(default["enabled_backends"], sections,
                   default_backend=config.get("glance_store", {}).get("default_backend"))

    def __repr__(self) -> str:
        return f"<Backends {self._types} default={self.default_backend!r}>"

    # -- mapping ----------------------------------------------------------
    def __getitem__(self, backend_id: str) -> GlanceBackend:
        if backend_id not in self._types:
            raise KeyError(backend_id)
        with self._lock:
            backend = self._open.get(backend_id)
            if backend is None:
                backend = self._open[backend_id] = GlanceBackend(backend_id, self._store(backend_id))
        return backend

    def __iter__(self) -> Iterator[str]:
        return iter(self._types)

    def __len__(self) -> int:
        return len(self._types)

    def _store(self, backend_id: str) -> Store:
        """Open the imagestore store behind a backend (called under the lock)."""
        section = self._sections[backend_id]
        if self._types[backend_id] == "file":
            return open_store({"driver": "file", "root": str(section["filesystem_store_datadir"])}, backend_id)
        path = str(section["imagestore_config"])
        if path not in self._configs:
            try:
                self._configs[path] = Stores.from_file(path)
            except ConfigError as exc:
                raise ConfigError(str(exc), key=f"{backend_id}.imagestore_config") from None
        stores = self._configs[path]
        name = section.get("imagestore_store") or stores.default_name
        if name not in list(stores):  # names only: `in` on the mapping would open the store
            raise ConfigError(f"no store named {name!r} in {path} (configured: {', '.join(stores)})",
                              key=f"{backend_id}.imagestore_store")
        return stores[name]

    def backend(self, backend_id: str | None) -> GlanceBackend:
        """The backend ``backend_id`` (None: the default one)."""
        chosen = backend_id or self.default_backend
        if chosen is None:
            raise InvalidLocation("no backend given and no default_backend configured")
        if chosen not in self._types:
            raise InvalidLocation(f"no backend named {chosen!r} (enabled: {', '.join(self._types)})")
        return self[chosen]

    def backend_for_uri(self, uri: str) -> GlanceBackend:
        """The backend whose URI prefix ``uri`` starts with (as Glance finds a location's store)."""
        for backend_id in self._types:
            backend = self[backend_id]
            if uri.startswith(backend.url_prefix):
                return backend
        raise InvalidLocation("no backend holds this URI")

    def close(self) -> None:
        """Close every store opened so far."""
        with self._lock:
            for backend in self._open.values():
                backend.store.close()
            for stores in self._configs.values():
                stores.close()
            self._open.clear()
            self._configs.clear()

    def __enter__(self) -> Backends:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _for(backends: Backends, uri: str, backend: str | None) -> GlanceBackend:
    return backends.backend(backend) if backend else backends.backend_for_uri(uri)


def add_with_multihash(backends: Backends, image_id: str, data: IO[bytes], size: int | None, backend: str | None,
                       hashing_algo: str, scheme: str | None = None, context: Any = None,
                       verifier: Verifier | None = None) -> AddResult:
    """Store ``data`` in ``backend`` (None: the default); ``(uri, size, md5, multihash, metadata)``.

    ``size`` 0 or None means unknown; ``scheme`` and ``context`` are accepted for
    glance_store's signature and unused.
    """
    return backends.backend(backend).add(image_id, data, size, hashing_algo, verifier)


def get(backends: Backends, uri: str, backend: str | None, offset: int = 0, chunk_size: int | None = None,
        context: Any = None) -> tuple[Iterator[bytes], int]:
    """``(chunks, length)`` of the image at ``uri``, or ``chunk_size`` bytes from ``offset``."""
    return _for(backends, uri, backend).get(uri, offset, chunk_size)


def get_size_from_uri_and_backend(backends: Backends, uri: str, backend: str | None, context: Any = None) -> int:
    """The size of the image at ``uri``."""
    return _for(backends, uri, backend).get_size(uri)


def delete(backends: Backends, uri: str, backend: str | None, context: Any = None) -> DeleteOutcome:
    """Delete the image at ``uri``; NotFound if it is not there."""
    return _for(backends, uri, backend).delete(uri)

