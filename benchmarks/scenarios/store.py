"""The one scenario every store runs, whatever its driver: add, get, clone, stat, locate, delete.

Per size: add of known and of unknown size against the backend's ideal add and
raw client upload; whole get (unverified and verified), ranged get and, where the
backend has a cache to drop, cold get, against the backend's raw read; every
clone mode ``can_clone`` allows, into the same store and across stores; stat and
locate latency; delete latency. Then, where asked, the big-image cow clone
(O(1)) and the peak RSS of unknown-size adds. Public API only.
"""

from __future__ import annotations

import random
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import imagestore

from ..backends import Backend
from ..figures import MiB, size_label
from ..measure import Step
from ..runner import Contender, Fn, Run

STAT_CALLS = 20  # calls timed per stat/locate repeat (their latency percentiles)
CLONE_MODES = ("cow", "server_copy", "stream")


@dataclass
class StoreOptions:
    """What the generic scenario does for one store."""

    sizes: list[int]
    clone_size: int | None = None
    rss_sizes: tuple[int, ...] = ()
    cross: Backend | None = None  # a second store for cross-store clones
    ops: frozenset[str] = frozenset({"add", "get", "clone", "meta"})


def _uid() -> str:
    return uuid.uuid4().hex[:8]


def run_store(run: Run, b: Backend, opt: StoreOptions) -> None:
    """Every figure of the scenario for one store; a failing figure is reported and the rest goes on."""
    deletes: list[float] = []
    for size in opt.sizes:
        try:
            kept = add_figure(run, b, size, deletes)
        except Exception as exc:  # the store is broken at this size: say so, try the next one
            run.failed = True
            run.skip("store", b.name, f"add {size_label(size)}: {type(exc).__name__}: {exc}")
            continue
        info, tag = kept
        try:
            if "get" in opt.ops:
                get_figure(run, b, size, info, tag)
            if "clone" in opt.ops:
                clone_figure(run, b, size, info, opt.cross, deletes)
            if "meta" in opt.ops and size == opt.sizes[0]:
                meta_figure(run, b, size, info)
        except Exception as exc:
            run.failed = True
            run.skip("store", b.name, f"{size_label(size)}: {type(exc).__name__}: {exc}")
        finally:
            _delete(b, info, deletes)
            b.drop(tag)
    if deletes:
        latency_record(run, b, "delete", opt.sizes[0], deletes)
    if opt.clone_size and "clone" in opt.ops:
        try:
            big_clone_figure(run, b, opt.clone_size)
        except Exception as exc:
            run.failed = True
            run.skip("store", b.name, f"big clone: {type(exc).__name__}: {exc}")
    for size in opt.rss_sizes:
        rss_figure(run, b, size)


def _delete(b: Backend, info: imagestore.ImageInfo, deletes: list[float]) -> None:
    import time

    t0 = time.perf_counter()
    b.store.delete(info.location)
    deletes.append(time.perf_counter() - t0)


def add_figure(run: Run, b: Backend, size: int, deletes: list[float]) -> tuple[imagestore.ImageInfo, str]:
    """add (known, unknown size) vs the ideal add and the raw upload; returns the image and limit tag kept."""
    src = run.source(size)
    kept: dict[str, Any] = {}
    keep_tag = f"{b.ideal_limit}-{size}-{_uid()}"

    def limit(name: str, keep: bool) -> Callable[[int], tuple[Fn, Fn | None]]:
        def prepare(r: int) -> tuple[Fn, Fn | None]:
            tag = keep_tag if keep and r == 0 else f"{name}-{size}-{r}-{_uid()}"
            fn = b.limit_add(name, src, size, tag)
            return fn, (None if keep and r == 0 else (lambda: b.drop(tag)))
        return prepare

    def add(known: bool, store: imagestore.Store = b.store) -> Callable[[int], tuple[Fn, Fn | None]]:
        def prepare(r: int) -> tuple[Fn, Fn | None]:
            image = f"bench-{'k' if known else 'u'}{size_label(size)}-{r}-{_uid()}"
            result: dict[str, Any] = {}

            def fn() -> None:
                with open(src, "rb") as fh:
                    result["info"] = store.add(image, fh, size=size if known else None)

            def cleanup() -> None:
                info = result["info"]
                if info.size != size:
                    raise AssertionError(f"added {info.size} bytes, not {size}")
                if known and "info" not in kept and store is b.store:
                    kept["info"] = info
                else:
                    _delete(b, info, deletes)
            return fn, cleanup
        return prepare

    contenders = [Contender(b.ideal_limit, limit(b.ideal_limit, True), size, is_limit=True)]
    if b.raw_put_limit:
        contenders.append(Contender(b.raw_put_limit, limit(b.raw_put_limit, False), size, is_limit=True))
    contenders += [Contender("add_known", add(True), size, limit=b.ideal_limit,
                             extra={"raw_limit": b.raw_put_limit, "checksums": list(b.algorithms)}),
                   Contender("add_unknown", add(False), size, limit=b.ideal_limit,
                             extra={"raw_limit": b.raw_put_limit, "checksums": list(b.algorithms)})]
    observed = b.observed()
    if observed is not None:  # the same add reporting metrics and spans, against the unobserved one
        contenders.append(Contender("add_known_observed", add(True, observed), size, limit="add_known",
                                    extra={"note": "instrumented (Prometheus + OpenTelemetry) vs add_known"}))
    run.compare(b.name, b.driver, size, contenders, pids=b.pids)
    if "info" not in kept:
        raise RuntimeError("no add succeeded")
    if keep_tag not in b.kept and b.ideal_limit != "ideal_add_generic":
        raise RuntimeError(f"the {b.ideal_limit} limit failed")
    return kept["info"], keep_tag


