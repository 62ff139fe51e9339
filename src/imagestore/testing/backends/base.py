"""The one Backend fixture: what the conformance suite, the hardening harnesses and the bench
need of a backend (rclone's ``Features``, fsspec's fixtures).

A :class:`Backend` is given endpoints and credentials (it never starts a service) and
provides: a fresh :class:`~imagestore.Store` on either of its two stores (``images`` and
``vms``: two stores a native clone can go between), the capabilities those stores MUST
probe as (declared, never probed), a way to reach the stored bits outside imagestore
(leftovers, corruption, native writes for ``adopt``) and a teardown.
"""

from __future__ import annotations

import inspect
import os
from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

import imagestore
from imagestore import Store, Unsupported
from imagestore.config import StoreSettings, validate_driver_options
from imagestore.drivers import Driver
from imagestore.location import Location

__all__ = ["CAPABILITIES", "SERVER_LIMIT", "STORES", "Backend", "BackendObject", "flipped", "open_table",
           "secret_value", "store_source"]

STORES = ("images", "vms")
"""The two stores of every backend: ``images`` (the main one) and ``vms`` (its sibling)."""

SERVER_LIMIT = "a limit set by the server's configuration"
"""A declared ``max_object_size`` whose value the server decides (Swift: its /info): some positive int."""

CAPABILITIES = ("write", "range_read", "cow_clone", "server_copy", "direct_access", "presign", "atomic_create",
                "unknown_size", "deferred_delete", "persistent", "adopt", "metadata_update", "max_object_size")
"""Every field of :class:`imagestore.Capabilities` a backend declares."""


@dataclass(frozen=True)
class BackendObject:
    """Something of a run found in the backend: which store, its kind and its name there.

    ``kind`` is ``image`` (a published name), ``temporary`` (a writer's temporary),
    ``snapshot`` (an extra snapshot of a published image), ``deferred`` (a trashed
    image that clones still need) or ``trash`` (a trashed image nothing needs).
    """

    store: str
    kind: str
    name: str

    def __str__(self) -> str:
        return f"{self.store}:{self.kind}:{self.name}"


def flipped(data: bytes, at: int) -> bytes:
    """``data`` with every bit of the byte at ``at`` inverted."""
    out = bytearray(data)
    out[at] ^= 0xFF
    return bytes(out)


def secret_value(value: Any) -> str | None:
    """The value of a secret option of a store table: ``{"env": NAME}`` read from the environment."""
    if isinstance(value, Mapping) and "env" in value:
        return os.environ.get(str(value["env"]))
    return None if value is None else str(value)


def open_table(table: Mapping[str, Any], name: str) -> Store:
    """A Store from a store table whose ``driver`` is a registered name or a Driver class (a
    third-party driver under test need not be installed as an entry point)."""
    driver = table.get("driver")
    if not (isinstance(driver, type) and issubclass(driver, Driver)):
        return imagestore.open_store(table, name)
    prefix = f"stores.{name}"
    settings = StoreSettings.from_mapping({k: v for k, v in table.items() if k in StoreSettings.KEYS}, prefix)
    opts = {k: v for k, v in table.items() if k not in StoreSettings.KEYS and k != "driver"}
    return Store(driver(name, **validate_driver_options(driver.OPTIONS, opts, prefix)), settings)


def store_source(table: Mapping[str, Any], name: str) -> str:
    """Python source that opens the same store in another process (as ``store``)."""
    driver = table.get("driver")
    if not isinstance(driver, type):
        return f"import imagestore\nstore = imagestore.open_store({dict(table)!r}, {name!r})\n"
    rest = {k: v for k, v in table.items() if k != "driver"}
    module = inspect.getmodule(driver)
    where = os.path.dirname(os.path.abspath(inspect.getfile(driver)))
    mod_name = module.__name__ if module is not None and module.__name__ != "__main__" else \
        os.path.splitext(os.path.basename(inspect.getfile(driver)))[0]
    return (f"import importlib, sys\nimport imagestore\nsys.path.insert(0, {where!r})\n"
            f"from imagestore.testing.backends.base import open_table\n"
            f"cls = getattr(importlib.import_module({mod_name!r}), {driver.__qualname__!r})\n"
            f"store = open_table({{**{rest!r}, 'driver': cls}}, {name!r})\n")


