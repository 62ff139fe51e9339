"""The :class:`Store` facade: the one pipeline (integrity, limits, format policy,
progress, retries, clone planning) shared by every driver."""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Mapping
from dataclasses import replace
from typing import Literal, TypeVar

from .capabilities import Capabilities
from .config import StoreSettings
from .drivers.base import CloneRequest, Driver, Transient
from .errors import (
    BackendUnavailable,
    ChecksumMismatch,
    ImageTooLarge,
    InvalidLocation,
    UnsafeImage,
    Unsupported,
)
from .hashing import compare, strongest, validate_algorithms
from .location import DirectAccess, Location, validate_image_id
from .pipeline import Source, write_stream
from .progress import Progress
from .reader import ImageReader, write_atomically
from .results import CloneCheck, CloneResult, DeleteOutcome, ImageInfo, decode_metadata, encode_metadata
from .retry import call_with_retries

__all__ = ["Store"]

log = logging.getLogger("imagestore")
T = TypeVar("T")
CloneModeArg = Literal["auto", "cow", "server_copy", "stream"]
_MODES = ("auto", "cow", "server_copy", "stream")


class Store:
    """One named store: a driver plus the policy every operation goes through.

    Methods take a :class:`Location`, its string form, or a bare image id.
    A Store is safe to share between threads.
    """

    def __init__(self, driver: Driver, settings: StoreSettings | None = None) -> None:
        self.driver = driver
        self.settings = settings or StoreSettings()

    def __repr__(self) -> str:
        return f"<Store {self.name!r} driver={self.driver.scheme!r}>"

    @property
    def name(self) -> str:
        """The store's name, as used in locations and configuration."""
        return self.driver.name

    @property
    def capabilities(self) -> Capabilities:
        """What this store can do."""
        return self.driver.capabilities

    # ------------------------------------------------------------ helpers
    def location(self, ref: Location | str) -> Location:
        """Resolve ``ref`` (location, location string or image id) to a location of this store."""
        if isinstance(ref, str) and "://" not in ref:
            return self.driver.location_for(validate_image_id(ref))
        loc = Location.parse(ref)
        if loc.store is not None and loc.store != self.name:
            raise InvalidLocation(f"location {loc} belongs to store {loc.store!r}", store=self.name)
        if not self.driver.owns(loc):
            raise InvalidLocation(f"location {loc} is not in this store", store=self.name)
        return loc.with_store(self.name)

    def _retry(self, op: str, fn: Callable[[], T], image: str | None = None) -> T:
        return call_with_retries(
            op, fn, retries=self.settings.retries, backoff=self.settings.retry_backoff,
            store=self.name, image=image,
        )

    # ------------------------------------------------------------ add
    def add(
        self,
        image_id: str,
        data: Source,
        size: int | None = None,
        *,
        format: str | None = None,
        expected: Mapping[str, str] | None = None,
        progress: Progress | None = None,
    ) -> ImageInfo:
        """Store ``data`` as ``image_id``; returns its location, size, checksums and format.

        ``size`` None means unknown. ``format`` is the declared disk format, checked
        against the detected one; ``expected`` maps algorithm to hex digest and must
        match what is computed. On any error nothing remains in the store.
        """
        validate_image_id(image_id)
        if size is not None and (not isinstance(size, int) or size < 0):
            raise ValueError(f"size must be a non-negative int or None, not {size!r}")
        settings = self.settings
        if expected:
            settings = _with_algorithms(settings, expected)
        self._precheck_size(image_id, size)
        try:
            writer = self.driver.open_writer(image_id, size)
        except Transient as exc:
            raise BackendUnavailable(f"cannot start upload: {exc}", store=self.name, image=image_id) from exc
        try:
            outcome = write_stream(
                writer, data, settings=settings, size=size, progress=progress, store=self.name, image=image_id
            )
            if expected:
                _check_expected(expected, outcome.checksums, self.name, image_id)
            verdict = outcome.verdict
            if verdict is not None:
                settings.policy.check(verdict, declared=format, store=self.name, image=image_id)
            elif format is not None and settings.policy.allowed_formats is not None \
                    and format.lower() not in settings.policy.allowed_formats:
                raise UnsafeImage(f"format {format!r} is not allowed", store=self.name, image=image_id)
            detected = verdict.format if verdict is not None else format
            vsize = verdict.virtual_size if verdict is not None else None
            meta = encode_metadata(outcome.checksums, detected, vsize)
            loc = writer.commit(meta)
        except BaseException:
            writer.abort()
            raise
        log.info("store %s: added %s (%d bytes, format %s)", self.name, image_id, outcome.size, detected)
        return ImageInfo(loc.with_store(self.name), outcome.size, outcome.checksums, detected, vsize)

    def _precheck_size(self, image_id: str, size: int | None) -> None:
        caps = [c for c in (self.settings.max_image_size, self.capabilities.max_object_size) if c]
        if size is not None and caps and size > min(caps):
            raise ImageTooLarge(f"declared size {size} exceeds the limit of {min(caps)} bytes",
                                store=self.name, image=image_id)
        if size is None and not self.capabilities.unknown_size:
            raise Unsupported("this store needs the size of an upload in advance", store=self.name, image=image_id)

    # ------------------------------------------------------------ read
    def stat(self, location: Location | str) -> ImageInfo:
        """Size, checksums and format of a stored image; NotFound if absent."""
        loc = self.location(location)
        stored = self._retry("stat", lambda: self.driver.stat(loc), loc.image)
        return decode_metadata(loc, stored.size, stored.metadata)

    def open(
        self,
        location: Location | str,
        offset: int = 0,
        length: int | None = None,
        *,
        verify: bool | None = None,
        expected: Mapping[str, str] | None = None,
        progress: Progress | None = None,
    ) -> ImageReader:
        """A reader over the image (or ``length`` bytes from ``offset``).

        ``verify`` defaults to True for whole reads (the store's ``verify_reads``):
        the stream then raises ChecksumMismatch at its end if the bytes are not the
        ones stored (or not those of ``expected``). Ranged reads cannot be verified.
        """
        loc = self.location(location)
        info = self.stat(loc)
        if offset < 0 or (length is not None and length < 0):
            raise ValueError("offset and length must be non-negative")
        whole = offset == 0 and (length is None or length >= info.size)
        if verify is None:
            verify = whole and (self.settings.verify_reads or bool(expected))
        if (verify or expected) and not whole:
            raise Unsupported("a ranged read cannot be verified; pass verify=False", store=self.name, image=loc.image)
        if (offset or length is not None) and not whole and not self.capabilities.range_read:
            raise Unsupported("this store cannot read ranges", store=self.name, image=loc.image)
        want = _expected_for(info, expected) if verify else None
        if verify and not want:
            raise Unsupported("no checksum is stored for this image; pass expected=", store=self.name,
                              image=loc.image)
        start = min(offset, info.size)
        count = max(0, info.size - start) if length is None else max(0, min(length, info.size - start))
        raw = self._retry("open", lambda: self.driver.open_reader(loc, start, count), loc.image)
        return ImageReader(raw, size=count, chunk_size=self.settings.chunk_size, expected=want,
                           progress=progress, store=self.name, image=loc.image)

    def get(self, location: Location | str, offset: int = 0, length: int | None = None,
            *, verify: bool | None = None) -> bytes:
        """The image's bytes (or a range) in memory; for small images and tests."""
        with self.open(location, offset, length, verify=verify) as reader:
            return reader.read()

    def download_to(
        self, location: Location | str, path: str | os.PathLike[str], *, verify: bool = True,
        progress: Progress | None = None,
    ) -> ImageInfo:
        """Write the image to ``path`` atomically (temporary file, fsync, rename), verified."""
        loc = self.location(location)
        with self.open(loc, verify=verify, progress=progress) as reader:
            write_atomically(reader, path)
        return self.stat(loc)

    # ------------------------------------------------------------ locate / delete
    def locate(self, location: Location | str) -> DirectAccess:
        """What another service needs to reach the image itself (path, rbd spec or URL)."""
        loc = self.location(location)
        if not self.capabilities.direct_access:
            raise Unsupported("this store gives no direct access", store=self.name, image=loc.image)
        return self._retry("locate", lambda: self.driver.locate(loc), loc.image)

    def delete(self, location: Location | str) -> DeleteOutcome:
        """Delete the image: ``DELETED``, ``DEFERRED`` (clones depend on it), or InUse/NotFound."""
        loc = self.location(location)
        if not self.capabilities.write:
            raise Unsupported("this store is read-only", store=self.name, image=loc.image)
        result = self._retry("delete", lambda: self.driver.delete(loc), loc.image)
        log.info("store %s: delete %s -> %s", self.name, loc.image, result)
        return DeleteOutcome(result)

    # ------------------------------------------------------------ clone
    def can_clone(self, location: Location | str, to: Store | None = None,
                  mode: CloneModeArg = "auto") -> CloneCheck:
        """Whether ``clone(location, to, mode=mode)`` would work, in which mode, and why."""
        target = to or self
        loc = self.location(location)
        if mode not in _MODES:
            raise ValueError(f"mode must be one of {', '.join(_MODES)}")
        if not target.capabilities.write:
            return CloneCheck(False, None, f"target store {target.name!r} is read-only")
        plan = self._retry("plan_clone", lambda: self.driver.plan_clone(loc, target.driver), loc.image)
        if mode == "stream" or (mode == "auto" and plan.mode is None):
            reason = "verified stream copy" + (f" ({plan.reason})" if plan.mode is None else "")
            return CloneCheck(True, "stream", reason)
        if mode == "auto" or plan.mode == mode:
            return CloneCheck(True, plan.mode, plan.reason)
        return CloneCheck(False, None, plan.reason if plan.mode is None
                          else f"{mode} is not available; {plan.mode} is ({plan.reason})")

    def clone(
        self,
        location: Location | str,
        to: Store | None = None,
        *,
        name: str | None = None,
        mode: CloneModeArg = "auto",
        size: int | None = None,
        progress: Progress | None = None,
    ) -> CloneResult:
        """Copy an image into ``to`` (default: this store) as ``name`` (default: same id).

        ``mode="auto"`` picks the cheapest mode that works: ``cow`` (RBD clone,
        reflink), ``server_copy``, else a verified ``stream``. An explicit mode that
        is not available raises Unsupported instead of silently copying.
        ``size`` grows the clone (cow only).
        """
        target = to or self
        loc = self.location(location)
        new_name = validate_image_id(name or loc.image)
        info = self.stat(loc)
        check = self.can_clone(loc, target, mode)
        if not check.possible or check.mode is None:
            raise Unsupported(f"cannot clone in mode {mode}: {check.reason}", store=self.name, image=loc.image)
        if check.mode != "stream":  # a stream clone is checked by target.add itself
            target.settings.policy.check_clone(info.format, cow=check.mode == "cow", store=target.name,
                                               image=new_name)
        if size is not None and check.mode != "cow":
            raise Unsupported("a clone can be resized only in cow mode", store=self.name, image=loc.image)
        if check.mode == "stream":
            with self.open(loc, verify=True, progress=progress) as reader:
                new = target.add(new_name, reader, info.size, format=info.format,
                                 expected=dict(info.checksums))
            return CloneResult(new.location, "stream")
        request = CloneRequest(name=new_name, mode=check.mode,
                               metadata=encode_metadata(info.checksums, info.format, info.virtual_size), size=size)
        new_loc = self.driver.clone(loc, target.driver, request)
        if progress is not None:
            progress(info.size, info.size)
        log.info("store %s: cloned %s to %s/%s (%s)", self.name, loc.image, target.name, new_name, check.mode)
        return CloneResult(new_loc.with_store(target.name), check.mode)

    # ------------------------------------------------------------ lifecycle
    def sweep(self) -> int:
        """Remove temporaries left behind by killed writers; returns the count."""
        return self.driver.sweep()

    def close(self) -> None:
        """Release the driver's connections."""
        self.driver.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _with_algorithms(settings: StoreSettings, expected: Mapping[str, str]) -> StoreSettings:
    """Settings that also compute every algorithm named in ``expected``."""
    extra = [a for a in expected if a not in settings.checksums]
    if not extra:
        return settings
    return replace(settings, checksums=validate_algorithms((*settings.checksums, *extra), key="expected"))


def _check_expected(expected: Mapping[str, str], actual: Mapping[str, str], store: str, image: str) -> None:
    bad = compare(expected, actual)
    if bad is not None:
        algo, want, got = bad
        raise ChecksumMismatch(f"{algo} of the upload is {got}, expected {want}", algorithm=algo,
                               expected=want, actual=got, store=store, image=image)


def _expected_for(info: ImageInfo, expected: Mapping[str, str] | None) -> dict[str, str]:
    """What to verify a read against: the caller's digests, else the strongest stored one."""
    if expected:
        return dict(expected)
    if not info.checksums:
        return {}
    algo = strongest(info.checksums)
    return {algo: info.checksums[algo]}