def get_figure(run: Run, b: Backend, size: int, info: imagestore.ImageInfo, tag: str) -> None:
    """Whole (unverified, verified), ranged and cold gets vs the backend's raw reads of its limit object."""
    loc = info.location
    offset, length = size // 4, size // 2

    def drain(reader: imagestore.ImageReader) -> int:
        n = 0
        with reader:
            for piece in reader:
                n += len(piece)
        return n

    def check(expect: int, fn: Callable[[], int]) -> Callable[[int], tuple[Fn, Fn | None]]:
        def prepare(r: int) -> tuple[Fn, Fn | None]:
            got: dict[str, int] = {}

            def cleanup() -> None:
                if got["n"] != expect:
                    raise AssertionError(f"read {got['n']} bytes, not {expect}")
            return (lambda: got.__setitem__("n", fn())), cleanup
        return prepare

    def lim(name: str) -> Callable[[int], tuple[Fn, Fn | None]]:
        return lambda r: (b.limit_get(name, tag, size), None)

    has_limit = tag in b.kept
    c: list[Contender] = []
    if has_limit and b.read_limit:
        c.append(Contender(b.read_limit, lim(b.read_limit), size, is_limit=True))
    if has_limit and b.read_hashed_limit:
        c.append(Contender(b.read_hashed_limit, lim(b.read_hashed_limit), size, is_limit=True))
    read = b.read_limit if has_limit else None
    c += [
        Contender("get", check(size, lambda: drain(b.store.open(loc, verify=False))), size, limit=read),
        Contender("get_verified", check(size, lambda: drain(b.store.open(loc, verify=True))), size,
                  limit=b.read_hashed_limit if has_limit else None),
        Contender("get_ranged", check(length, lambda: drain(b.store.open(loc, offset, length, verify=False))),
                  length, limit=read, extra={"offset": offset, "length": length,
                                             "note": "ranged MB/s vs the whole raw read's MB/s"}),
        *_ranged_1m(b, loc, size, check, drain),
        Contender("scrub", check(size, lambda: b.store.scrub(prefix=loc.image).bytes_read), size, limit=read,
                  extra={"note": "Store.scrub of this image (listing, stat, read against its BLAKE3) vs the raw "
                                 "read"}),
    ]
    observed = b.observed()
    if observed is not None:
        c.append(Contender("get_verified_observed", check(size, lambda: drain(observed.open(loc, verify=True))),
                           size, limit="get_verified",
                           extra={"note": "instrumented (Prometheus + OpenTelemetry) vs get_verified"}))
    run.compare(b.name, b.driver, size, c, pids=b.pids)
    if b.has_cold and has_limit:
        def cold(r: int) -> tuple[Fn, Fn | None]:
            b.cold(info)
            return check(size, lambda: drain(b.store.open(loc, verify=False)))(r)
        run.compare(b.name, b.driver, size, [
            Contender("read_cold", lim("read_cold"), size, is_limit=True),
            Contender("get_cold", cold, size, limit="read_cold")], pids=b.pids)


RANGES = 32
"""How many 1 MiB ranges, at random offsets, one timed round of the ranged gets reads."""


def _ranged_1m(b: Backend, loc: imagestore.Location, size: int,
               check: Callable[[int, Callable[[], int]], Callable[[int], tuple[Fn, Fn | None]]],
               drain: Callable[[imagestore.ImageReader], int]) -> list[Contender]:
    """1 MiB ranges at random (unaligned) offsets, unverified and verified block by block (each
    touches two blocks: the verified one reads and hashes 2 MiB): the same offsets for both."""
    if size < 4 * MiB:
        return []
    spots = [random.Random(size + i).randrange(0, size - MiB) for i in range(RANGES)]

    def ranges(verify: bool) -> Callable[[], int]:
        return lambda: sum(drain(b.store.open(loc, at, MiB, verify=verify)) for at in spots)

    total = RANGES * MiB
    return [Contender("get_ranged_1m", check(total, ranges(False)), total,
                      extra={"ranges": RANGES, "length": MiB, "note": "unverified 1 MiB ranges"}),
            Contender("get_ranged_1m_verified", check(total, ranges(True)), total, limit="get_ranged_1m",
                      extra={"ranges": RANGES, "length": MiB,
                             "note": "the same ranges verified with the block table vs unverified"})]


