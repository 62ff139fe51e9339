"""The :class:`Store` facade: the one pipeline (integrity, limits, format policy,
progress, retries, error translation, clone planning, sweeping) shared by every driver."""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import replace
from typing import Literal, TypeVar

from .spi.capabilities import Capabilities
from .config import StoreSettings
from .spi.contract import CloneRequest, DeleteOutcome, DriverContext, Reader, SweepReport, Writer
from .spi.driver import Driver
from .errors import (
    AlreadyExists,
    BackendError,
    ChecksumMismatch,
    ImageStoreError,
    InvalidArgument,
    InvalidLocation,
    NoSpace,
    NotFound,
    UnsafeImage,
    Unsupported,
)
from .engine.hashing import compare, strongest, validate_algorithms, validate_digests
from .engine.limits import AddGate, IdleWatch
from .location import DirectAccess, Location, validate_image_id
from .engine.pipeline import Limit, Source, check_options, check_source, write_stream
from .engine.progress import Progress
from .engine.reader import ImageReader, write_atomically
from .results import CloneCheck, CloneRefusal, CloneResult, ImageInfo, decode_metadata, encode_metadata
from .spi.retry import call_with_retries, translate
from .store_ops import ConsumerOps

__all__ = ["Store"]

log = logging.getLogger("imagestore")
T = TypeVar("T")
CloneModeArg = Literal["auto", "cow", "server_copy", "stream"]
_MODES = ("auto", "cow", "server_copy", "stream")
_AUTO_SWEEP_BUDGET = 2.0  # seconds an add may spend sweeping dead writers' temporaries


class _GuardedWriter:
    """A driver's writer whose every failure leaves as an ImageStoreError; abort never raises."""

    def __init__(self, writer: Writer, store: str, image: str) -> None:
        self._writer = writer
        self._store = store
        self._image = image
        self._lock = threading.Lock()
        self._aborted = False

    def _fail(self, exc: Exception, op: str) -> BaseException:
        return translate(exc, op, store=self._store, image=self._image)

    def write(self, data: memoryview) -> None:
        try:
            self._writer.write(data)
        except Exception as exc:
            error = self._fail(exc, "upload")
            if error is exc:
                raise
            raise error from exc

    def commit(self, metadata: Mapping[str, str]) -> Location:
        try:
            return self._writer.commit(metadata)
        except Exception as exc:
            error = self._fail(exc, "publish")
            if error is exc:
                raise
            raise error from exc

    def abort(self) -> None:
        """Abort once, from whichever thread comes first (the idle watch or the add)."""
        with self._lock:
            if self._aborted:
                return
            self._aborted = True
        try:
            self._writer.abort()
        except Exception as exc:  # noqa: BLE001 - the original failure is what the caller must see
            log.warning("store %s: abort of the upload of %s failed (%s); sweep() removes what is left",
                        self._store, self._image, translate(exc, "abort", store=self._store, image=self._image))


