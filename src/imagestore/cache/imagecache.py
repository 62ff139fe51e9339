"""A compute node's image cache (Nova's ``_base``, done safely): verified, content-addressed,
shared by every process on the node, sparse, bounded, and re-checkable against a new
format policy.

An entry is named by its strongest collision-resistant digest (never md5 or sha1) and
fetched once however many processes ask (a flock per key); it is verified while it
downloads (or, when the store's file is on the cache's filesystem, reflinked or hard
linked and then hashed), inspected, written with holes where the image is zero,
fsynced and published atomically. A hit costs a few ``stat`` calls whatever the image
size: the entry's seal (inode, size, mtime, ctime) must be the one recorded at
publication, else the entry is hashed again and, if damaged, fetched again. Eviction
(by size and age, least recently used first) never removes an entry that a process
has open, that is leased, or that was used in the last ``grace`` seconds: leases and
use are read again under the entry's exclusive lock, which a lease also takes.
"""

from __future__ import annotations

import fcntl
import logging
import os
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Literal

from ..errors import (
    ChecksumMismatch,
    ConfigError,
    ImageStoreError,
    InvalidArgument,
    UnsafeImage,
    Unsupported,
    from_os_error,
)
from ..formats import FormatPolicy, inspect
from ..engine.hashing import COLLISION_RESISTANT, INTEGRITY, strongest, validate_digests
from ..location import Location
from ..engine.progress import Progress
from ..observe import NULL, Observer
from ..store import Store, Stores
from .fill import hash_and_inspect, link_into, new_temp, stream_into
from .layout import KEY_RE, Layout, Sidecar, key_for, seal_of
from .locks import key_lock, leased, open_paths, try_key_lock, valid_holder
from .reports import CacheEntry, EvictReport, RevalidateReport, VerifyReport

__all__ = ["ImageCache"]

log = logging.getLogger("imagestore")
LinkMode = Literal["auto", "reflink", "never"]
_TMP_MIN_AGE = 10.0  # seconds before an unlocked temporary counts as a dead fetch's
_STRONG_NAMES = "sha256, sha384, sha512, sha3_256/384/512, blake2b or blake2s"


