"""What compute and volume services do with a store beyond add/read: adopt bits they wrote
themselves, replicate between stores, verify a clone's source, follow and flatten clone chains.

:class:`ConsumerOps` is a mixin of :class:`~imagestore.store.Store`; every method goes
through the same facade (retries, error translation, format policy) as the rest.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, Literal, cast

from .spi.contract import Adoption, ClonePlan
from .errors import (
    AlreadyExists,
    BackendError,
    ChecksumMismatch,
    ImageStoreError,
    InvalidLocation,
    NotFound,
    UnsafeImage,
    Unsupported,
)
from .engine.hashing import compare, strongest, validate_digests
from .location import Location, validate_image_id
from .engine.pipeline import check_options, write_stream
from .engine.progress import Progress
from .engine.reader import ImageReader
from .results import CloneCheck, CloneRefusal, ImageInfo, Replica, encode_metadata

if TYPE_CHECKING:
    from .store import Store
    from .stores import Stores

__all__ = ["ConsumerOps", "replicate"]

log = logging.getLogger("imagestore")
_MEMO_LOCK = threading.Lock()
VERIFIED_MEMO_SIZE = 4096
"""How many verified source versions one Store remembers; the least recently used is forgotten
first (and verified again by its next ``verify_source``), so a long-lived process stays bounded."""
_SWEEP_BUDGET = 2.0  # seconds a replicate spends sweeping the target's dead temporaries
CloneModeArg = Literal["auto", "cow", "server_copy", "stream"]


class _Discard:
    """A writer that keeps nothing: adopt streams the bits through hashing and inspection only."""

    def write(self, data: memoryview) -> None:
        pass

    def commit(self, metadata: Mapping[str, str]) -> Location:  # pragma: no cover - never called
        raise NotImplementedError

    def abort(self) -> None:
        pass


class _VerifiedMemo:
    """Source location -> version token whose bytes were verified, at most ``size`` of them (LRU)."""

    def __init__(self, size: int) -> None:
        self.size = size
        self._items: OrderedDict[str, str] = OrderedDict()
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._items)

    def verified(self, key: str, version: str) -> bool:
        """Whether ``version`` of ``key`` was verified (and is remembered); marks it recently used."""
        with self._lock:
            if self._items.get(key) != version:
                return False
            self._items.move_to_end(key)
            return True

    def remember(self, key: str, version: str) -> None:
        """Record a verified version, forgetting the least recently used beyond ``size``."""
        with self._lock:
            self._items[key] = version
            self._items.move_to_end(key)
            while len(self._items) > self.size:
                self._items.popitem(last=False)


def _facade(obj: ConsumerOps) -> Store:
    """The Store this mixin is part of, typed as such."""
    return cast("Store", obj)


class ConsumerOps:
    """Store methods for the compute and volume services (mixed into ``Store``)."""

    # ------------------------------------------------------------ clone planning
    def _refine_plan(self, loc: Location, target: Store, plan: ClonePlan) -> ClonePlan:
        """Apply the target's ``cow_requires_raw`` to a driver's plan (Nova and Cinder clone raw only)."""
        me = _facade(self)
        if plan.mode != "cow" or not target.settings.policy.cow_requires_raw:
            return plan
        fmt = me.stat(loc).format
        if fmt == "raw":
            return plan
        return ClonePlan(None, f"target store {target.name!r} clones raw images only (cow_requires_raw); "
                               f"the image is {fmt or 'of unknown format'}", CloneRefusal.FORMAT_NOT_RAW)

    @staticmethod
    def _refused(check: CloneCheck, *, fmt: str | None, store: str, image: str) -> ImageStoreError:
        """The error for a clone ``can_clone`` refused: UnsafeImage for a policy refusal."""
        if check.code is CloneRefusal.FORMAT_NOT_RAW:
            return UnsafeImage("clone refused", reasons=[check.reason], format=fmt, store=store, image=image)
        return Unsupported(f"cannot clone: {check.reason}", store=store, image=image)

    @staticmethod
    def _clone_metadata(info: ImageInfo, size: int | None, *, store: str, image: str) -> dict[str, str]:
        """Metadata a native clone carries: the source's, except a grown clone has other bytes
        (zeros appended), so it keeps no checksum and its virtual size is the new size."""
        if size is None or size == info.size:
            return encode_metadata(info.checksums, info.format, info.virtual_size)
        if info.format not in ("raw", None):
            raise Unsupported(f"only raw images can be grown by a clone; this one is {info.format}",
                              store=store, image=image)
        return encode_metadata({}, info.format, size if info.format == "raw" else None)

    # ------------------------------------------------------------ source verification
    def _verified_memo(self) -> _VerifiedMemo:
        """The versions verified by this Store (this process), bounded by ``VERIFIED_MEMO_SIZE``."""
        me = _facade(self)
        with _MEMO_LOCK:
            memo: _VerifiedMemo | None = me.__dict__.get("_imagestore_verified")
            if memo is None:
                memo = me.__dict__["_imagestore_verified"] = _VerifiedMemo(VERIFIED_MEMO_SIZE)
            return memo

    def _version(self, loc: Location) -> str | None:
        me = _facade(self)
        return me._call("stat", lambda: me.driver.stat(loc), loc.image).version

    def verify_source(self, location: Location | str, *, progress: Progress | None = None) -> bool:
        """Read the image once and check it against its stored checksum (OSSN-0090: nobody
        checks the bits behind a copy-on-write clone). Remembered by the driver's version
        token (RBD: image and snapshot id; file: inode and change time), so later calls for
        the same immutable version cost one stat (the last ``VERIFIED_MEMO_SIZE`` versions are
        remembered); returns True when it read the image."""
        me = _facade(self)
        loc = me.location(location)
        version = me._version(loc)
        memo = me._verified_memo()
        key = str(loc)
        if version is not None and memo.verified(key, version):
            return False
        with me.open(loc, verify=True, progress=progress) as reader:
            for _ in reader:
                pass
        if version is not None:
            if me._version(loc) != version:
                raise BackendError("the image changed while it was verified", store=me.name, image=loc.image)
            memo.remember(key, version)
        log.info("store %s: verified %s (version %s)", me.name, loc.image, version)
        return True

    def _check_unchanged(self, loc: Location, version: str | None, target: Store, made: Location) -> None:
        """After a clone from a verified source: the source must still be the verified version."""
        me = _facade(self)
        if version is None or me._version(loc) == version:
            return
        try:
            target.delete(made)
        except ImageStoreError as exc:
            log.warning("store %s: removing clone %s of a changed source failed: %s", target.name, made, exc)
        raise BackendError("the source changed between its verification and the clone; nothing was kept",
                           store=me.name, image=loc.image)

    # ------------------------------------------------------------ clone chains
    def depth(self, location: Location | str) -> int:
        """How many ancestors the image's data depends on: 0 for an independent image, 1 for
        an RBD clone of a flat image, ... (Cinder's ``_get_clone_depth``)."""
        me = _facade(self)
        loc = me.location(location)
        return me._call("depth", lambda: me.driver.clone_depth(loc), loc.image)

    def flatten(self, location: Location | str) -> int:
        """Copy the ancestors' data into the image so it depends on none; returns the new
        depth (0). A no-op for images that are independent already."""
        me = _facade(self)
        loc = me.location(location)
        me._require_write(loc.image)
        me._call("flatten", lambda: me.driver.flatten(loc), loc.image)
        log.info("store %s: flattened %s", me.name, loc.image)
        return me.depth(loc)

    # ------------------------------------------------------------ adopt
    def _native_location(self, ref: Location | str) -> Location:
        """A consumer's reference (location, glance URI, absolute path) as a location of this store."""
        me = _facade(self)
        if isinstance(ref, str) and ref.startswith("/"):
            ref = Location.from_glance("file://" + ref)
        loc = me.location(ref)
        validate_image_id(loc.image)
        return loc

    def adopt(
        self,
        native_ref: Location | str,
        *,
        format: str | None = None,
        expected: Mapping[str, str] | None = None,
        checksums: Sequence[str] | None = None,
        progress: Progress | None = None,
    ) -> ImageInfo:
        """Register bits a consumer wrote straight into the backend (Nova's direct snapshot
        ``rbd://fsid/pool/image/snap``, a volume uploaded into the images pool, a file placed
        in a file store's root) as an image of this store.

        The ref must be in this store. The driver makes the bits immutable (RBD: the
        protected snapshot, created if missing; file: write bits dropped, the inode's change
        time checked), then one pass computes the checksums and inspects the format; an image
        the format policy (or ``format``/``expected``) refuses is left exactly as it was.
        """
        from .store import _check_expected, _with_algorithms

        me = _facade(self)
        me._require_write(None)
        loc = me._native_location(native_ref)
        check_options(store=me.name, image=loc.image, format=format, progress=progress)
        if not me._caps.adopt:
            raise Unsupported("this store cannot adopt images written outside imagestore", store=me.name,
                              image=loc.image)
        settings = _with_algorithms(me.settings, checksums, expected, store=me.name, image=loc.image)
        adoption: Adoption = me._call("adopt", lambda: me.driver.adopt(loc), loc.image, retry=False)
        try:
            src = adoption.location
            limit = me.limit()
            limit.check(adoption.size, "adopted image", store=me.name, image=loc.image)

            def opener(at: int, n: int) -> Any:
                return me._call("open", lambda: me.driver.open_reader(src, at, n), loc.image)

            reader = ImageReader(opener, offset=0, size=adoption.size, chunk_size=settings.chunk_size,
                                 expected=None, progress=None, store=me.name, image=loc.image,
                                 policy=settings.retry)
            with reader:
                outcome = write_stream(_Discard(), reader, settings=settings, size=adoption.size, limit=limit,
                                       progress=progress, store=me.name, image=loc.image)
            if expected:
                _check_expected(expected, outcome.checksums, me.name, loc.image)
            verdict = outcome.verdict
            if verdict is not None:
                settings.policy.check(verdict, declared=format, store=me.name, image=loc.image)
            elif format is not None and not settings.policy.allows(format):
                raise UnsafeImage(f"format {format!r} is not allowed", store=me.name, image=loc.image)
            detected = verdict.format if verdict is not None else format
            vsize = verdict.virtual_size if verdict is not None else None
            meta = encode_metadata(outcome.checksums, detected, vsize)
            final = me._call("adopt", lambda: adoption.commit(meta), loc.image, retry=False)
        except BaseException:
            try:
                adoption.abort()
            except Exception as exc:  # noqa: BLE001 - the refusal is what the caller must see
                log.warning("store %s: undoing the adoption of %s failed: %s", me.name, loc.image, exc)
            raise
        log.info("store %s: adopted %s (%d bytes, format %s)", me.name, loc.image, outcome.size, detected)
        return ImageInfo(final.with_store(me.name), outcome.size, outcome.checksums, detected, vsize)

    # ------------------------------------------------------------ replicate
    def _same_copy(self, loc: Location, existing: ImageInfo, want: Mapping[str, str], size: int) -> bool:
        """Whether an image already in the target holds the source's bytes."""
        me = _facade(self)
        if existing.size != size:
            return False
        common = {a: d for a, d in want.items() if a in existing.checksums}
        if common:
            return compare(common, existing.checksums) is None
        if not existing.checksums:
            return False
        algo = strongest(existing.checksums)  # no shared algorithm: hash the source the target's way
        try:
            with me.open(loc, expected={algo: existing.checksums[algo]}) as reader:
                for _ in reader:
                    pass
        except ChecksumMismatch:
            return False
        return True

    def replicate(
        self,
        location: Location | str,
        to: Store,
        *,
        name: str | None = None,
        mode: CloneModeArg = "auto",
        expected: Mapping[str, str] | None = None,
        format: str | None = None,
        independent: bool = True,
        progress: Progress | None = None,
    ) -> Replica:
        """Copy an image into ``to`` as ``name`` (default: same id), verified, in the cheapest mode
        (Glance's copy-image, without HTTP); running it again after a crash completes it.

        An identical copy already in ``to`` is returned as it is (``existing=True``); a
        different image of that id is ``AlreadyExists``. The target's dead temporaries
        (of a killed earlier attempt) are swept first. A rerun sends the image again from
        its start: a partial upload is never reused. ``expected`` checksums (e.g. Glance's
        ``os_hash_value``) and a declared ``format`` are checked; a source without stored
        checksums (a web image) is hashed and inspected by the target and verified only
        against ``expected``. With ``independent`` a copy-on-write clone is flattened, so the
        copy does not depend on the source.
        """
        me = _facade(self)
        loc = me.location(location)
        to = me._target(to, loc.image)
        new_name = validate_image_id(name or loc.image)
        to._require_write(new_name)
        validate_digests(expected, store=me.name, image=loc.image)
        check_options(store=me.name, image=loc.image, format=format, progress=progress)
        src = me.stat(loc)
        if expected:
            bad = compare(expected, src.checksums)
            if bad is not None:
                algo, want_digest, got = bad
                raise ChecksumMismatch(f"the source's stored {algo} is {got}, expected {want_digest}",
                                       algorithm=algo, expected=want_digest, actual=got, store=me.name,
                                       image=loc.image)
        if format is not None and src.format is not None and format.strip().lower() != src.format:
            raise UnsafeImage("replicate refused", reasons=[f"declared format {format!r} does not match the "
                                                            f"detected format {src.format!r}"],
                              format=src.format, store=me.name, image=loc.image)
        want = {**src.checksums, **(expected or {})}
        if to.capabilities.write and to.capabilities.persistent:
            try:
                to.sweep(0, deadline=time.monotonic() + _SWEEP_BUDGET)
            except ImageStoreError as exc:
                log.warning("store %s: sweep before replicate failed: %s", to.name, exc)
        try:
            existing: ImageInfo | None = to.stat(new_name)
        except NotFound:
            existing = None
        if existing is not None:
            if me._same_copy(loc, existing, want, src.size):
                log.info("store %s: %s is already replicated in %s", me.name, loc.image, to.name)
                return Replica(existing, None, existing=True, depth=to.depth(existing.location))
            raise AlreadyExists(f"an image with this id exists in store {to.name!r} and differs from the source",
                                store=to.name, image=new_name)
        extra = set(expected or {}) - set(src.checksums)
        if src.checksums and not extra:
            res = me.clone(loc, to, name=new_name, mode=mode, verify_source=True, progress=progress)
            depth = res.depth
            if independent and depth:
                depth = to.flatten(res.location)
            return Replica(to.stat(res.location), res.mode, depth=depth)
        if mode not in ("auto", "stream"):
            raise Unsupported(f"mode {mode} needs stored checksums of the source; use mode='stream'",
                              store=me.name, image=loc.image)
        with me.open(loc, verify=bool(want), expected=want or None, progress=progress) as reader:
            info = to.add(new_name, reader, src.size, format=format, expected=want or None)
        log.info("store %s: replicated %s to %s/%s (stream)", me.name, loc.image, to.name, new_name)
        return Replica(info, "stream")


def replicate(
    source: Location | str,
    to: Store,
    *,
    via: Store | Stores | None = None,
    name: str | None = None,
    mode: CloneModeArg = "auto",
    expected: Mapping[str, str] | None = None,
    format: str | None = None,
    progress: Progress | None = None,
    http_options: Mapping[str, Any] | None = None,
) -> Replica:
    """Copy ``source`` into ``to``: a location of ``via`` (a store, or the configured stores that
    hold it) or, without ``via``, an ``http(s)://`` URL read through a throwaway read-only http
    store (Glance's web-download: verified against ``expected``, inspected, size-capped by
    ``to``). ``name`` defaults to the last segment of the location."""
    from .store import Store, parse_any

    if via is None:
        loc = parse_any(source)
        if loc.scheme not in ("http", "https"):
            raise InvalidLocation(f"{loc} is not an http(s) URL; say which store holds it (via=)")
        from .drivers.http import HttpDriver

        store = Store(HttpDriver("web", **dict(http_options or {})))
        try:
            return store.replicate(loc, to, name=name, mode=mode, expected=expected, format=format,
                                   progress=progress)
        finally:
            store.close()
    if isinstance(via, Store):
        return via.replicate(source, to, name=name, mode=mode, expected=expected, format=format, progress=progress)
    holder, loc = via.resolve(source)
    return holder.replicate(loc, to, name=name, mode=mode, expected=expected, format=format, progress=progress)
