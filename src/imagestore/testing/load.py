"""Concurrent load: many clients mixing add, get, clone and delete on one backend for a
bounded time, with corruption, deadlock and leak checks.

The clients are threads sharing one ``images`` and one ``vms`` store, as the
requests of one image or compute service do. Every image's bytes are known
(:mod:`.payloads`), so every successful read is compared byte for byte. The
outcomes a concurrent world allows (NotFound for an image another client
deleted, AlreadyExists for a lost race to one id, InUse for a parent with
clones) are counted; anything else is an error. Descriptors, sockets and
threads are counted before the stores are opened and after they are closed,
and between two equal phases of load (a pool that fills up once is not a
leak; one that keeps growing is); RSS is sampled at the same moments.
"""

from __future__ import annotations

import gc
import hashlib
import os
import random
import sys
import threading
import time
import traceback
from collections import Counter, defaultdict
from collections.abc import Callable
from typing import Any

from imagestore import AlreadyExists, ImageStoreError, InUse, NotFound, Store

from .backends import Backend
from .payloads import chunks, payload

__all__ = ["ALLOWED", "Counts", "load_run", "process_counts"]

ALLOWED = (NotFound, AlreadyExists, InUse)
"""Errors that concurrency makes legitimate: gone, taken, still needed by clones."""
MIX = (("add", 30), ("get", 35), ("clone", 20), ("delete", 15))
SETTINGS: dict[str, Any] = {"auto_sweep": False, "chunk_size": "256K"}
_GROWTH = ("fds", "sockets", "threads")
SETTLED = 2
"""Descriptors, sockets or threads a measured half may gain and still count as settled (a pool
or librados opening one more at one moment); more than that in each of three halves is a leak."""

Counts = dict[str, int]


def process_counts() -> Counts:
    """Open descriptors, sockets among them, OS threads and RSS (KiB) of this process, after a
    garbage collection (what only garbage still holds is not counted as held)."""
    gc.collect()
    fds = sockets = 0
    for fd in os.listdir("/proc/self/fd"):
        try:
            target = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:
            continue
        fds += 1
        sockets += target.startswith("socket:")
    rss = 0
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                rss = int(line.split()[1])
    return {"fds": fds, "sockets": sockets, "threads": len(os.listdir("/proc/self/task")), "rss_kib": rss}


