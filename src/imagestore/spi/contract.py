"""The driver boundary: the types that the facade and every driver both use.

The pipeline and the readers import this module, never the drivers package, so
the dependency points one way: drivers depend on the contract, the facade
depends on the contract, and neither on the other's internals; the contract
itself uses the public results (:mod:`imagestore.results`), re-exported here.
:mod:`imagestore.drivers` re-exports these names for driver authors.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from ..errors import Transient
from ..location import Location
from ..results import CloneMode, CloneRefusal, DeleteOutcome, SweepReport, refusal
from .retry import RetryPolicy, Timeouts

__all__ = [
    "Adoption",
    "CloneMode",
    "ClonePlan",
    "CloneRefusal",
    "CloneRequest",
    "DeleteOutcome",
    "DriverContext",
    "Option",
    "Reader",
    "Stored",
    "SweepReport",
    "Transient",
    "Writer",
]


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
class DriverContext:
    """What the facade tells a driver when the store opens: the store's I/O settings.

    ``concurrency`` is how many parts (objects, segments, aio requests) a driver
    may keep in flight per stream; None lets the driver pick its default.
    ``retry`` is the policy of every retry a driver does itself (a part inside a
    streaming upload, a request inside one; the facade retries whole idempotent
    calls); ``timeouts`` are the ``connect`` and ``io`` timeouts it applies to its
    client unless one of its own options overrides them.
    """

    concurrency: int | None = None
    chunk_size: int = 4 << 20
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    timeouts: Timeouts = field(default_factory=Timeouts)

    @property
    def retries(self) -> int:
        """Deprecated (kept for drivers written before ``retry``): ``retry.retries``."""
        return self.retry.retries

    @property
    def retry_backoff(self) -> float:
        """Deprecated (kept for drivers written before ``retry``): ``retry.backoff``."""
        return self.retry.backoff


@dataclass(frozen=True)
class Stored:
    """What a driver knows of a stored image: its size, the metadata saved with it and,
    when the backend has one, a token naming this immutable version of its bytes.

    ``version`` changes whenever the bytes could have (RBD: image and snapshot id;
    file: inode and change time) and is None when the driver cannot tell; the
    facade remembers source verifications by it. ``written`` is when the image was
    written (Unix time: file mtime, RBD create time, S3/Swift last modified), None
    when the backend does not say; ``scrub(older_than=)`` reads it.
    """

    size: int
    metadata: Mapping[str, str]
    version: str | None = None
    written: float | None = None


@dataclass(frozen=True)
class ClonePlan:
    """The cheapest native clone mode a driver can do for one source and target, or why not.

    ``code`` names the reason for programs (a :class:`~imagestore.results.CloneRefusal`;
    its plain string is accepted and converted, an unknown one is a ValueError).
    """

    mode: CloneMode | None
    reason: str
    code: CloneRefusal | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "code", refusal(self.code))


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
        """Append ``data``; may be called with chunks of any size. The view is reused after return."""

    def commit(self, metadata: Mapping[str, str]) -> Location:
        """Durably publish the image with its metadata, never overwriting; returns its location.

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


class Adoption(Protocol):
    """Bits a consumer wrote into the backend, being registered by ``Store.adopt``.

    :meth:`Driver.adopt` has already made them immutable (or checked they are);
    the facade reads ``location`` (``size`` bytes) once to hash and inspect it,
    then commits the metadata or aborts, which undoes what ``adopt`` did and
    leaves the consumer's bits as they were.
    """

    location: Location
    size: int

    def commit(self, metadata: Mapping[str, str]) -> Location:
        """Store the metadata; the image is then an ordinary image of the store."""

    def abort(self) -> None:
        """Undo what adopting did (snapshot, protection); never touches the bits."""
