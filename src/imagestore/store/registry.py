"""The registry: named stores from a TOML file or a dict (:class:`Stores`), ``open_store`` for a
single one, and the loading of drivers.

Drivers are found through the stevedore entry-point group ``imagestore.drivers``
so that another package can add a backend. Configuration is validated when it
is loaded (every error names its key); drivers connect on first use.
"""

from __future__ import annotations

import os
import threading
import tomllib
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from ..config import StoreSettings, validate_driver_options
from ..spi.driver import Driver
from ..errors import ConfigError, DriverNotInstalled, InvalidLocation
from ..location import Location, validate_store_name
from ..observe import NULL, Observer
from .args import parse_any
from .store import Store

__all__ = ["ENTRY_POINT_GROUP", "Stores", "UnknownStore", "default_root", "installed_drivers", "load_driver_class",
           "open_store"]

ENTRY_POINT_GROUP = "imagestore.drivers"
_INSTALL_HINTS = {
    "s3": "pip install 'imagestore[s3]'",
    "swift": "pip install 'imagestore[swift]'",
    "http": "pip install 'imagestore[http]'",
    "https": "pip install 'imagestore[http]'",
    "rbd": "pip install 'imagestore[rbd]' and the OS packages librbd1 librados2",
}
_TOP_KEYS = frozenset({"default", "observe", "stores"})


def installed_drivers() -> list[str]:
    """Names registered in the ``imagestore.drivers`` entry-point group (nothing is imported)."""
    from importlib.metadata import entry_points

    return sorted({ep.name for ep in entry_points(group=ENTRY_POINT_GROUP)})


def load_driver_class(driver: str, key: str = "driver") -> type[Driver]:
    """The driver class registered as ``driver`` in the ``imagestore.drivers`` group."""
    from stevedore import DriverManager
    from stevedore.exception import NoMatches

    try:
        manager: DriverManager[Any] = DriverManager(ENTRY_POINT_GROUP, driver, invoke_on_load=False,
                                                    on_load_failure_callback=_raise_load)
    except NoMatches:
        known = ", ".join(installed_drivers()) or "none"
        hint = f" ({_INSTALL_HINTS[driver]})" if driver in _INSTALL_HINTS else ""
        raise ConfigError(f"unknown driver {driver!r}{hint}; installed drivers: {known}", key=key) from None
    cls = manager.driver
    if not (isinstance(cls, type) and issubclass(cls, Driver)):
        raise ConfigError(f"entry point {driver!r} is not an imagestore Driver", key=key)
    return cls


def _raise_load(manager: Any, entry_point: Any, exc: BaseException) -> None:
    if isinstance(exc, ImportError):
        hint = _INSTALL_HINTS.get(entry_point.name, "reinstall imagestore")
        raise DriverNotInstalled(f"driver {entry_point.name!r} cannot be imported ({exc}); {hint}") from exc
    raise exc


def default_root() -> str:
    """``$XDG_DATA_HOME/imagestore``, normally ``~/.local/share/imagestore``."""
    base = os.environ.get("XDG_DATA_HOME") or os.path.join(os.path.expanduser("~"), ".local", "share")
    return os.path.join(base, "imagestore")