def clone_figure(run: Run, b: Backend, size: int, info: imagestore.ImageInfo, cross: Backend | None,
                 deletes: list[float]) -> None:
    """Each clone mode the store allows for this image, and a clone into another store (auto mode)."""
    c: list[Contender] = []
    for mode in CLONE_MODES:
        check = b.store.can_clone(info.location, mode=mode)
        if not check.possible:
            run.emit({"kind": "skip", "scenario": "store", "store": b.name,
                      "reason": f"clone_{mode} {size_label(size)}: {check.code}: {check.reason}"})
            continue
        c.append(Contender(f"clone_{mode}", _clone(b, b, info, mode, deletes), 0 if mode == "cow" else size,
                           extra={"mode": mode}))
    if cross is not None:
        check = b.store.can_clone(info.location, to=cross.store)
        c.append(Contender("clone_cross", _clone(b, cross, info, "auto", deletes), size,
                           extra={"to": cross.name, "mode": check.mode, "reason": check.reason}))
    if c:
        run.compare(b.name, b.driver, size, c, pids=b.pids)


def _clone(b: Backend, to: Backend, info: imagestore.ImageInfo, mode: str,
           deletes: list[float]) -> Callable[[int], tuple[Fn, Fn | None]]:
    def prepare(r: int) -> tuple[Fn, Fn | None]:
        name = f"bench-clone-{mode}-{r}-{_uid()}"
        out: dict[str, Any] = {}

        def fn() -> None:
            out["res"] = b.store.clone(info.location, to=to.store, name=name, mode=mode)

        def cleanup() -> None:
            res = out["res"]
            if mode != "auto" and res.mode != mode:
                raise AssertionError(f"asked clone mode {mode}, got {res.mode}")
            to.store.delete(res.location)
        return fn, cleanup
    return prepare


def meta_figure(run: Run, b: Backend, size: int, info: imagestore.ImageInfo) -> None:
    """stat and locate latency, STAT_CALLS calls per repeat."""
    import time

    def many(call: Callable[[], Any]) -> Callable[[int], tuple[Fn, Fn | None]]:
        def fn() -> list[float]:
            lat = []
            for _ in range(STAT_CALLS):
                t0 = time.perf_counter()
                call()
                lat.append(time.perf_counter() - t0)
            return lat
        return lambda r: (fn, None)

    c = [Contender("stat", many(lambda: b.store.stat(info.location)), 0, ops=STAT_CALLS)]
    if b.store.capabilities.direct_access:
        c.append(Contender("locate", many(lambda: b.store.locate(info.location)), 0, ops=STAT_CALLS))
    run.compare(b.name, b.driver, size, c, pids=b.pids)


def latency_record(run: Run, b: Backend, op: str, size: int, latencies: list[float]) -> None:
    """A summary record made of latencies collected outside :meth:`Run.compare` (deletes)."""
    total = sum(latencies)
    step = Step(seconds=total, latencies=latencies)
    c = Contender(op, lambda r: (lambda: None, None), 0, ops=len(latencies))
    rec = run._record("summary", c, b.name, b.driver, size, 1, "single", None, [step], [{}], None, None)
    rec["extra"]["note"] = "deletes of the images this store's figures made; CPU and RSS not measured"
    run.emit(rec)


def big_clone_figure(run: Run, b: Backend, big: int) -> None:
    """cow clone of a ``big`` image (written mostly zero: the clone's cost must not follow the size)."""
    check_small = b.store.capabilities.cow_clone
    if not check_small:
        return
    image = f"bench-big-{_uid()}"

    def mostly_zero() -> Any:
        zero = bytes(run.chunk)
        first = True
        done = 0
        while done < big:
            n = min(run.chunk, big - done)
            yield (next(run.chunks(n)) if first else zero[:n])
            first = False
            done += n

    run.log(f"{b.name}: adding a {size_label(big)} image for the cow-clone figure")
    info = b.store.add(image, mostly_zero(), size=big)
    try:
        check = b.store.can_clone(info.location, mode="cow")
        if not check.possible:
            run.skip("store", b.name, f"clone_cow {size_label(big)}: {check.reason}")
            return
        run.compare(b.name, b.driver, big, [Contender("clone_cow", _clone(b, b, info, "cow", []), 0,
                                                      extra={"mode": "cow", "image": "mostly zero"})],
                    pids=b.pids, repeats=max(run.repeats, 3))
    finally:
        b.store.delete(info.location)


def rss_figure(run: Run, b: Backend, size: int) -> None:
    """Peak RSS growth of an unknown-size add of ``size`` generated bytes, in a fresh client process.

    A fresh process, because in the harness's own the memory earlier figures freed is reused
    without growing RSS, which would hide what the add needs."""
    from .concurrency import client_processes

    run.compare(b.name, b.driver, size, [Contender(
        "rss_add_unknown", client_processes(b, "add_stream", 1, {"size": size, "chunk": run.chunk}), size,
        extra={"source": "generator, size unknown", "process": "one client process (client.py)"})],
        pids=b.pids, repeats=1)
