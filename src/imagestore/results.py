"""The public result types: what the :class:`~imagestore.store.Store` facade, the
:class:`~imagestore.stores.Stores` registry, the :class:`~imagestore.cache.ImageCache` and
:func:`~imagestore.formats.inspect` return, each frozen, each with the JSON form the CLI's
``--json`` prints (``to_dict``: one key per field).

This module imports only :mod:`imagestore.location` and the digest syntax of
:mod:`imagestore.engine.hashing`, so the driver contract, the formats,
the cache and the facade can all depend on it; their old homes (``imagestore.spi.contract``,
``imagestore.cache.reports``, ``imagestore.formats.verdict``) re-export these names.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any, Literal, TypeGuard

from .location import Location

__all__ = ["CLONE_REASONS", "CacheEntry", "CloneCheck", "CloneMode", "CloneRefusal", "CloneResult", "DeleteOutcome",
           "EvictReport", "FormatVerdict", "ImageInfo", "Replica", "RevalidateReport", "ScrubReport", "Scrubbed",
           "SweepReport", "VerifyReport", "decode_metadata", "encode_metadata"]

CloneMode = Literal["cow", "server_copy", "stream"]
"""How a clone is made: O(1) copy-on-write, a copy inside the backend, or a verified stream."""


class CloneRefusal(enum.StrEnum):
    """Why a copy-on-write or server-side clone is not made (``CloneCheck.code``).

    A ``str`` enum: ``check.code == "different_cluster"`` holds and JSON carries the
    plain string. Each member's :attr:`description` is the README's table row.
    Where a target is: another kind of backend (``different_backend``), another
    server or service (``different_endpoint``: S3 endpoint, Swift storage host),
    another tenant of the same service (``different_account``: Swift account),
    another Ceph cluster (``different_cluster``: fsid), another filesystem.
    """

    description: str

    def __new__(cls, value: str, description: str) -> CloneRefusal:
        member = str.__new__(cls, value)
        member._value_ = value
        member.description = description
        return member

    READ_ONLY_TARGET = "read_only_target", "the target store is read-only"
    DIFFERENT_BACKEND = "different_backend", "source and target are different kinds of backend"
    DIFFERENT_CLUSTER = "different_cluster", "the target is in another Ceph cluster (fsid differs)"
    DIFFERENT_ENDPOINT = "different_endpoint", "the target is on another S3 endpoint or Swift storage host"
    DIFFERENT_ACCOUNT = "different_account", "the target is in another account on the same Swift storage host"
    DIFFERENT_FILESYSTEM = ("different_filesystem",
                            "the roots are on different filesystems, or no in-kernel copy works between them")
    FORMAT_NOT_RAW = ("format_not_raw",
                      "the target clones raw images only (cow_requires_raw) and the image is not raw")
    SNAPSHOT_MISSING = "snapshot_missing", "the image's snapshot does not exist or cannot be opened"
    POOL_MISSING = "pool_missing", "the target pool does not exist"
    UNREACHABLE = "unreachable", "a cluster or endpoint cannot be reached"
    PERMISSION = "permission", "the target's credentials may not read the source or write the target"
    NOT_CLAIMED = "not_claimed", "the store does not claim that clone mode"
    NO_NATIVE_CLONE = "no_native_clone", "the driver has no native clone between these stores"
    MODE_UNAVAILABLE = "mode_unavailable", "the asked mode is not available (another one is)"
    NOT_CONVERTIBLE = ("not_convertible",
                       "the image cannot be converted to raw (its format, or no qemu-img on this host)")
    NO_CHECKSUM = "no_checksum", "the image records no digest or checksum to verify it by before a conversion"


CLONE_REASONS: Mapping[str, str] = MappingProxyType({r.value: r.description for r in CloneRefusal})
"""``CloneCheck.code`` values and what each means (the :class:`CloneRefusal` members as strings)."""


def refusal(code: CloneRefusal | str | None) -> CloneRefusal | None:
    """``code`` as a :class:`CloneRefusal` (a driver may pass the plain string); ValueError if unknown."""
    if code is None or isinstance(code, CloneRefusal):
        return code
    try:
        return CloneRefusal(code)  # type: ignore[call-arg]  # a lookup by value, not a new member
    except ValueError:
        raise ValueError(f"unknown clone refusal code {code!r} (one of {', '.join(CloneRefusal)})") from None


class DeleteOutcome(enum.StrEnum):
    """What ``delete`` did: removed the image, or deferred removal until its clones go."""

    DELETED = "deleted"
    DEFERRED = "deferred"


_CHECKSUM_PREFIX = "checksum."
_INTEGRITY_KEY = "integrity.blake3"  # the BLAKE3 digest of the whole image
_BLOCKS_KEY = "integrity.blocks"  # "<block size>:<BLAKE3 of the block table>"


@dataclass(frozen=True)
class ImageInfo:
    """A stored image: where it is, how big, its checksums and its detected disk format.

    ``integrity`` is the BLAKE3 digest (hex) the store recorded when the image was added and
    verifies reads with; None for an image stored without one (by glance_store's own drivers,
    or by imagestore before 0.8), which is verified with its strongest checksum instead.
    ``block_table`` (``"<block size>:<BLAKE3 of the table>"``) names the table of per-block
    digests that verifies ranged reads; None for an image of one block (its ``integrity`` covers
    any range) or one stored without a table.
    """

    location: Location
    size: int
    checksums: Mapping[str, str] = field(default_factory=dict)
    format: str | None = None
    virtual_size: int | None = None
    integrity: str | None = None
    block_table: str | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "checksums", MappingProxyType(dict(self.checksums)))

    @property
    def store(self) -> str | None:
        """The name of the store holding the image."""
        return self.location.store

    def to_dict(self) -> dict[str, Any]:
        """The JSON form printed by ``imagestore add/stat --json``."""
        return {
            "location": str(self.location),
            "store": self.store,
            "size": self.size,
            "checksums": dict(self.checksums),
            "format": self.format,
            "virtual_size": self.virtual_size,
            "integrity": self.integrity,
            "block_table": self.block_table,
        }


@dataclass(frozen=True)
class CloneResult:
    """A finished clone: the new image's location, the mode actually used and ``depth``,
    how many ancestors its data still depends on (0: independent, as after a stream or
    server copy, a reflink or a flatten; 1: an RBD clone of a flat image; ...)."""

    location: Location
    mode: CloneMode
    depth: int = 0
    converted: bool = False
    """This clone converted its source to raw (``format="raw"``): into a new base, or into the
    clone itself where the target cannot clone copy-on-write."""
    base: Location | None = None
    """The raw base the clone was made from (``format="raw"`` into a copy-on-write store)."""

    def to_dict(self) -> dict[str, Any]:
        """The JSON form printed by ``imagestore clone --json``."""
        return {"location": str(self.location), "mode": self.mode, "depth": self.depth, "converted": self.converted,
                "base": None if self.base is None else str(self.base)}


@dataclass(frozen=True)
class CloneCheck:
    """The answer of ``can_clone``: whether, in which mode, and why.

    ``code`` names, for programs, why the cheaper native mode is not used (a
    :class:`CloneRefusal`), also when ``mode="auto"`` falls back to a stream; None
    when the native mode is used.
    """

    possible: bool
    mode: CloneMode | None
    reason: str
    code: CloneRefusal | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "code", refusal(self.code))

    def __bool__(self) -> bool:
        return self.possible

    def to_dict(self) -> dict[str, Any]:
        """The JSON form: the code as its plain string."""
        return {"possible": self.possible, "mode": self.mode, "reason": self.reason,
                "code": None if self.code is None else self.code.value}


def encode_metadata(checksums: Mapping[str, str], fmt: str | None, virtual_size: int | None,
                    integrity: str | None = None, block_table: str | None = None) -> dict[str, str]:
    """The ``str -> str`` map a driver stores beside an image."""
    meta = {f"{_CHECKSUM_PREFIX}{algo}": digest for algo, digest in checksums.items()}
    if integrity is not None:
        meta[_INTEGRITY_KEY] = integrity
    if block_table is not None:
        meta[_BLOCKS_KEY] = block_table
    if fmt is not None:
        meta["format"] = fmt
    if virtual_size is not None:
        meta["virtual_size"] = str(virtual_size)
    return meta


def decode_metadata(location: Location, size: int, meta: Mapping[str, str]) -> ImageInfo:
    """The :class:`ImageInfo` for a stored image from what its driver kept."""
    checksums = {k[len(_CHECKSUM_PREFIX):]: v for k, v in meta.items() if k.startswith(_CHECKSUM_PREFIX)}
    vsize = meta.get("virtual_size")
    integrity = meta.get(_INTEGRITY_KEY)
    return ImageInfo(
        location=location,
        size=size,
        checksums=checksums,
        format=meta.get("format"),
        virtual_size=int(vsize) if vsize and vsize.isdigit() else None,
        integrity=integrity.lower() if is_hex_digest(integrity, 64) else None,
        block_table=_block_table(meta.get(_BLOCKS_KEY)),
    )


_HEX = frozenset("0123456789abcdefABCDEF")


def is_hex_digest(value: object, size: int) -> TypeGuard[str]:
    """Whether ``value`` is ``size`` hex digits (a stored digest is trusted only when it is)."""
    return isinstance(value, str) and len(value) == size and all(c in _HEX for c in value)


def _block_table(value: str | None) -> str | None:
    """A well-formed ``"<block size>:<BLAKE3 hex>"`` descriptor, else None (not trusted)."""
    size, _, digest = (value or "").partition(":")
    if size.isascii() and size.isdigit() and 0 < int(size) <= 1 << 30 and is_hex_digest(digest, 64):
        return f"{int(size)}:{digest.lower()}"
    return None


@dataclass(frozen=True)
class Replica:
    """A finished ``replicate``: the copy in the target store, how it was made (``mode``,
    None when an identical copy was already there: ``existing``) and its clone ``depth``."""

    info: ImageInfo
    mode: CloneMode | None
    existing: bool = False
    depth: int = 0

    @property
    def location(self) -> Location:
        """Where the copy is."""
        return self.info.location

    def to_dict(self) -> dict[str, Any]:
        """The JSON form: the copy's own form under ``info``."""
        return {"info": self.info.to_dict(), "mode": self.mode, "existing": self.existing, "depth": self.depth}


