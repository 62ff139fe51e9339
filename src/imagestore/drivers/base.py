"""The driver contract: dumb bytes in, bytes out.

A driver stores, reads, clones and deletes bytes and an opaque ``str -> str``
metadata map. It never hashes, inspects, retries, enforces size caps or parses
configuration: the :class:`~imagestore.store.Store` facade does that once for
every driver. Options arrive already validated, as declared in ``OPTIONS``.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar, Literal, Protocol

from ..capabilities import Capabilities
from ..errors import Unsupported
from ..location import DirectAccess, Location

__all__ = [
    "CloneMode",
    "ClonePlan",
    "CloneRequest",
    "DeleteResult",
    "Driver",
    "Option",
    "Reader",
    "Stored",
    "Transient",
    "Writer",
]

CloneMode = Literal["cow", "server_copy", "stream"]
DeleteResult = Literal["deleted", "deferred"]


class Transient(Exception):
    """Raised by a driver for a failure worth retrying (timeout, 5xx, connection reset).

    The facade retries idempotent operations that raise it and turns the last one
    into :class:`~imagestore.errors.BackendUnavailable`. The message must hold no secret.
    """


@dataclass(frozen=True)
class Option:
    """One driver option: its type, default and whether it is a secret."""

    type: type | tuple[type, ...]
    default: Any = None
    required: bool = False
    secret: bool = False
    help: str = ""
    choices: tuple[Any, ...] | None = None


@dataclass(frozen=True)
class Stored:
    """What a driver knows of a stored image: its size and the metadata saved with it."""

    size: int
    metadata: Mapping[str, str]


@dataclass(frozen=True)
class ClonePlan:
    """The cheapest native clone mode a driver can do for one source and target, or why not."""

    mode: CloneMode | None
    reason: str


@dataclass(frozen=True)
class CloneRequest:
    """A native clone to perform: the target image name, size and metadata to carry."""

    name: str
    mode: CloneMode
    metadata: Mapping[str, str]
    size: int | None = None


class Writer(Protocol):
    """An upload in progress, invisible to readers until :meth:`commit`."""

    def write(self, data: memoryview) -> None:
        """Append ``data``; may be called with chunks of any size."""

    def commit(self, metadata: Mapping[str, str]) -> Location:
        """Durably publish the image with its metadata, never overwriting.

        Raises AlreadyExists if another writer published the same name first; the
        writer then cleans up after itself as :meth:`abort` would.
        """

    def abort(self) -> None:
        """Remove everything written so far; safe to call twice or after a failed commit."""


class Reader(Protocol):
    """A byte stream over a stored image (or a range of it)."""

    def read(self, n: int) -> bytes:
        """Up to ``n`` bytes; ``b""`` at the end."""

    def close(self) -> None:
        """Release the backend resources."""


class Driver(ABC):
    """Base of every backend; subclasses set ``scheme`` and ``OPTIONS`` and implement the I/O."""

    scheme: ClassVar[str]
    OPTIONS: ClassVar[Mapping[str, Option]] = {}

    def __init__(self, name: str) -> None:
        self.name = name

    # -- description ------------------------------------------------------
    @property
    @abstractmethod
    def capabilities(self) -> Capabilities:
        """The flags and limits of this store."""

    @abstractmethod
    def location_for(self, image_id: str) -> Location:
        """The location an image of this id has (or would have) in this store."""

    @abstractmethod
    def owns(self, location: Location) -> bool:
        """Whether ``location`` addresses an image of this store (no backend call)."""

    def describe(self) -> dict[str, Any]:
        """Non-secret facts for ``imagestore stores`` (root, pool, endpoint...)."""
        return {}

    # -- data -------------------------------------------------------------
    @abstractmethod
    def open_writer(self, image_id: str, size: int | None) -> Writer:
        """Start an upload; ``size`` is the declared size or None if unknown.

        May raise AlreadyExists early when the name is taken, but the check that
        counts is the one in :meth:`Writer.commit`.
        """

    @abstractmethod
    def open_reader(self, location: Location, offset: int = 0, length: int | None = None) -> Reader:
        """Read ``length`` bytes (None: to the end) from ``offset``; NotFound if absent."""

    @abstractmethod
    def stat(self, location: Location) -> Stored:
        """Size and metadata of a published image; NotFound if absent."""

    @abstractmethod
    def delete(self, location: Location) -> DeleteResult:
        """Delete the image; NotFound if absent, InUse if dependants forbid it."""

    # -- optional features ------------------------------------------------
    def plan_clone(self, location: Location, target: Driver) -> ClonePlan:
        """The cheapest native clone of ``location`` into ``target``, with the reason."""
        return ClonePlan(None, f"driver {self.scheme!r} has no native clone")

    def clone(self, location: Location, target: Driver, request: CloneRequest) -> Location:
        """Perform the native clone that :meth:`plan_clone` allowed; returns the new location."""
        raise Unsupported(f"driver {self.scheme!r} has no native clone", store=self.name)

    def locate(self, location: Location) -> DirectAccess:
        """What a consumer needs to reach the bits itself."""
        raise Unsupported(f"driver {self.scheme!r} gives no direct access", store=self.name)

    def sweep(self) -> int:
        """Remove temporaries left by dead writers; returns how many were removed."""
        return 0

    def close(self) -> None:  # noqa: B027 - optional hook, nothing to release by default
        """Release connections; the driver is not used afterwards."""