def _percentile(values: list[float], q: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


class _Load:
    """Shared state of the clients: the images that should exist and the tallies."""

    def __init__(self, images: Store, vms: Store, prefix: str, size: int, seed: int) -> None:
        self.stores = {"images": images, "vms": vms}
        self.prefix = prefix
        self.size = size
        self.seed = seed
        self.lock = threading.Lock()
        self.known: dict[tuple[str, str], str] = {}  # (store, id) -> sha256 of its bytes
        self.latency: dict[str, list[float]] = defaultdict(list)
        self.outcomes: Counter[str] = Counter()
        self.errors: list[str] = []
        self.corrupt = 0
        self.serial = 0

    def new_id(self, client: int) -> str:
        with self.lock:
            self.serial += 1
            return f"{self.prefix}c{client}n{self.serial}"

    def pick(self, rng: random.Random, store: str | None = None) -> tuple[str, str] | None:
        with self.lock:
            keys = [k for k in self.known if store is None or k[0] == store]
            return rng.choice(keys) if keys else None

    def data_for(self, name: str) -> bytes:
        n = sum(map(ord, name))
        return payload(self.size // 2 + (n * 4099) % self.size, n)

    def op(self, kind: str, client: int, rng: random.Random) -> str:
        images, vms = self.stores["images"], self.stores["vms"]
        if kind == "add":
            if rng.random() < 0.1 and (taken := self.pick(rng, "images")) is not None:
                name = taken[1]  # a race for an id that exists (or just went)
            else:
                name = self.new_id(client)
            data = self.data_for(name)
            images.add(name, chunks(data, 128 << 10), len(data) if rng.random() < 0.5 else None)
            with self.lock:
                self.known[("images", name)] = hashlib.sha256(data).hexdigest()
            return "ok"
        if kind == "get":
            key = self.pick(rng)
            if key is None:
                return "empty"
            got = self.stores[key[0]].get(key[1])
            with self.lock:
                want = self.known.get(key)
            if want is not None and hashlib.sha256(got).hexdigest() != want:
                with self.lock:
                    self.corrupt += 1
                    self.errors.append(f"get {key}: {len(got)} bytes that are not the image's")
            return "ok"
        if kind == "clone":
            key = self.pick(rng, "images")
            if key is None:
                return "empty"
            name = self.new_id(client)
            with self.lock:
                want = self.known.get(key)
            vms_store = vms if rng.random() < 0.7 else images
            images.clone(key[1], vms_store, name=name)
            if want is not None:
                with self.lock:
                    self.known[(vms_store.name, name)] = want
            return "ok"
        key = self.pick(rng)
        if key is None:
            return "empty"
        self.stores[key[0]].delete(key[1])
        with self.lock:
            self.known.pop(key, None)
        return "ok"

    def client(self, index: int, deadline: float) -> None:
        rng = random.Random(self.seed * 1000 + index)
        kinds = [k for k, w in MIX for _ in range(w)]
        while time.monotonic() < deadline:
            kind = rng.choice(kinds)
            start = time.perf_counter()
            try:
                outcome = self.op(kind, index, rng)
            except ALLOWED as exc:
                outcome = type(exc).__name__
            except ImageStoreError as exc:
                outcome = "error"
                with self.lock:
                    self.errors.append(f"{kind}: {type(exc).__name__}: {exc}")
            except Exception as exc:  # noqa: BLE001 - counted: an escape is a violation
                outcome = "escaped"
                with self.lock:
                    self.errors.append(f"{kind}: {type(exc).__name__} escaped: {exc}")
            elapsed = time.perf_counter() - start
            with self.lock:
                if outcome != "empty":
                    self.latency[kind].append(elapsed)
                self.outcomes[f"{kind}:{outcome}"] += 1


def _phase(load: _Load, clients: int, seconds: float, grace: float) -> tuple[float, list[str]]:
    """Run ``clients`` threads for ``seconds``; wall time and the stacks of threads that hung."""
    deadline = time.monotonic() + seconds
    threads = [threading.Thread(target=load.client, args=(i, deadline), name=f"load-{i}", daemon=True)
               for i in range(clients)]
    start = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join(max(0.0, deadline + grace - time.monotonic()))
    hung = []
    frames = sys._current_frames()
    for t in threads:
        if t.is_alive() and t.ident in frames:
            hung.append(f"{t.name}:\n" + "".join(traceback.format_stack(frames[t.ident])[-6:]))
    return time.perf_counter() - start, hung


def load_run(backend: Backend, prefix: str, *, clients: int = 16, seconds: float = 10.0, size: int = 1 << 20,
             seed: int = 0, grace: float = 120.0, settle: Callable[[], None] | None = None) -> dict[str, Any]:
    """A warm-up phase, then two measured half phases of ``seconds`` (up to two more while the
    last one gained more than :data:`SETTLED`): figures over all, and the growth of descriptors,
    threads and RSS over the last half."""
    baseline = process_counts()
    images = backend.open("images", **SETTINGS)
    vms = backend.open("vms", **SETTINGS)
    load = _Load(images, vms, prefix, size, seed)
    try:
        for i in range(4):  # golden images every client reads and clones
            name = f"{prefix}gold{i}"
            data = load.data_for(name)
            images.add(name, data, len(data))
            load.known[("images", name)] = hashlib.sha256(data).hexdigest()
        _, hung = _phase(load, clients, max(1.0, seconds / 2), grace)
        warm = process_counts()
        load.latency.clear()
        before = sum(load.outcomes.values())
        wall, hung2 = _phase(load, clients, seconds / 2, grace)
        mid = process_counts()
        wall2, hung3 = _phase(load, clients, seconds / 2, grace)
        wall += wall2
        hung += hung2 + hung3
        steady = process_counts()
        # a connection pool fills lazily, gains a few and stops; a leak gains in every phase:
        # while the last half gained more than SETTLED of anything, measure (at most two) more
        for _ in range(2):
            if max(steady[k] - mid[k] for k in _GROWTH) <= SETTLED:
                break
            mid = steady
            more, hung4 = _phase(load, clients, seconds / 2, grace)
            wall += more
            hung += hung4
            steady = process_counts()
        ops = sum(load.outcomes.values()) - before
        leftovers = _cleanup(load)
    finally:
        images.close()
        vms.close()
    if settle is not None:
        settle()
    after = process_counts()
    every = [x for v in load.latency.values() for x in v]
    return {
        "backend": backend.describe(),
        "clients": clients,
        "seconds": round(wall, 2),
        "ops": ops,
        "ops_per_s": round(ops / wall, 1) if wall else 0.0,
        "p50_ms": round(_percentile(every, 0.50) * 1000, 1),
        "p99_ms": round(_percentile(every, 0.99) * 1000, 1),
        "by_op": {k: {"ops": len(v), "p50_ms": round(_percentile(v, 0.5) * 1000, 1),
                      "p99_ms": round(_percentile(v, 0.99) * 1000, 1)} for k, v in sorted(load.latency.items())},
        "outcomes": dict(sorted(load.outcomes.items())),
        "corrupt_reads_returned": load.corrupt,
        "errors": load.errors[:20],
        "error_count": len(load.errors),
        "deadlocked": len(hung),
        "hung_stacks": hung[:3],
        "counts": {"before_open": baseline, "after_warmup": warm, "half_way": mid, "after_load": steady,
                   "after_close": after},
        "growth_under_load": {k: steady[k] - mid[k] for k in _GROWTH},
        "leaked_after_close": {k: after[k] - baseline[k] for k in ("fds", "sockets", "threads")},
        "rss_growth_kib": steady["rss_kib"] - mid["rss_kib"],
        "left_after_cleanup": leftovers,
    }


def _cleanup(load: _Load) -> list[str]:
    """Delete every image the run made (clones first, parents once their clones are gone);
    the ones that could not be deleted, with why."""
    keys = sorted(load.known, key=lambda k: k[0] != "vms")
    why: dict[tuple[str, str], str] = {}
    for _ in range(5):
        left = []
        for store, name in keys:
            try:
                load.stores[store].delete(name)
            except NotFound:
                pass
            except ImageStoreError as exc:
                left.append((store, name))
                why[(store, name)] = f"{type(exc).__name__}: {exc}"
        keys = left
        if not keys:
            break
    return [f"{store}/{name}: {why[(store, name)]}" for store, name in keys]