@dataclass(frozen=True)
class SweepReport:
    """What a sweep removed: temporaries (files, images, uploads, segments) and their bytes."""

    removed: int = 0
    bytes_freed: int = 0

    def __add__(self, other: SweepReport) -> SweepReport:
        return SweepReport(self.removed + other.removed, self.bytes_freed + other.bytes_freed)

    def to_dict(self) -> dict[str, int]:
        """The JSON form printed by ``imagestore sweep --json``."""
        return {"removed": self.removed, "bytes_freed": self.bytes_freed}


@dataclass(frozen=True)
class Scrubbed:
    """One image a scrub looked at: ``status`` is ``ok`` (read whole, its digest matched),
    ``corrupt`` (the bytes are not the stored ones, or not as many), ``unverifiable`` (no
    digest nor checksum to check), ``failed`` (the read failed: ``detail`` says why) or
    ``skipped`` (gone since the listing, not an image of the store, or written within
    ``older_than``); ``algorithm`` is what it was checked with. ``backfilled`` names what an
    ``ok`` image lacked and the scrub recorded, from its verified bytes: ``digest`` (the BLAKE3
    of the whole image), ``block table`` (its descriptor in the metadata), ``table object``
    (the companion, when only it was missing or damaged)."""

    image: str
    status: str
    size: int | None = None
    algorithm: str | None = None
    detail: str | None = None
    backfilled: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        """One JSON line of ``imagestore scrub --json``."""
        return {"image": self.image, "status": self.status, "size": self.size, "algorithm": self.algorithm,
                "detail": self.detail, "backfilled": list(self.backfilled)}