class Backend(ABC):
    """A backend under test. Subclasses give :meth:`table` and declare :attr:`capabilities`;
    the rest has defaults that fit a backend whose bits imagestore alone can reach."""

    kind: ClassVar[str] = "generic"
    #: every field of :class:`imagestore.Capabilities` the stores MUST probe as (see :data:`CAPABILITIES`);
    #: the conformance suite fails when a probe differs, and tests of an absent capability check
    #: the ``Unsupported`` its absence promises
    capabilities: dict[str, object] = {}
    #: the mode ``clone(mode="auto")`` must pick between two stores of this backend (None: stream)
    native_clone_mode: str | None = None
    #: whether a native clone keeps needing its source (RBD layering): deleting it is refused or deferred
    clones_depend_on_source: bool = False
    sweep_wait: float = 11.0
    """Seconds after a writer died before ``sweep`` may take its temporary (its lock or
    watch lapses; every driver also waits 10 s for a temporary to be locked)."""
    image_size: int = (3 << 20) + 517
    """Image size of the crash sweeps: odd, and over one backend object (part, segment)."""

    # ---------------------------------------------------------------- stores
    @abstractmethod
    def table(self, store: str) -> dict[str, Any]:
        """The store table (driver and options) of store ``images`` or ``vms``."""

    def spec(self) -> dict[str, Any]:
        """The table of the main store (``images``)."""
        return self.table(STORES[0])

    def sibling_spec(self) -> dict[str, Any]:
        """The table of the sibling store (``vms``), reachable by native clone."""
        return self.table(STORES[1])

    def open(self, store: str = "images", name: str | None = None, **settings: Any) -> Store:
        """A freshly opened store on ``store`` (the caller closes it)."""
        return open_table({**self.table(store), **settings}, name or store)

    def make(self, name: str = "main", sibling: bool = False, **settings: Any) -> Store:
        """A store named ``name`` on the main (or sibling) store, closed by :meth:`close`."""
        store = self.open(STORES[1] if sibling else STORES[0], name, **settings)
        self.__dict__.setdefault("_made", []).append(store)
        return store

    def source(self, name: str = "main") -> str:
        """Python source opening the main store as ``store`` in another process."""
        return store_source(self.spec(), name)

    def has(self, capability: str) -> bool:
        """Whether the backend declares ``capability`` (never the probe: a store claiming less fails)."""
        return bool(self.capabilities[capability])

    # ---------------------------------------------------------------- the bits, outside imagestore
    def secrets(self) -> list[str]:
        """Secret values this backend authenticates with; none may appear in any output."""
        return []

    def objects(self, prefix: str) -> list[BackendObject]:
        """Every object of the run (names containing ``prefix``) the backend holds, listed with
        the backend's own tools, published or not."""
        raise Unsupported(f"the {self.kind} backend cannot list its objects outside imagestore")

    def leftovers(self) -> list[str]:
        """Temporaries or partial objects left in the backend (empty after a failed add). The
        default fits stores that keep nothing outside their published images (in-process ones)."""
        return []

    def temporaries(self) -> list[str]:
        """The ``temporary`` objects :meth:`objects` finds: the leftovers of a listable backend."""
        return [str(o) for o in self.objects("") if o.kind == "temporary"]

    def held(self, prefix: str) -> list[str] | None:
        """What of the run a (dead) client still holds, or is too young for sweep to take: once
        this is empty, one sweep must leave nothing. None: the backend cannot tell."""
        return None

    def plant_dead_temporary(self, store: str, image_id: str, size: int) -> str:
        """Leave what a writer killed long ago leaves (an unlocked, old temporary); its name."""
        raise Unsupported(f"the {self.kind} backend cannot plant a temporary")

    def place_native(self, name: str, data: bytes) -> str:
        """Write ``data`` into the main store's backend the way a consumer does it itself (for
        ``adopt``); the consumer's reference. Backends that declare ``adopt``."""
        raise Unsupported(f"the {self.kind} backend has no native write")

    def native_state(self, name: str) -> object:
        """Everything of a natively written image that adopting must not change if it refuses."""
        raise Unsupported(f"the {self.kind} backend has no native state")

    def corrupt(self, location: Location, offset: int) -> None:
        """Flip the byte at ``offset`` of a published image with the backend's own tools or API,
        its size and metadata left as they were: bit rot, or an object replaced behind the
        store's back. Every backend of the conformance suite provides it (the integrity tests)."""
        raise Unsupported(f"the {self.kind} backend cannot change stored bits outside imagestore")

    def describe(self) -> dict[str, Any]:
        """Where the backend is (for reports; no secret)."""
        return {"kind": self.kind}

    # ---------------------------------------------------------------- teardown
    def close_all(self) -> None:
        """Close every store :meth:`make` opened (their backend connections)."""
        for store in self.__dict__.pop("_made", []):
            store.close()

    def close(self) -> None:
        """Close the stores and remove what the backend made for itself (buckets, containers);
        idempotent."""
        self.close_all()
