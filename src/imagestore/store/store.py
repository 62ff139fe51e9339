"""The :class:`Store` facade: one named store, a thin delegator from each public method to its
operation in :mod:`imagestore.store.ops`, all of them working on the store's :class:`StoreState`."""

from __future__ import annotations

import functools
import logging
import os
import warnings
from collections.abc import Callable, Mapping, Sequence
from typing import Any, TypeVar

from ..spi.capabilities import Capabilities
from ..config import StoreSettings
from ..spi.contract import DeleteOutcome, SweepReport
from ..spi.driver import Driver
from ..spi.retry import retry_listener
from ..location import DirectAccess, Location
from ..engine.pipeline import Limit, Source
from ..engine.progress import Progress
from ..engine.reader import ImageReader
from ..observe import NULL, Observer
from ..results import CloneCheck, CloneResult, ImageInfo, Replica, ScrubReport, Scrubbed
from .args import CloneModeArg
from .ops import add, adopt, clone, delete, locate, read, replicate, scrub, sweep
from .state import StoreState

__all__ = ["Store"]

log = logging.getLogger("imagestore")
F = TypeVar("F", bound=Callable[..., Any])


def _observed(operation: str, *, size: Callable[[Any], int | None] | None = None,
              final: Callable[[Any], str] | None = None, ranged: bool = False) -> Callable[[F], F]:
    """Report the method to the store's observer as ``operation`` (``<operation>_range`` for a ranged
    read): counted by outcome, timed, traced, its ``size(result)`` bytes counted; ``final(result)``
    renames it once done (a clone by its mode). Costs one attribute test when nobody observes."""
    def wrap(method: F) -> F:
        @functools.wraps(method)
        def observed(self: Store, *args: Any, **kwargs: Any) -> Any:
            state = self._state
            if not state.observer.enabled:
                return method(self, *args, **kwargs)
            name = operation
            if ranged and (kwargs.get("offset", args[1] if len(args) > 1 else 0)
                           or kwargs.get("length", args[2] if len(args) > 2 else None) is not None):
                name += "_range"
            with state.observer.operation(state.name, state.driver.scheme, name) as op:
                result = method(self, *args, **kwargs)
                if size is not None:
                    op.size = size(result)
                if final is not None:
                    op.final = final(result)
                return result
        return observed  # type: ignore[return-value]
    return wrap


def _info_size(info: ImageInfo) -> int:
    return info.size