@dataclass(frozen=True)
class ScrubReport:
    """What a scrub found; corrupt images are reported, never deleted. ``last`` is the last
    image looked at (in id order): ``scrub(start_after=last)`` goes on from there."""

    checked: int = 0
    bytes_read: int = 0
    corrupt: tuple[str, ...] = ()
    unverifiable: tuple[str, ...] = ()
    failed: tuple[str, ...] = ()
    last: str | None = None
    backfilled: tuple[str, ...] = ()
    """Images that lacked their digest or block table and have them now."""
    skipped: int = 0
    """Images not read: gone since the listing, not the store's, or written within ``older_than``."""

    def to_dict(self) -> dict[str, Any]:
        """The JSON summary of ``imagestore scrub --json``."""
        return {"checked": self.checked, "bytes_read": self.bytes_read, "corrupt": list(self.corrupt),
                "unverifiable": list(self.unverifiable), "failed": list(self.failed), "last": self.last,
                "backfilled": list(self.backfilled), "skipped": self.skipped}


@dataclass(frozen=True)
class FormatVerdict:
    """What an image is and whether it is safe to hand to a hypervisor.

    ``format`` is a glance ``disk_format`` name (None only if nothing could be
    decided); ``reasons`` explains an unsafe verdict and is empty when safe;
    ``virtual_size`` is the guest-visible size in bytes; ``partition_table``
    names the partition table ("gpt"/"mbr") found at the start of the guest
    disk (raw disks, hybrid ISOs and fixed VHDs).
    """

    format: str | None
    safe: bool
    reasons: tuple[str, ...] = field(default=())
    virtual_size: int | None = None
    partition_table: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-ready dict (``reasons`` as a list)."""
        return {
            "format": self.format,
            "safe": self.safe,
            "reasons": list(self.reasons),
            "virtual_size": self.virtual_size,
            "partition_table": self.partition_table,
        }


# ------------------------------------------------------------ the compute-node cache
@dataclass(frozen=True)
class CacheEntry:
    """One cached image: its key (``ALGO-HEX``), path, sizes, format, origin and use."""

    key: str
    path: Path
    size: int
    allocated: int
    format: str | None
    virtual_size: int | None
    source: str
    how: str
    fetched_at: float
    last_used: float
    leases: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        """The JSON form printed by ``imagestore cache ls --json``."""
        return {"key": self.key, "path": str(self.path), "size": self.size, "allocated": self.allocated,
                "format": self.format, "virtual_size": self.virtual_size, "source": self.source, "how": self.how,
                "fetched_at": self.fetched_at, "last_used": self.last_used, "leases": list(self.leases)}


@dataclass(frozen=True)
class EvictReport:
    """What an eviction removed, and what it kept because it was open, leased or just used."""

    removed: tuple[str, ...] = ()
    bytes_freed: int = 0
    kept: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        """The JSON form printed by ``imagestore cache evict --json``."""
        return {"removed": list(self.removed), "bytes_freed": self.bytes_freed, "kept": list(self.kept)}


@dataclass(frozen=True)
class VerifyReport:
    """Entries re-hashed: the good, and the damaged ones (removed unless in use)."""

    ok: tuple[str, ...] = ()
    corrupt: tuple[str, ...] = ()
    removed: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        """The JSON form printed by ``imagestore cache verify --json``."""
        return {"ok": list(self.ok), "corrupt": list(self.corrupt), "removed": list(self.removed)}


@dataclass(frozen=True)
class RevalidateReport:
    """Entries re-inspected against a policy; ``refused`` maps key to reasons (all removed)."""

    accepted: tuple[str, ...] = ()
    refused: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    in_use: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        """The JSON form: ``refused`` as key -> list of reasons."""
        return {"accepted": list(self.accepted), "refused": {k: list(v) for k, v in self.refused.items()},
                "in_use": list(self.in_use)}