class _Spec:
    """One validated store definition, instantiated into a Store on first use."""

    def __init__(self, name: str, table: Mapping[str, Any], prefix: str) -> None:
        if not isinstance(table, Mapping):
            raise ConfigError("a store is a table of keys", key=prefix)
        if "driver" not in table:
            raise ConfigError("is required", key=f"{prefix}.driver")
        driver = table["driver"]
        if not isinstance(driver, str):
            raise ConfigError("expected a driver name", key=f"{prefix}.driver")
        self.name = name
        self.driver = driver
        self.prefix = prefix
        facade = {k: v for k, v in table.items() if k in StoreSettings.KEYS}
        self.driver_opts = {k: v for k, v in table.items() if k not in StoreSettings.KEYS and k != "driver"}
        self.settings = StoreSettings.from_mapping(facade, prefix)
        self.missing: DriverNotInstalled | None = None
        try:
            self.cls: type[Driver] | None = load_driver_class(driver, key=f"{prefix}.driver")
        except DriverNotInstalled as exc:
            # one store whose optional dependency is absent must not break the others:
            # it fails when it is used, naming what to install
            self.cls, self.missing = None, exc
            return
        self.options = validate_driver_options(self.cls.OPTIONS, self.driver_opts, prefix)

    @property
    def scheme(self) -> str:
        """The driver's location scheme (its name when the driver cannot be imported)."""
        return self.cls.scheme if self.cls is not None else self.driver

    def make_driver(self) -> Driver:
        """The driver, built but not opened: no backend call, only what its options alone say."""
        if self.cls is None:
            assert self.missing is not None
            raise DriverNotInstalled(str(self.missing), store=self.name)
        return self.cls(self.name, **self.options)

    def build(self, observer: Observer) -> Store:
        return Store(self.make_driver(), self.settings, observer=observer)


class UnknownStore(ConfigError, KeyError):
    """``stores[name]`` of a name that is not configured: a ConfigError, and the KeyError a Mapping raises."""

    def __str__(self) -> str:
        return self.message


