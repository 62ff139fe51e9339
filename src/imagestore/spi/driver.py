"""The driver base class: dumb bytes in, bytes out.

A driver stores, reads, clones and deletes bytes and an opaque ``str -> str``
metadata map. It never hashes, inspects, retries whole calls, enforces size
caps or parses configuration: the :class:`~imagestore.store.Store` facade does
that once for every driver. Options arrive already validated, as declared in
``OPTIONS``. A driver signals a retryable failure with
:class:`~imagestore.errors.Transient`; any ``OSError`` it lets out is turned
into an :class:`~imagestore.errors.ImageStoreError` by the facade.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterable, Mapping
from typing import Any, ClassVar

from .capabilities import Capabilities
from .contract import (
    Adoption,
    ClonePlan,
    CloneRequest,
    DeleteOutcome,
    DriverContext,
    Option,
    Reader,
    Stored,
    SweepReport,
    Writer,
)
from ..errors import Unsupported
from ..location import DirectAccess, Location

__all__ = ["Driver"]


class Driver(ABC):
    """Base of every backend; subclasses set ``scheme`` and ``OPTIONS`` and implement the I/O.

    The facade calls :meth:`open` exactly once, before anything else; it is the
    only place where a driver connects, probes its backend or creates its root,
    and what it returns is the store's :class:`Capabilities` for its lifetime.
    """

    scheme: ClassVar[str]
    OPTIONS: ClassVar[Mapping[str, Option]] = {}

    def __init__(self, name: str) -> None:
        self.name = name

    # -- lifecycle ----------------------------------------------------------
    @abstractmethod
    def open(self, context: DriverContext) -> Capabilities:
        """Connect, probe and prepare the backend; returns what this store can do."""

    def close(self) -> None:  # noqa: B027 - optional hook, nothing to release by default
        """Release connections; the driver is not used afterwards."""

    # -- description --------------------------------------------------------
    @abstractmethod
    def location_for(self, image_id: str) -> Location:
        """The location an image of this id has (or would have) in this store."""

    @abstractmethod
    def owns(self, location: Location) -> bool:
        """Whether ``location`` addresses an image of this store (no backend call)."""

    def describe(self) -> dict[str, Any]:
        """Non-secret facts for ``imagestore stores`` (root, pool, endpoint...)."""
        return {}

    # -- data ---------------------------------------------------------------
    @abstractmethod
    def open_writer(self, image_id: str, size: int | None) -> Writer:
        """Start an upload; ``size`` is the declared size or None if unknown.

        May raise AlreadyExists early when the name is taken, but the check that
        counts is the one in :meth:`Writer.commit`.
        """

    @abstractmethod
    def open_reader(self, location: Location, offset: int, length: int) -> Reader:
        """Read ``length`` bytes from ``offset`` (both within the image); NotFound if absent."""

    @abstractmethod
    def stat(self, location: Location) -> Stored:
        """Size and metadata of a published image; NotFound if absent."""

    @abstractmethod
    def delete(self, location: Location) -> DeleteOutcome:
        """Delete the image; NotFound if absent, InUse if dependants forbid it."""

    # -- optional features --------------------------------------------------
    def plan_clone(self, location: Location, target: Driver) -> ClonePlan:
        """The cheapest native clone of ``location`` into ``target``, with the reason."""
        return ClonePlan(None, f"driver {self.scheme!r} has no native clone")

    def clone(self, location: Location, target: Driver, request: CloneRequest) -> Location:
        """Perform the native clone that :meth:`plan_clone` allowed; returns the new location."""
        raise Unsupported(f"driver {self.scheme!r} has no native clone", store=self.name)

    def locate(self, location: Location, ttl: float | None = None) -> DirectAccess:
        """What a consumer needs to reach the bits itself; ``ttl`` for a presigned URL."""
        raise Unsupported(f"driver {self.scheme!r} gives no direct access", store=self.name)

    def clone_depth(self, location: Location) -> int:
        """How many ancestors the image's data depends on (0: independent, the default for
        drivers whose clones are full copies)."""
        return 0

    def flatten(self, location: Location) -> None:  # noqa: B027 - optional hook, clones are copies by default
        """Make a clone independent of its ancestors; a no-op where clones are full copies."""

    def adopt(self, location: Location) -> Adoption:
        """Start registering bits a consumer wrote at ``location`` (the facade checked it is
        owned): make them immutable and say where to read them. Only drivers that claim
        ``Capabilities.adopt`` implement it; AlreadyExists if the image has imagestore
        metadata already."""
        raise Unsupported(f"driver {self.scheme!r} cannot adopt images written outside imagestore",
                          store=self.name)

    def update_metadata(self, location: Location, changes: Mapping[str, str]) -> None:
        """Set these metadata keys of a published image (the others stay); its bytes are untouched.
        Only drivers that claim ``Capabilities.metadata_update`` implement it; NotFound if absent."""
        raise Unsupported(f"driver {self.scheme!r} cannot change an image's metadata", store=self.name)

    def list_images(self) -> Iterable[str]:
        """The ids of the store's published images, in any order, without temporaries, segments
        or anything else of its own; ``scrub`` walks them. Unsupported where the backend cannot list."""
        raise Unsupported(f"driver {self.scheme!r} cannot list its images", store=self.name)

    def free_space(self) -> int | None:
        """Bytes the backend can still take, when it says (None: unknown); checked before an add."""
        return None

    def sweep(self, older_than: float, deadline: float | None = None) -> SweepReport:
        """Remove temporaries of dead writers older than ``older_than`` seconds.

        Never removes one of a live writer. Stops early (with what it removed so
        far) once ``time.monotonic()`` passes ``deadline``.
        """
        return SweepReport()