class ImageCache:
    """A directory of verified images for one node, safe to share between processes.

    ``store`` (a Store, or configured Stores) is where :meth:`fetch` reads from unless a
    call names one. ``max_bytes`` (allocated bytes) and ``max_age`` (seconds unused)
    bound it; ``policy`` is the format policy entries must pass (default: imagestore's);
    ``link`` allows reflinks and hard links of a file store's files (``"reflink"``: only
    reflinks, ``"never"``: always download); ``verify_hits`` re-hashes entries on every
    hit instead of trusting their seal.
    """

    def __init__(
        self,
        directory: str | os.PathLike[str],
        max_bytes: int | None = None,
        *,
        max_age: float | None = None,
        grace: float = 60.0,
        store: Store | Stores | None = None,
        policy: FormatPolicy | None = None,
        link: LinkMode = "auto",
        verify_hits: bool = False,
        chunk_size: int = 4 << 20,
        dir_mode: int = 0o755,
        file_mode: int = 0o444,
        observer: Observer | None = None,
    ) -> None:
        _check_limits(max_bytes=max_bytes, max_age=max_age, grace=grace)
        if link not in ("auto", "reflink", "never"):
            raise InvalidArgument(f"link must be 'auto', 'reflink' or 'never', not {link!r}")
        self.layout = Layout(Path(os.path.abspath(directory)), dir_mode)
        self.directory = self.layout.root
        self.max_bytes = max_bytes
        self.max_age = max_age
        self.grace = grace
        self.store = store
        self.policy = policy or FormatPolicy()
        self.link = link
        self.verify_hits = verify_hits
        self.chunk_size = chunk_size
        self.file_mode = file_mode
        self.observer = observer
        """Where hits, fills, evictions and the cache's size are reported (default: the store's observer)."""

    def __repr__(self) -> str:
        return f"<ImageCache {str(self.directory)!r} max_bytes={self.max_bytes}>"

    # ------------------------------------------------------------ keys
    def _resolve(self, ref: Location | str, store: Store | Stores | None) -> tuple[Store, Location]:
        source = store or self.store
        if source is None:
            raise ConfigError("the cache has no store to fetch from: pass store= to ImageCache or fetch")
        if isinstance(source, Stores):
            if isinstance(ref, str) and "://" not in ref:
                return source.default, source.default.location(ref)
            return source.resolve(ref)
        return source, source.location(ref)

    def _want(self, store: Store, loc: Location, expected: Mapping[str, str] | None) -> tuple[dict[str, str], str]:
        """The digests a fill is verified against, and the entry's key: the strongest stored (or
        expected) digest, which must be collision-resistant (an md5 or sha1 key would let another
        image take the entry). Without ``expected``, the fill checks the image's BLAKE3 digest."""
        if expected:
            validate_digests(expected, store=store.name, image=loc.image)
            given, what = {a.lower(): d.lower() for a, d in expected.items()}, "expected="
        else:
            info = store.stat(loc)
            given, what = dict(info.checksums), "the image's stored checksums"
            if not given:
                raise Unsupported("the image has no stored checksum; pass expected=", store=store.name,
                                  image=loc.image)
        strong = [a for a in given if a in COLLISION_RESISTANT]
        if not strong:
            raise Unsupported(f"{what} ({', '.join(sorted(given))}) hold no collision-resistant digest to name "
                              f"the cache entry: pass expected= with a {_STRONG_NAMES} digest",
                              store=store.name, image=loc.image)
        algo = strongest(strong)
        key = key_for(algo, given[algo].lower())
        if expected:
            return given, key
        if info.integrity is not None:  # the fill is verified by the image's BLAKE3 digest: 10x cheaper
            return {INTEGRITY: info.integrity}, key
        return {algo: given[algo].lower()}, key

    def key_of(self, ref: Location | str, expected: Mapping[str, str] | None = None, *,
               store: Store | Stores | None = None) -> str:
        """The key an image has (or would have) in this cache."""
        src, loc = self._resolve(ref, store)
        return self._want(src, loc, expected)[1]

    def path_of(self, key: str) -> Path:
        """Where the entry of ``key`` is (whether or not it is cached)."""
        if not KEY_RE.fullmatch(key):
            raise InvalidArgument(f"bad cache key {key!r}")
        return self.layout.entry(key)

    # ------------------------------------------------------------ checks
    def _quick(self, key: str) -> Sidecar | None:
        """The entry's sidecar if the entry is there, sealed as published and allowed: O(1)."""
        side = Sidecar.load(self.layout.sidecar(key))
        if side is None:
            return None
        try:
            st = os.stat(self.layout.entry(key))
        except FileNotFoundError:
            return None
        if seal_of(st) != side.seal:
            return None
        if side.format is not None and not self.policy.allows(side.format):
            return None
        return side

    def _deep(self, key: str, side: Sidecar | None) -> bool:
        """Hash the entry (holding the key exclusively); reseal it if it is intact."""
        entry = self.layout.entry(key)
        if side is None or not entry.exists():
            return False
        if side.format is not None and not self.policy.allows(side.format):
            return False
        algo, _, digest = key.partition("-")
        try:
            hash_and_inspect(entry, {algo: digest}, chunk_size=self.chunk_size, progress=None, label=key)
        except ChecksumMismatch:
            log.warning("image cache %s: entry %s is damaged (checksum mismatch); fetching it again",
                        self.directory, key)
            return False
        side.seal = seal_of(os.stat(entry))
        side.dump(self.layout.sidecar(key))
        return True

    def _touch(self, key: str) -> None:
        try:
            os.utime(self.layout.sidecar(key))
        except FileNotFoundError:
            pass

    def _remove(self, key: str) -> int:
        """Unlink an entry and its sidecar (the caller holds the key); the bytes freed."""
        freed = 0
        entry = self.layout.entry(key)
        try:
            freed = os.stat(entry).st_blocks * 512
            os.unlink(entry)
        except FileNotFoundError:
            pass
        try:
            os.unlink(self.layout.sidecar(key))
        except FileNotFoundError:
            pass
        return freed

    # ------------------------------------------------------------ fetch
    def fetch(
        self,
        ref: Location | str,
        expected: Mapping[str, str] | None = None,
        *,
        store: Store | Stores | None = None,
        progress: Progress | None = None,
        verify: bool | None = None,
    ) -> Path:
        """The path of the cached image ``ref`` (a location or an image id), fetched first if
        needed; ``expected`` digests (else the store's stored checksum) name and verify it.

        ``verify=True`` re-hashes a cached entry before returning it (default: the
        cache's ``verify_hits``). Raises ChecksumMismatch, UnsafeImage (the cache's policy)
        or the store's errors; nothing is cached then.
        """
        src, loc = self._resolve(ref, store)
        obs = self.observer if self.observer is not None else src.observer
        if not obs.enabled:  # nobody observes: not a clock read
            return self._fetch(src, loc, expected, progress, verify)[0]
        with obs.operation(src.name, src.scheme, "cache_fetch") as op:
            path, filled = self._fetch(src, loc, expected, progress, verify)
            op.final, op.size = ("cache_fill", filled) if filled is not None else ("cache_hit", None)
        obs.cache_event("hit" if filled is None else "fill", filled)
        if filled is not None:
            self._report_size(obs)
        return path

    def _fetch(self, src: Store, loc: Location, expected: Mapping[str, str] | None, progress: Progress | None,
               verify: bool | None) -> tuple[Path, int | None]:
        """:meth:`fetch`: the entry's path, and the bytes fetched (None for a hit)."""
        want, key = self._want(src, loc, expected)
        full = self.verify_hits if verify is None else verify
        lock = self.layout.lock(key)
        try:
            with key_lock(lock, exclusive=False):
                if not full and self._quick(key) is not None:
                    self._touch(key)
                    return self.layout.entry(key), None
            with key_lock(lock, exclusive=True):
                side = Sidecar.load(self.layout.sidecar(key))
                quick = self._quick(key)
                if (quick is not None and not full) or self._deep(key, side):
                    self._touch(key)
                    return self.layout.entry(key), None
                self._remove(key)
                self._sweep_temps(key)
                if self.max_bytes is not None:
                    self.evict(max_bytes=max(0, self.max_bytes - src.stat(loc).size), _holding=key)
                self._fill(key, src, loc, want, progress)
                entry = self.layout.entry(key)
                return entry, os.stat(entry).st_size
        except OSError as exc:
            raise from_os_error(exc, op=f"image cache {self.directory}", store="cache", image=key) from exc

    def _observer(self) -> Observer:
        """The cache's observer, else its store's (NULL for none)."""
        if self.observer is not None:
            return self.observer
        return self.store.observer if self.store is not None else NULL

    def _report_size(self, obs: Observer) -> None:
        """Tell the observer the cache's bytes and entries (one scan of the directory)."""
        entries = self.entries()
        obs.cache_size(sum(e.allocated for e in entries), len(entries))

    def _fill(self, key: str, src: Store, loc: Location, want: Mapping[str, str], progress: Progress | None) -> None:
        """Make the entry of ``key`` from ``loc`` (the caller holds the key exclusively)."""
        tmp: Path | None = None
        how = "download"
        if self.link != "never" and src.capabilities.direct_access:
            try:
                access = src.locate(loc)
            except ImageStoreError:
                access = None
            if access is not None and access.kind == "path" and access.path:
                try:
                    same_fs = os.stat(access.path).st_dev == os.stat(self.layout.tmp).st_dev
                except OSError:
                    same_fs = False
                if same_fs:
                    linked = link_into(access.path, self.layout.tmp, key, reflink_only=self.link == "reflink")
                    if linked is not None:
                        tmp, how = linked
        try:
            if tmp is not None:
                verdict = hash_and_inspect(tmp, want, chunk_size=self.chunk_size, progress=progress, label=key)
            else:
                tmp, fd = new_temp(self.layout.tmp, key)
                try:
                    with src.open(loc, expected=want, progress=progress) as reader:
                        verdict, _ = stream_into(reader, fd)
                finally:
                    os.close(fd)
            self.policy.check(verdict, store="cache", image=key)
            if how != "hardlink":  # a hard link shares the store's inode: leave its mode alone
                os.chmod(tmp, self.file_mode)
            entry = self.layout.entry(key)
            os.link(tmp, entry)
            os.unlink(tmp)
            tmp = None
            st = os.stat(entry)
            Sidecar(key, st.st_size, verdict.format, verdict.virtual_size, str(loc), how, time.time(),
                    seal_of(st)).dump(self.layout.sidecar(key))
            self.layout.fsync_dir(self.layout.entries)
        except BaseException:
            if tmp is not None:
                try:
                    os.unlink(tmp)
                except FileNotFoundError:
                    pass
            raise
        log.info("image cache %s: fetched %s from %s (%s)", self.directory, key, loc, how)

    # ------------------------------------------------------------ use and leases
    @contextmanager
    def use(self, ref: Location | str, expected: Mapping[str, str] | None = None, *,
            store: Store | Stores | None = None, progress: Progress | None = None) -> Iterator[Path]:
        """Fetch ``ref`` and keep its entry from being evicted for the ``with`` body."""
        while True:
            path = self.fetch(ref, expected, store=store, progress=progress)
            fd = os.open(self.layout.lock(path.name), os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
            fcntl.flock(fd, fcntl.LOCK_SH)
            if path.exists():
                break
            os.close(fd)
        try:
            yield path
        finally:
            os.close(fd)

    def lease(self, ref: Location | str, holder: str, expected: Mapping[str, str] | None = None, *,
              store: Store | Stores | None = None, progress: Progress | None = None) -> Path:
        """Fetch ``ref`` and lease its entry to ``holder`` (an instance or volume id) until
        :meth:`release`: a leased entry is never evicted, across processes and restarts."""
        valid_holder(holder)
        while True:
            path = self.fetch(ref, expected, store=store, progress=progress)
            with key_lock(self.layout.lock(path.name), exclusive=False):  # evict holds it exclusive
                if path.exists():
                    lease_dir = self.layout.lease_dir(path.name)
                    while True:
                        lease_dir.mkdir(exist_ok=True)
                        try:
                            (lease_dir / holder).write_text(f"{time.time()}\n")
                            return path
                        except FileNotFoundError:  # another holder's release removed the empty folder
                            continue

    def release(self, key_or_path: str | os.PathLike[str], holder: str) -> None:
        """End ``holder``'s lease on an entry (by key or path); a missing lease is fine."""
        key = Path(key_or_path).name
        if not KEY_RE.fullmatch(key):
            raise InvalidArgument(f"bad cache key {key!r}")
        lease_dir = self.layout.lease_dir(key)
        try:
            (lease_dir / valid_holder(holder)).unlink()
            lease_dir.rmdir()
        except (FileNotFoundError, OSError):
            pass

    # ------------------------------------------------------------ listing
    def entries(self) -> list[CacheEntry]:
        """Every cached image, least recently used first."""
        out = []
        for key in self.layout.published():
            side = Sidecar.load(self.layout.sidecar(key))
            try:
                st = os.stat(self.layout.entry(key))
                used = os.stat(self.layout.sidecar(key)).st_mtime if side else st.st_mtime
            except FileNotFoundError:
                continue
            out.append(CacheEntry(
                key=key, path=self.layout.entry(key), size=st.st_size, allocated=st.st_blocks * 512,
                format=side.format if side else None, virtual_size=side.virtual_size if side else None,
                source=side.source if side else "", how=side.how if side else "unknown",
                fetched_at=side.fetched_at if side else st.st_mtime, last_used=used,
                leases=tuple(leased(self.layout.lease_dir(key)))))
        return sorted(out, key=lambda e: e.last_used)

    def total_bytes(self) -> int:
        """Bytes the entries occupy on disk (holes not counted)."""
        return sum(e.allocated for e in self.entries())

    # ------------------------------------------------------------ eviction
    def evict(self, *, max_bytes: int | None = None, max_age: float | None = None,
              keys: list[str] | None = None, _holding: str | None = None) -> EvictReport:
        """Remove entries over ``max_age`` seconds unused, then least recently used ones until
        the cache holds at most ``max_bytes`` (defaults: the cache's limits), or exactly
        ``keys``. Never an entry that a process has open, that is leased, or that is being
        fetched or used; size eviction also spares entries used in the last ``grace`` s."""
        _check_limits(max_bytes=max_bytes, max_age=max_age)
        if keys is None and max_bytes is None and max_age is None:
            max_bytes, max_age = self.max_bytes, self.max_age
        entries = self.entries()
        busy = open_paths(self.layout.entries)
        total = sum(e.allocated for e in entries)
        now = time.time()
        removed: list[str] = []
        kept: list[str] = []
        freed = 0
        for e in entries:
            explicit = keys is not None and e.key in keys
            old = max_age is not None and now - e.last_used > max_age
            big = max_bytes is not None and total > max_bytes
            if not (explicit or old or big) or e.key == _holding:
                continue
            if (not explicit and not old and now - e.last_used < self.grace) or e.leases \
                    or os.path.realpath(e.path) in busy:
                kept.append(e.key)
                continue
            fd = try_key_lock(self.layout.lock(e.key))
            if fd is None:
                kept.append(e.key)
                continue
            try:
                if self._claimed_since(e, explicit=explicit):
                    kept.append(e.key)
                    continue
                got = self._remove(e.key)
            finally:
                os.close(fd)
            freed += got
            total -= e.allocated
            removed.append(e.key)
            log.info("image cache %s: evicted %s (%d bytes)", self.directory, e.key, got)
            obs = self._observer()
            if obs.enabled:
                obs.cache_event("evict", got)
        self._sweep_temps(None)
        if removed:
            obs = self._observer()
            if obs.enabled:
                self._report_size(obs)
        return EvictReport(tuple(removed), freed, tuple(kept))

    def _claimed_since(self, e: CacheEntry, *, explicit: bool) -> bool:
        """Whether ``e`` was leased, or used (unless evicted by name), after :meth:`evict` listed
        it; the caller holds its key exclusively, so no lease or use can start until it is gone."""
        if leased(self.layout.lease_dir(e.key)):
            return True
        if explicit:
            return False
        try:
            return os.stat(self.layout.sidecar(e.key)).st_mtime != e.last_used
        except FileNotFoundError:
            return False

    def _sweep_temps(self, key: str | None) -> None:
        """Remove temporaries of dead fetches: of ``key`` (whose lock the caller holds), or of
        every key whose lock is free, once older than a few seconds."""
        try:
            names = os.listdir(self.layout.tmp)
        except FileNotFoundError:
            return
        now = time.time()
        for name in names:
            owner = name.split(".", 1)[0]
            if key is not None and owner != key:
                continue
            path = self.layout.tmp / name
            held = None
            if key is None:
                try:
                    if now - os.stat(path).st_mtime < _TMP_MIN_AGE or not KEY_RE.fullmatch(owner):
                        continue
                except FileNotFoundError:
                    continue
                held = try_key_lock(self.layout.lock(owner))
                if held is None:
                    continue
            try:
                os.unlink(path)
            except FileNotFoundError:
                pass
            finally:
                if held is not None:
                    os.close(held)

    # ------------------------------------------------------------ re-checking
    def verify(self, keys: list[str] | None = None) -> VerifyReport:
        """Re-hash entries (all, or ``keys``); damaged ones are removed unless in use."""
        ok: list[str] = []
        corrupt: list[str] = []
        removed: list[str] = []
        for key in keys if keys is not None else self.layout.published():
            algo, _, digest = key.partition("-")
            try:
                hash_and_inspect(self.layout.entry(key), {algo: digest}, chunk_size=self.chunk_size,
                                 progress=None, label=key)
            except ChecksumMismatch:
                corrupt.append(key)
                fd = try_key_lock(self.layout.lock(key))
                if fd is not None:
                    try:
                        self._remove(key)
                        removed.append(key)
                    finally:
                        os.close(fd)
                continue
            except FileNotFoundError:
                continue
            ok.append(key)
        return VerifyReport(tuple(ok), tuple(corrupt), tuple(removed))

    def revalidate(self, policy: FormatPolicy | None = None) -> RevalidateReport:
        """Re-inspect every entry against ``policy`` (default: the cache's) and remove what it
        refuses now, even if in use (open handles keep working; it is never handed out
        again): a fixed inspector or a narrower policy must not leave old bad images in
        use for new instances (OSSA-2024-002)."""
        pol = policy or self.policy
        busy = open_paths(self.layout.entries)
        accepted: list[str] = []
        refused: dict[str, tuple[str, ...]] = {}
        in_use: list[str] = []
        for key in self.layout.published():
            entry = self.layout.entry(key)
            try:
                verdict = inspect(str(entry))
            except FileNotFoundError:
                continue
            try:
                pol.check(verdict, store="cache", image=key)
            except UnsafeImage as exc:
                refused[key] = exc.reasons
                if os.path.realpath(entry) in busy or leased(self.layout.lease_dir(key)):
                    in_use.append(key)
                held = try_key_lock(self.layout.lock(key))  # held by a user: remove it all the same
                try:
                    self._remove(key)
                finally:
                    if held is not None:
                        os.close(held)
                log.warning("image cache %s: removed %s, refused by the format policy: %s", self.directory,
                            key, "; ".join(exc.reasons))
                continue
            accepted.append(key)
        return RevalidateReport(tuple(accepted), refused, tuple(in_use))


def _check_limits(**limits: object) -> None:
    """Each limit is None or a non-negative number; InvalidArgument names the one that is not."""
    for name, value in limits.items():
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise InvalidArgument(f"{name} must be a number, not {value!r}")
        if value < 0:
            raise InvalidArgument(f"{name} must not be negative, not {value!r}")