class Store(ConsumerOps):
    """One named store: a driver plus the policy every operation goes through.

    Methods take a :class:`Location`, its string form, or a bare image id.
    Every failure is an :class:`~imagestore.errors.ImageStoreError` (errors
    raised by the data source given to :meth:`add` propagate unchanged).
    Opening a store opens its driver once (connect, probe); a Store is safe to
    share between threads.
    """

    def __init__(self, driver: Driver, settings: StoreSettings | None = None) -> None:
        self.driver = driver
        self.settings = settings or StoreSettings()
        s = self.settings
        context = DriverContext(concurrency=s.concurrency, chunk_size=s.chunk_size, retry=s.retry,
                                timeouts=s.timeouts)
        try:
            self._caps: Capabilities = self._call("open store", lambda: driver.open(context))
        except BaseException:
            self.close()  # a failed probe must not leak the driver's connection pools
            raise
        self._sweep_lock = threading.Lock()
        self._swept_at: float | None = None
        self._publish_lock = threading.Lock()
        self._gate = AddGate(self.settings.max_concurrent_adds)

    def __repr__(self) -> str:
        return f"<Store {self.name!r} driver={self.driver.scheme!r}>"

    @property
    def name(self) -> str:
        """The store's name, as used in locations and configuration."""
        return self.driver.name

    @property
    def capabilities(self) -> Capabilities:
        """What this store can do (probed once, when the store was opened)."""
        return self._caps

    # ------------------------------------------------------------ helpers
    def location(self, ref: Location | str) -> Location:
        """Resolve ``ref`` (location, location string or image id) to a location of this store.

        Location strings in glance_store's forms (``rbd://fsid/pool/image/snap``,
        ``file:///path``...) are accepted too.
        """
        if isinstance(ref, str) and "://" not in ref:
            return self.driver.location_for(validate_image_id(ref))
        loc = parse_any(ref)
        if loc.store is not None and loc.store != self.name:
            raise InvalidLocation(f"location {loc} belongs to store {loc.store!r}", store=self.name)
        if not self.driver.owns(loc):
            raise InvalidLocation(f"location {loc} is not in this store", store=self.name)
        return loc.with_store(self.name)

    def _call(self, op: str, fn: Callable[[], T], image: str | None = None, *, retry: bool = True) -> T:
        """Run a driver call: retried on Transient when idempotent, always translated."""
        policy = self.settings.retry if retry else self.settings.retry.with_retries(0)
        return call_with_retries(op, fn, policy=policy, store=self.name, image=image)

    def limit(self) -> Limit:
        """The largest image this store takes: its ``max_image_size`` or the backend's limit."""
        cfg, backend = self.settings.max_image_size, self._caps.max_object_size
        if backend is not None and (cfg is None or backend < cfg):
            return Limit(backend, f"the backend's maximum object size ({self.driver.scheme})")
        return Limit(cfg)

    def _check_free_space(self, size: int, image: str) -> None:
        """NoSpace before the first byte when the backend reports less room than declared."""
        free = self._call("free space", self.driver.free_space, image)
        if free is not None and size > free:
            raise NoSpace(f"the upload of {size} bytes does not fit: the backend has {free} bytes free",
                          store=self.name, image=image)

    def _target(self, to: object, image: str) -> Store:
        """The store a clone goes to: ``to``, or this one."""
        if to is None:
            return self
        if not isinstance(to, Store):
            raise InvalidArgument(f"to must be a Store, not {type(to).__name__}", store=self.name, image=image)
        return to

    def _require_write(self, image: str | None) -> None:
        if not self._caps.write:
            raise Unsupported("this store is read-only", store=self.name, image=image)

    # ------------------------------------------------------------ add
    def add(
        self,
        image_id: str,
        data: Source,
        size: int | None = None,
        *,
        format: str | None = None,
        expected: Mapping[str, str] | None = None,
        checksums: Sequence[str] | None = None,
        progress: Progress | None = None,
    ) -> ImageInfo:
        """Store ``data`` as ``image_id``; returns its location, size, checksums and format.

        ``size`` None means unknown. ``format`` is the declared disk format, checked
        against the detected one; ``expected`` maps algorithm to hex digest and must
        match what is computed; ``checksums`` names algorithms to compute (and keep)
        besides the store's. On any error nothing remains in the store.
        """
        validate_image_id(image_id)
        if size is not None and (not isinstance(size, int) or isinstance(size, bool) or size < 0):
            raise InvalidArgument(f"size must be a non-negative int or None, not {size!r}", store=self.name,
                                  image=image_id)
        check_source(data, store=self.name, image=image_id)
        check_options(store=self.name, image=image_id, format=format, progress=progress)
        self._require_write(image_id)
        settings = _with_algorithms(self.settings, checksums, expected, store=self.name, image=image_id)
        limit = self.limit()
        if size is not None:
            limit.check(size, "declared size", store=self.name, image=image_id)
        elif not self._caps.unknown_size:
            raise Unsupported("this store needs the size of an upload in advance", store=self.name, image=image_id)
        with self._gate.slot(store=self.name, image=image_id):
            if size:
                self._check_free_space(size, image_id)
            self._auto_sweep()
            return self._add(image_id, data, size, settings, limit, format=format, expected=expected,
                             progress=progress)

    def _add(self, image_id: str, data: Source, size: int | None, settings: StoreSettings, limit: Limit, *,
             format: str | None, expected: Mapping[str, str] | None, progress: Progress | None) -> ImageInfo:
        raw = self._call("start upload", lambda: self.driver.open_writer(image_id, size), image_id)
        writer = _GuardedWriter(raw, self.name, image_id)
        watch = IdleWatch(settings.idle_timeout, writer.abort)
        try:
            try:
                outcome = write_stream(writer, data, settings=settings, size=size, limit=limit,
                                       progress=progress, store=self.name, image=image_id, watch=watch)
            finally:
                watch.close()
            if expected:
                _check_expected(expected, outcome.checksums, self.name, image_id)
            verdict = outcome.verdict
            if verdict is not None:
                settings.policy.check(verdict, declared=format, store=self.name, image=image_id)
            elif format is not None and not settings.policy.allows(format):
                raise UnsafeImage(f"format {format!r} is not allowed", store=self.name, image=image_id)
            detected = verdict.format if verdict is not None else format
            vsize = verdict.virtual_size if verdict is not None else None
            meta = encode_metadata(outcome.checksums, detected, vsize)
            with self._publishing(image_id):
                loc = writer.commit(meta)
        except BaseException:
            writer.abort()
            raise
        log.info("store %s: added %s (%d bytes, format %s)", self.name, image_id, outcome.size, detected)
        return ImageInfo(loc.with_store(self.name), outcome.size, outcome.checksums, detected, vsize)

    @contextmanager
    def _publishing(self, image_id: str) -> Iterator[None]:
        """Around a commit: for a backend without atomic create, serialise commits in this
        process and refuse an id that is taken (the backend itself would overwrite)."""
        if self._caps.atomic_create:
            yield
            return
        with self._publish_lock:
            try:
                self._call("stat", lambda: self.driver.stat(self.driver.location_for(image_id)), image_id)
            except NotFound:
                pass
            else:
                raise AlreadyExists("an image with this id exists", store=self.name, image=image_id)
            yield

    # ------------------------------------------------------------ read
    def stat(self, location: Location | str) -> ImageInfo:
        """Size, checksums and format of a stored image; NotFound if absent."""
        loc = self.location(location)
        stored = self._call("stat", lambda: self.driver.stat(loc), loc.image)
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
        A broken transfer resumes from where it stopped.
        """
        loc = self.location(location)
        if not _is_count(offset) or (length is not None and not _is_count(length)):
            raise InvalidArgument(f"offset and length must be non-negative ints, not {offset!r} and {length!r}",
                                  store=self.name, image=loc.image)
        validate_digests(expected, store=self.name, image=loc.image)
        check_options(store=self.name, image=loc.image, progress=progress)
        info = self.stat(loc)
        whole = offset == 0 and (length is None or length >= info.size)
        if verify is None:
            verify = whole and (self.settings.verify_reads or bool(expected))
        if (verify or expected) and not whole:
            raise Unsupported("a ranged read cannot be verified; pass verify=False", store=self.name, image=loc.image)
        if not whole and not self._caps.range_read:
            raise Unsupported("this store cannot read ranges", store=self.name, image=loc.image)
        want = _expected_for(info, expected) if verify else None
        if verify and not want:
            raise Unsupported("no checksum is stored for this image; pass expected=", store=self.name,
                              image=loc.image)
        start = min(offset, info.size)
        count = max(0, info.size - start) if length is None else max(0, min(length, info.size - start))

        def opener(at: int, n: int) -> Reader:
            return self._call("open", lambda: self.driver.open_reader(loc, at, n), loc.image)

        return ImageReader(opener, offset=start, size=count, chunk_size=self.settings.chunk_size, expected=want,
                           progress=progress, store=self.name, image=loc.image, policy=self.settings.retry)

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
        if not isinstance(path, (str, os.PathLike)):
            raise InvalidArgument(f"path must be a file path, not {type(path).__name__}", store=self.name,
                                  image=loc.image)
        info = self.stat(loc)
        with self.open(loc, verify=verify, progress=progress) as reader:
            try:
                write_atomically(reader, path)
            except OSError as exc:  # the local destination, not the backend
                raise translate(exc, f"write {os.fspath(path)}", store=self.name, image=loc.image) from exc
        return info

    # ------------------------------------------------------------ locate / delete
    def locate(self, location: Location | str, *, ttl: float | None = None) -> DirectAccess:
        """What another service needs to reach the image itself (path, rbd spec or URL).

        ``ttl`` asks for a presigned URL valid that many seconds (stores with ``presign``).
        """
        loc = self.location(location)
        if not self._caps.direct_access:
            raise Unsupported("this store gives no direct access", store=self.name, image=loc.image)
        if ttl is not None:
            if not self._caps.presign:
                raise Unsupported("this store cannot presign URLs (no ttl)", store=self.name, image=loc.image)
            if isinstance(ttl, bool) or not isinstance(ttl, (int, float)) or not ttl > 0 or ttl == float("inf"):
                raise InvalidArgument(f"ttl must be a positive number of seconds, not {ttl!r}", store=self.name,
                                      image=loc.image)
        return self._call("locate", lambda: self.driver.locate(loc, ttl), loc.image)

    def delete(self, location: Location | str) -> DeleteOutcome:
        """Delete the image: ``DELETED``, ``DEFERRED`` (clones depend on it), or InUse/NotFound."""
        loc = self.location(location)
        self._require_write(loc.image)
        attempts = 0

        def attempt() -> DeleteOutcome:
            nonlocal attempts
            attempts += 1
            try:
                return DeleteOutcome(self.driver.delete(loc))
            except NotFound:
                if attempts > 1:  # an earlier attempt that timed out did delete it
                    return DeleteOutcome.DELETED
                raise

        result = self._call("delete", attempt, loc.image)
        if result is DeleteOutcome.DEFERRED and not self._caps.deferred_delete:
            raise BackendError("the driver deferred a delete without claiming deferred_delete",
                               store=self.name, image=loc.image)
        log.info("store %s: delete %s -> %s", self.name, loc.image, result)
        return result

    # ------------------------------------------------------------ clone
    def can_clone(self, location: Location | str, to: Store | None = None,
                  mode: CloneModeArg = "auto") -> CloneCheck:
        """Whether ``clone(location, to, mode=mode)`` would work, in which mode, and why."""
        loc = self.location(location)
        target = self._target(to, loc.image)
        if mode not in _MODES:
            raise InvalidArgument(f"mode must be one of {', '.join(_MODES)}, not {mode!r}", store=self.name,
                                  image=loc.image)
        if not target.capabilities.write:
            return CloneCheck(False, None, f"target store {target.name!r} is read-only",
                              CloneRefusal.READ_ONLY_TARGET)
        plan = self._call("plan clone", lambda: self.driver.plan_clone(loc, target.driver), loc.image)
        claimed = {"cow": self._caps.cow_clone, "server_copy": self._caps.server_copy}
        if plan.mode is not None and plan.mode != "stream" and not claimed[plan.mode]:
            plan = replace(plan, mode=None, reason=f"store {self.name!r} does not claim {plan.mode}",
                           code=CloneRefusal.NOT_CLAIMED)
        plan = self._refine_plan(loc, target, plan)
        code = (plan.code or CloneRefusal.NO_NATIVE_CLONE) if plan.mode is None else None
        if mode == "stream" or (mode == "auto" and plan.mode is None):
            reason = "verified stream copy" + (f" ({plan.reason})" if plan.mode is None else "")
            return CloneCheck(True, "stream", reason, code)
        if mode == "auto" or plan.mode == mode:
            return CloneCheck(True, plan.mode, plan.reason)
        return CloneCheck(False, None, plan.reason if plan.mode is None
                          else f"{mode} is not available; {plan.mode} is ({plan.reason})",
                          code if plan.mode is None else CloneRefusal.MODE_UNAVAILABLE)

    def clone(
        self,
        location: Location | str,
        to: Store | None = None,
        *,
        name: str | None = None,
        mode: CloneModeArg = "auto",
        size: int | None = None,
        verify_source: bool = False,
        progress: Progress | None = None,
    ) -> CloneResult:
        """Copy an image into ``to`` (default: this store) as ``name`` (default: same id).

        ``mode="auto"`` picks the cheapest mode that works: ``cow`` (RBD clone,
        reflink), ``server_copy``, else a verified ``stream``. An explicit mode that
        is not available raises Unsupported instead of silently copying.
        ``size`` grows the clone (cow only, raw images; a grown clone keeps no
        checksum). The target's limits and format policy apply in every mode.
        ``verify_source`` first checks the source's bytes against its checksum
        (once per immutable version, see :meth:`verify_source`); a stream is
        verified anyway. The result's ``depth`` is the clone's parent chain length.
        """
        loc = self.location(location)
        target = self._target(to, loc.image)
        if size is not None and not _is_count(size):
            raise InvalidArgument(f"size must be a non-negative int or None, not {size!r}", store=self.name,
                                  image=loc.image)
        new_name = validate_image_id(name or loc.image)
        check_options(store=self.name, image=loc.image, progress=progress)
        target._require_write(new_name)
        info = self.stat(loc)
        check = self.can_clone(loc, target, mode)
        if not check.possible or check.mode is None:
            raise self._refused(check, fmt=info.format, store=target.name, image=new_name)
        if size is not None and check.mode != "cow":
            raise Unsupported("a clone can be resized only in cow mode", store=self.name, image=loc.image)
        limit = target.limit()
        limit.check(max(info.size, size or 0), "clone", store=target.name, image=new_name)
        if check.mode == "stream":  # checked by target.add itself
            with self.open(loc, verify=True, progress=progress) as reader:
                new = target.add(new_name, reader, info.size, format=info.format,
                                 expected=dict(info.checksums))
            return CloneResult(new.location, "stream")
        target.settings.policy.check_clone(info.format, cow=check.mode == "cow",
                                           accept_unknown=not target.settings.inspect,
                                           store=target.name, image=new_name)
        metadata = self._clone_metadata(info, size, store=self.name, image=loc.image)
        version = None
        if verify_source:
            self.verify_source(loc, progress=progress)
            version = self._version(loc)
        request = CloneRequest(name=new_name, mode=check.mode, metadata=metadata, size=size)
        new_loc = self._call("clone", lambda: self.driver.clone(loc, target.driver, request), loc.image,
                             retry=False).with_store(target.name)
        if verify_source:
            self._check_unchanged(loc, version, target, new_loc)
        depth = target.depth(new_loc) if check.mode == "cow" else 0
        if progress is not None:
            progress(info.size, info.size)
        log.info("store %s: cloned %s to %s/%s (%s, depth %d)", self.name, loc.image, target.name, new_name,
                 check.mode, depth)
        return CloneResult(new_loc, check.mode, depth)

    # ------------------------------------------------------------ lifecycle
    def sweep(self, older_than: float | None = None, *, deadline: float | None = None) -> SweepReport:
        """Remove temporaries of dead writers older than ``older_than`` seconds (default: the
        store's ``sweep_older_than``); never one of a live writer. Returns counts and bytes."""
        age = self.settings.sweep_older_than if older_than is None else older_than
        if isinstance(age, bool) or not isinstance(age, (int, float)) or not age >= 0:
            raise InvalidArgument(f"older_than must be a non-negative number of seconds, not {age!r}",
                                  store=self.name)
        report = self._call("sweep", lambda: self.driver.sweep(age, deadline))
        if report.removed:
            log.info("store %s: sweep removed %d temporaries (%d bytes)", self.name, report.removed,
                     report.bytes_freed)
        return report

    def _auto_sweep(self) -> None:
        """Before an add: sweep dead writers' leftovers, bounded in time, at most once per
        ``sweep_older_than`` (and once per opened store), so a crash does not leak forever."""
        s = self.settings
        if not (s.auto_sweep and self._caps.write and self._caps.persistent):
            return
        now = time.monotonic()
        with self._sweep_lock:
            if self._swept_at is not None and now - self._swept_at < max(s.sweep_older_than, 60.0):
                return
            self._swept_at = now
        try:
            self.sweep(deadline=now + _AUTO_SWEEP_BUDGET)
        except ImageStoreError as exc:
            log.warning("store %s: automatic sweep failed: %s", self.name, exc)

    def close(self) -> None:
        """Release the driver's connections."""
        try:
            self.driver.close()
        except Exception as exc:  # noqa: BLE001 - closing must not fail a caller's cleanup
            log.warning("store %s: close failed: %s", self.name, exc)

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def parse_any(ref: Location | str) -> Location:
    """A canonical location string, else a glance_store URI (whose credentials are dropped)."""
    if isinstance(ref, Location):
        return ref
    if not isinstance(ref, str):
        raise InvalidLocation(f"a location is a string, not {type(ref).__name__}")
    scheme = ref.partition("://")[0]
    # a canonical location never holds a raw "@" (it is percent-quoted): one means
    # glance_store's embedded credentials, whose secret may itself contain "/"
    glance_only = scheme.lower() == "filesystem" or "+" in scheme or "@" in ref.split("?", 1)[0]
    if glance_only:
        return Location.from_glance(ref)
    try:
        return Location.parse(ref)
    except InvalidLocation as first:
        try:
            return Location.from_glance(ref)
        except InvalidLocation:
            raise first from None


def _with_algorithms(settings: StoreSettings, checksums: Sequence[str] | None, expected: Mapping[str, str] | None,
                     *, store: str, image: str) -> StoreSettings:
    """Settings that also compute the algorithms a caller named in ``checksums=`` and ``expected=``."""
    validate_digests(expected, store=store, image=image)
    if isinstance(checksums, str) or not isinstance(checksums, (Sequence, type(None))):
        raise InvalidArgument(f"checksums must be a list of algorithm names, not {checksums!r}", store=store,
                              image=image)
    more = [a for a in dict.fromkeys([*(checksums or ()), *(expected or {})]) if a not in settings.checksums]
    if not more:
        return settings
    try:  # an unknown name is the ConfigError of the store's own ``checksums`` key
        algorithms = validate_algorithms((*settings.checksums, *more), key="checksums")
    except TypeError:
        raise InvalidArgument(f"checksums must be algorithm names, not {checksums!r}", store=store,
                              image=image) from None
    return replace(settings, checksums=algorithms)


def _is_count(value: object) -> bool:
    """Whether ``value`` is a non-negative int (bool is not a count)."""
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


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