class Stores(Mapping[str, Store]):
    """The configured stores by name, plus ``default``; stores open lazily, thread-safely."""

    def __init__(self, config: Mapping[str, Any], *, source: str = "<dict>",
                 observer: Observer | None = None) -> None:
        if not isinstance(config, Mapping):
            raise ConfigError("the configuration must be a table")
        unknown = sorted(set(config) - _TOP_KEYS)
        if unknown:
            raise ConfigError(f"unknown key in {source}", key=unknown[0])
        tables = config.get("stores")
        if not isinstance(tables, Mapping) or not tables:
            raise ConfigError("define at least one [stores.NAME] table", key="stores")
        self.source = source
        observe = config.get("observe", False)
        if not isinstance(observe, bool):
            raise ConfigError("expected true or false", key="observe")
        if observer is None:  # a service that loads a file it does not own (Glance) turns it on there
            observer = Observer.default() if observe else NULL
        self.observer = observer
        """Where every store of this configuration reports its metrics and spans (see imagestore.observe)."""
        self._specs: dict[str, _Spec] = {}
        for name, table in tables.items():
            try:
                validate_store_name(name)
            except InvalidLocation:
                raise ConfigError("a store name starts with a letter; then letters, digits, '-' or '_'",
                                  key=f"stores.{name}") from None
            self._specs[name] = _Spec(name, table, f"stores.{name}")
        default = config.get("default", next(iter(self._specs)) if len(self._specs) == 1 else None)
        if default is None:
            raise ConfigError("name the default store (several are defined)", key="default")
        if default not in self._specs:
            raise ConfigError(f"no store named {default!r}", key="default")
        self.default_name: str = default
        self._open: dict[str, Store] = {}
        self._lock = threading.Lock()

    # -- construction ----------------------------------------------------
    @classmethod
    def from_file(cls, path: str | os.PathLike[str], *, observer: Observer | None = None) -> Stores:
        """Load a TOML configuration file."""
        try:
            with open(path, "rb") as fh:
                data = tomllib.load(fh)
        except FileNotFoundError:
            raise ConfigError(f"configuration file {os.fspath(path)} does not exist") from None
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"{os.fspath(path)} is not valid TOML: {exc}") from None
        except UnicodeDecodeError:
            raise ConfigError(f"{os.fspath(path)} is not UTF-8 text") from None
        except OSError as exc:
            raise ConfigError(f"cannot read configuration file {os.fspath(path)}: "
                              f"{os.strerror(exc.errno) if exc.errno else exc}") from None
        return cls(data, source=os.fspath(path), observer=observer)

    @classmethod
    def embedded_default(cls, *, observer: Observer | None = None) -> Stores:
        """One ``file`` store named ``local`` under ``$XDG_DATA_HOME/imagestore``."""
        return cls({"default": "local", "stores": {"local": {"driver": "file", "root": default_root()}}},
                   source="<embedded default>", observer=observer)

    @classmethod
    def from_env(cls, path: str | os.PathLike[str] | None = None, *, observer: Observer | None = None) -> Stores:
        """``path``, else ``$IMAGESTORE_CONFIG``, else the embedded default."""
        chosen = path or os.environ.get("IMAGESTORE_CONFIG")
        return cls.from_file(chosen, observer=observer) if chosen else cls.embedded_default(observer=observer)

    # -- mapping ---------------------------------------------------------
    def __getitem__(self, name: str) -> Store:
        spec = self._specs.get(name) if isinstance(name, str) else None
        if spec is None:
            raise UnknownStore(f"no store named {name!r}; configured: {', '.join(self._specs)}")
        with self._lock:
            store = self._open.get(name)
            if store is None:
                store = self._open[name] = spec.build(self.observer)
        return store

    def get_store(self, name: str) -> Store:
        """Like ``stores[name]``, for the CLI: an unknown name is a ConfigError of ``--store``."""
        if name not in self._specs:
            raise ConfigError(f"no store named {name!r}; configured: {', '.join(self._specs)}", key="--store")
        return self[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._specs)

    def __contains__(self, name: object) -> bool:
        """Whether a store of this name is configured (without opening it)."""
        return name in self._specs

    def __len__(self) -> int:
        return len(self._specs)

    def __repr__(self) -> str:
        return f"<Stores {list(self._specs)} default={self.default_name!r} from {self.source}>"

    @property
    def default(self) -> Store:
        """The default store."""
        return self[self.default_name]

    def driver_name(self, name: str) -> str:
        """The driver a store uses, without opening it."""
        if name not in self._specs:
            self[name]  # raises UnknownStore
        return self._specs[name].scheme

    def check(self, name: str) -> None:
        """Raise now the errors of a store's definition that no retry can fix (a relative root, a
        driver not installed), without opening it or calling its backend."""
        self._specs[name].make_driver()

    def resolve(self, location: Location | str) -> tuple[Store, Location]:
        """The store holding ``location`` (by its ``store=`` name, else by address) and the location."""
        loc = parse_any(location)
        if loc.store is not None:
            if loc.store not in self._specs:
                raise InvalidLocation(f"location names store {loc.store!r}, which is not configured")
            store = self[loc.store]
            return store, store.location(loc)
        for name, spec in self._specs.items():
            if spec.scheme == loc.scheme and self[name]._driver.owns(loc):
                return self[name], loc.with_store(name)
        raise InvalidLocation(f"no configured store holds {loc}")

    def opened(self) -> dict[str, Store]:
        """The stores opened so far, by name."""
        with self._lock:
            return dict(self._open)

    def close(self) -> None:
        """Close every opened store."""
        with self._lock:
            for store in self._open.values():
                store.close()
            self._open.clear()

    def __enter__(self) -> Stores:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def open_store(spec: str | os.PathLike[str] | Mapping[str, Any], name: str | None = None, *,
               observer: Observer = NULL) -> Store:
    """One store from a URI (``file:///dir``, ``memory://``) or a dict with a ``driver`` key,
    reporting to ``observer``."""
    if isinstance(spec, Mapping):
        store_name = name or str(spec.get("name", spec.get("driver", "store")))
        table = {k: v for k, v in spec.items() if k != "name"}
        return _Spec(store_name, table, f"stores.{store_name}").build(observer)
    text = os.fspath(spec)
    if text.startswith("file://"):
        root = text[len("file://"):]
        return open_store({"driver": "file", "root": root}, name or "local", observer=observer)
    if text.startswith("memory://"):
        namespace = text[len("memory://"):].strip("/") or None
        memory: dict[str, Any] = {"driver": "memory"}
        if namespace:
            memory["namespace"] = namespace
        return open_store(memory, name or "memory", observer=observer)
    if "://" not in text:
        return open_store({"driver": "file", "root": str(Path(text).resolve())}, name or "local", observer=observer)
    raise ConfigError(f"cannot open a store from {text!r}: use file:///DIR, memory:// or a dict")