class Store:
    """One named store: a driver plus the policy every operation goes through.

    Methods take a :class:`Location`, its string form, or a bare image id.
    Every failure is an :class:`~imagestore.errors.ImageStoreError` (errors
    raised by the data source given to :meth:`add` propagate unchanged).
    Opening a store opens its driver once (connect, probe); a Store is safe to
    share between threads.
    """

    def __init__(self, driver: Driver, settings: StoreSettings | None = None, *, observer: Observer = NULL) -> None:
        self._state = StoreState(driver, settings or StoreSettings(), observer)
        try:
            self._state.open()
        except BaseException:
            self.close()  # a failed probe must not leak the driver's connection pools
            raise

    def __repr__(self) -> str:
        return f"<Store {self.name!r} driver={self.scheme!r}>"

    # ------------------------------------------------------------ what it is
    @property
    def name(self) -> str:
        """The store's name, as used in locations and configuration."""
        return self._state.name

    @property
    def scheme(self) -> str:
        """The scheme of this store's locations (its driver's: ``file``, ``rbd``, ``s3``...)."""
        return self._state.driver.scheme

    @property
    def observer(self) -> Observer:
        """Where the store reports its metrics and spans (:data:`imagestore.observe.NULL`: nowhere)."""
        return self._state.observer

    @property
    def settings(self) -> StoreSettings:
        """The store's facade settings (checksums, limits, format policy, retries...)."""
        return self._state.settings

    @property
    def capabilities(self) -> Capabilities:
        """What this store can do (probed once, when the store was opened)."""
        return self._state.caps

    @property
    def _driver(self) -> Driver:
        """The driver itself: for the package's registry and for tests that inject faults."""
        return self._state.driver

    @property
    def driver(self) -> Driver:
        """Deprecated: the driver is private; use :attr:`scheme`, :meth:`describe` or :attr:`capabilities`."""
        warnings.warn("Store.driver is deprecated and will be removed; use Store.scheme, Store.describe() "
                      "or Store.capabilities", DeprecationWarning, stacklevel=2)
        return self._state.driver

    def describe(self) -> dict[str, Any]:
        """Non-secret facts about the store, JSON-able: name, scheme, driver class, capabilities and
        what the driver says of itself (root, pool, bucket, endpoint...; never a key or token)."""
        driver = self._state.driver
        return {"name": self.name, "scheme": self.scheme, "driver_class": type(driver).__name__,
                "capabilities": self.capabilities.to_dict(), "backend": dict(driver.describe())}

    def location(self, ref: Location | str) -> Location:
        """Resolve ``ref`` (location, location string or image id) to a location of this store.

        Location strings in glance_store's forms (``rbd://fsid/pool/image/snap``,
        ``file:///path``...) are accepted too.
        """
        return self._state.location(ref)

    def limit(self) -> Limit:
        """The largest image this store takes: its ``max_image_size`` or the backend's limit."""
        return self._state.limit()

    # ------------------------------------------------------------ add
    @_observed("add", size=_info_size)
    def add(self, image_id: str, data: Source, size: int | None = None, *, format: str | None = None,
            expected: Mapping[str, str] | None = None, checksums: Sequence[str] | None = None,
            progress: Progress | None = None) -> ImageInfo:
        """Store ``data`` as ``image_id``; returns its location, size, checksums and format.

        ``size`` None means unknown. ``format`` is the declared disk format, checked
        against the detected one; ``expected`` maps algorithm to hex digest and must
        match what is computed; ``checksums`` names algorithms to compute (and keep)
        besides the store's. On any error nothing remains in the store.
        """
        return add.add(self._state, image_id, data, size, format=format, expected=expected,
                       checksums=checksums, progress=progress)

    @_observed("adopt", size=_info_size)
    def adopt(self, native_ref: Location | str, *, format: str | None = None,
              expected: Mapping[str, str] | None = None, checksums: Sequence[str] | None = None,
              progress: Progress | None = None) -> ImageInfo:
        """Register bits a consumer wrote straight into the backend (Nova's direct snapshot
        ``rbd://fsid/pool/image/snap``, a volume uploaded into the images pool, a file placed
        in a file store's root) as an image of this store.

        The ref must be in this store. The driver makes the bits immutable (RBD: the
        protected snapshot, created if missing; file: write bits dropped, the inode's change
        time checked), then one pass computes the checksums and inspects the format; an image
        the format policy (or ``format``/``expected``) refuses is left exactly as it was.
        """
        return adopt.adopt(self._state, native_ref, format=format, expected=expected, checksums=checksums,
                           progress=progress)

    # ------------------------------------------------------------ read
    @_observed("stat")
    def stat(self, location: Location | str) -> ImageInfo:
        """Size, checksums and format of a stored image; NotFound if absent."""
        return read.stat(self._state, location)

    @_observed("open", ranged=True)
    def open(self, location: Location | str, offset: int = 0, length: int | None = None, *,
             verify: bool | None = None, expected: Mapping[str, str] | None = None,
             progress: Progress | None = None) -> ImageReader:
        """A reader over the image (or ``length`` bytes from ``offset``).

        ``verify`` defaults to the store's ``verify_reads`` (True): a whole read raises
        ChecksumMismatch before its last bytes leave if they are not the ones stored (or not
        those of ``expected``); a ranged read reads the whole blocks it touches and checks each
        against the image's block table before handing out any of its bytes (images stored
        without a table: unverified, and ``verify=True`` is Unsupported). A broken transfer
        resumes from where it stopped.
        """
        state = self._state
        if not state.observer.enabled:
            return read.open_image(state, location, offset, length, verify=verify, expected=expected,
                                   progress=progress)
        # observed as "read" (or "read_range") from here to the stream's end, failure or close
        ranged = bool(offset) or length is not None
        op = state.observer.operation(state.name, state.driver.scheme, "read_range" if ranged else "read")
        op.start_detached()
        token = retry_listener.set(op.retried)  # the reader's resumes count for the read
        try:
            reader = read.open_image(state, location, offset, length, verify=verify, expected=expected,
                                     progress=progress)
        except BaseException as exc:
            op.ended(exc, 0)
            raise
        finally:
            retry_listener.reset(token)
        reader.on_end(op.ended)
        return reader

    @_observed("get", size=len, ranged=True)
    def get(self, location: Location | str, offset: int = 0, length: int | None = None,
            *, verify: bool | None = None) -> bytes:
        """The image's bytes (or a range) in memory; for small images and tests."""
        return read.get(self._state, location, offset, length, verify=verify)

    @_observed("download", size=_info_size)
    def download_to(self, location: Location | str, path: str | os.PathLike[str], *, verify: bool = True,
                    progress: Progress | None = None) -> ImageInfo:
        """Write the image to ``path`` atomically (temporary file, fsync, rename), verified; runs of
        zeros become holes."""
        return read.download_to(self._state, location, path, verify=verify, progress=progress)

    @_observed("verify_source")
    def verify_source(self, location: Location | str, *, progress: Progress | None = None) -> bool:
        """Read the image once and check it against its stored checksum (OSSN-0090: nobody
        checks the bits behind a copy-on-write clone). Remembered by the driver's version
        token (RBD: image and snapshot id; file: inode and change time), so later calls for
        the same immutable version cost one stat (the last ``VERIFIED_MEMO_SIZE`` versions are
        remembered); returns True when it read the image."""
        return read.verify_source(self._state, location, progress=progress)

    # ------------------------------------------------------------ locate / delete
    @_observed("locate")
    def locate(self, location: Location | str, *, ttl: float | None = None) -> DirectAccess:
        """What another service needs to reach the image itself (path, rbd spec or URL).

        ``ttl`` asks for a presigned URL valid that many seconds (stores with ``presign``).
        """
        return locate.locate(self._state, location, ttl=ttl)

    @_observed("delete")
    def delete(self, location: Location | str) -> DeleteOutcome:
        """Delete the image: ``DELETED``, ``DEFERRED`` (clones depend on it), or InUse/NotFound."""
        return delete.delete(self._state, location)

    # ------------------------------------------------------------ clone / replicate
    def can_clone(self, location: Location | str, to: Store | None = None,
                  mode: CloneModeArg = "auto", format: str | None = None) -> CloneCheck:
        """Whether ``clone(location, to, mode=mode, format=format)`` would work, in which mode, and
        why (a raw clone's reason says whether it converts now or clones an existing base)."""
        return clone.can_clone(self._state, location, _state_of(to), mode, format)

    @_observed("clone", final=lambda r: f"clone_{r.mode}")
    def clone(self, location: Location | str, to: Store | None = None, *, name: str | None = None,
              mode: CloneModeArg = "auto", size: int | None = None, verify_source: bool = False,
              progress: Progress | None = None, format: str | None = None) -> CloneResult:
        """Copy an image into ``to`` (default: this store) as ``name`` (default: same id).

        ``mode="auto"`` picks the cheapest mode that works: ``cow`` (RBD clone,
        reflink), ``server_copy``, else a verified ``stream``. An explicit mode that
        is not available raises Unsupported instead of silently copying.
        ``size`` grows the clone (cow only, raw images; a grown clone keeps no
        checksum). The target's limits and format policy apply in every mode.
        ``verify_source`` first checks the source's bytes against its checksum
        (once per immutable version, see :meth:`verify_source`); a stream is
        verified anyway. The result's ``depth`` is the clone's parent chain length.

        ``format="raw"`` makes a raw clone of a qcow2, vmdk, vhdx, vdi or vhd image: into a
        store that clones copy-on-write, the source is converted once into a raw base there
        (verified and inspected first; named by the source's digest) and every clone is a
        copy-on-write clone of that base (``CloneResult.converted``, ``.base``); elsewhere each
        clone is a converted copy. ``mode="auto"`` does so by itself into a store with
        ``cow_requires_raw``.
        """
        return clone.clone(self._state, location, _state_of(to), name=name, mode=mode, size=size,
                           verify_source_first=verify_source, progress=progress, format=format)

    def depth(self, location: Location | str) -> int:
        """How many ancestors the image's data depends on: 0 for an independent image, 1 for
        an RBD clone of a flat image, ... (Cinder's ``_get_clone_depth``)."""
        return clone.depth(self._state, location)

    @_observed("flatten")
    def flatten(self, location: Location | str) -> int:
        """Copy the ancestors' data into the image so it depends on none; returns the new
        depth (0). A no-op for images that are independent already."""
        return clone.flatten(self._state, location)

    @_observed("replicate", size=lambda r: r.info.size, final=lambda r: f"replicate_{r.mode or 'existing'}")
    def replicate(self, location: Location | str, to: Store, *, name: str | None = None,
                  mode: CloneModeArg = "auto", expected: Mapping[str, str] | None = None,
                  format: str | None = None, independent: bool = True,
                  progress: Progress | None = None) -> Replica:
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
        return replicate.replicate(self._state, location, _state_of(to), name=name, mode=mode,
                                   expected=expected, format=format, independent=independent, progress=progress)

    # ------------------------------------------------------------ lifecycle
    @_observed("sweep")
    def sweep(self, older_than: float | None = None, *, deadline: float | None = None,
              sources: Mapping[str, Store] | None = None) -> SweepReport:
        """Remove temporaries of dead writers older than ``older_than`` seconds (default: the
        store's ``sweep_older_than``); never one of a live writer. Returns counts and bytes.
        Without ``deadline``, also block tables whose image is gone and raw bases whose source
        image is gone: a source in another store is looked up in ``sources`` (a
        :class:`Stores`, opened only for the stores the bases name; a base whose source store
        is not there stays)."""
        def resolve(name: str) -> StoreState | None:
            return sources[name]._state if sources is not None and name in sources else None

        return sweep.sweep(self._state, older_than, deadline=deadline, sources=resolve)

    @_observed("scrub", size=lambda report: report.bytes_read)
    def scrub(self, *, prefix: str = "", start_after: str | None = None, rate: float | None = None,
              older_than: float | None = None, backfill: bool = True,
              on_image: Callable[[Scrubbed], None] | None = None) -> ScrubReport:
        """Read every image of the store whose id starts with ``prefix`` back (in id order, after
        ``start_after``) and check it against its BLAKE3 digest, else its strongest checksum,
        reading at most ``rate`` bytes a second; ``older_than`` (seconds) passes over images
        written since. ``on_image`` gets each image's :class:`Scrubbed`. Corrupt images are
        reported and logged, never deleted. With ``backfill`` (the default), an image that lacks
        its digest or block table (stored by an earlier version) and reads verified gets them,
        as does one whose table object is missing or damaged. A driver that cannot list its
        images raises Unsupported."""
        return scrub.scrub(self._state, prefix=prefix, start_after=start_after, rate=rate, older_than=older_than,
                           backfill=backfill, on_image=on_image)

    def close(self) -> None:
        """Release the driver's connections."""
        try:
            self._state.driver.close()
        except Exception as exc:  # noqa: BLE001 - closing must not fail a caller's cleanup
            log.warning("store %s: close failed: %s", self.name, exc)

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _state_of(to: object) -> object:
    """The state of a target Store for the operations; anything else as it is, for them to refuse."""
    return to._state if isinstance(to, Store) else to
