"""Crash sweeps: kill -9 a child process at chosen points of add, clone, delete and sweep,
then check what the backend holds.

A point is where the child dies: at the N-th call boundary inside the driver
package (every Python call into, and every C call made from, a module under
``imagestore/drivers``: ``os.link``, an ``rbd_rename``, an HTTP request...), or
after exactly B bytes were handed to the driver's writer. A dry run of each
operation counts its boundaries and bytes; points are then drawn (seeded) from
those ranges. After each kill the parent checks, with its own stores:

- no visible partial image: every image the operation touched is either absent
  or published whole, and a verified read returns exactly the bytes written;
- nothing that existed before is lost (a clone's source, a deleted parent's
  clone, an image beside a sweep), so deleting a parent mid-clone breaks no child;
- the operation can be run again (no id is left stuck).

:meth:`CrashSweep.finish` waits until dead writers' locks and watches lapse,
sweeps both stores, and checks that the backend holds nothing of the run but
visible images; then it deletes those, sweeps again and checks that nothing at
all is left. Run the child side as ``python -m imagestore.testing.crash``.
"""

from __future__ import annotations

import itertools
import json
import os
import random
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import Any

import imagestore
from imagestore import AlreadyExists, ChecksumMismatch, DeleteOutcome, ImageStoreError, InUse, NotFound, Store
from imagestore.store.tables import companion

from .backends import STORES, Backend, visible
from .chaos import Chaos, Fault, Kill, killable_env, require_killable
from .payloads import chunks, digests, payload

__all__ = ["OPS", "CrashSweep", "Point", "main"]

DRIVERS_DIR = str(Path(imagestore.__file__).resolve().parent / "drivers") + os.sep
OPS = ("add", "add_unknown_size", "clone", "clone_stream", "delete", "delete_parent", "clone_delete_parent",
       "sweep")
"""Operations a point can kill: what the child runs (see :func:`_run_op`)."""
WRITES = ("add", "add_unknown_size", "clone_stream")
"""Operations that stream bytes through a driver's writer (points by bytes apply)."""
CHILD_TIMEOUT = 120.0
SETTINGS = {"auto_sweep": False, "chunk_size": "64K", "retries": 2, "retry_backoff": 0.05}
"""Store settings on both sides: no sweep the operation did not ask for, small I/O units."""


# ---------------------------------------------------------------------- child side
def _count_calls(at: int | None, counter: Callable[[], int]) -> None:
    """Profile every thread: count driver call boundaries; SIGKILL at boundary ``at``."""

    def profile(frame: FrameType, event: str, arg: object) -> None:
        if event not in ("call", "c_call") or not frame.f_code.co_filename.startswith(DRIVERS_DIR):
            return
        if counter() == at:
            os.kill(os.getpid(), signal.SIGKILL)

    sys.setprofile(profile)
    threading.setprofile(profile)


def _run_op(op: str, args: Mapping[str, Any], stores: Mapping[str, Store]) -> str:
    """Perform one operation; its outcome as a word."""
    images, vms = stores["images"], stores["vms"]
    if op in ("add", "add_unknown_size"):
        data = payload(args["size"], args["seed"])
        images.add(args["new"], chunks(data, args["piece"]), len(data) if op == "add" else None)
        return "added"
    if op in ("clone", "clone_stream"):
        return images.clone(args["src"], vms, name=args["new"], mode="stream" if op == "clone_stream" else "auto").mode
    if op in ("delete", "delete_parent"):
        try:
            return images.delete(args["src"]).value
        except InUse:
            return "in_use"
    if op == "clone_delete_parent":
        images.clone(args["src"], vms, name=args["new"])
        try:
            return images.delete(args["src"]).value
        except InUse:
            return "in_use"
    if op == "sweep":
        removed = images.sweep(0).removed + vms.sweep(0).removed
        return f"swept {removed}"
    raise ValueError(f"unknown operation {op!r}")


def child(job: Mapping[str, Any]) -> dict[str, Any]:
    """Open the stores, arm the kill, run the operation; what it did (when it was not killed).
    Only in a child the parent side started to be killed (RuntimeError elsewhere)."""
    require_killable()
    stores = {name: imagestore.open_store({**table, **SETTINGS}, name) for name, table in job["tables"].items()}
    kill = job["kill"]
    chaos = Chaos()
    if kill["mode"] == "bytes":
        chaos.add(Fault("write", Kill(), after_bytes=int(kill["at"])))
    for store in stores.values():
        chaos.attach(store)
    count = itertools.count(1).__next__
    seen = [0]

    def counter() -> int:
        seen[0] = count()
        return seen[0]

    if kill["mode"] in ("calls", "count"):
        _count_calls(int(kill["at"]) if kill["mode"] == "calls" else None, counter)
    try:
        outcome = _run_op(job["op"], job["args"], stores)
        error = None
    except ImageStoreError as exc:
        outcome, error = "error", f"{type(exc).__name__}: {exc}"
    finally:
        sys.setprofile(None)
        threading.setprofile(None)
    calls = seen[0]
    for store in stores.values():
        store.close()
    return {"outcome": outcome, "error": error, "calls": calls, "bytes": chaos.bytes["write"]}


def main() -> int:
    """Child entry point: a JSON job on stdin, a JSON result on stdout (if not killed)."""
    job = json.loads(sys.stdin.read())
    result = child(job)
    sys.stdout.write(json.dumps(result) + "\n")
    sys.stdout.flush()
    return 0


# ---------------------------------------------------------------------- parent side
@dataclass
class Point:
    """One kill: which operation, how the point was chosen, and what the checks found."""

    op: str
    mode: str  #: "calls" (the N-th driver call boundary) or "bytes" (after N bytes written)
    at: int
    index: int
    killed: bool = False
    outcome: str = ""
    violations: list[str] = field(default_factory=list)


@dataclass
class Tally:
    """The invariants' counters over a sweep (each should stay 0)."""

    images_lost: int = 0
    corrupt_reads_returned: int = 0
    partial_visible: int = 0
    stuck: int = 0
    orphans_after_sweep: int = 0
    residue_after_cleanup: int = 0
    hung: int = 0

    def total(self) -> int:
        return sum(vars(self).values())


class CrashSweep:
    """Kill points on one backend: prepare, strike, check each; then :meth:`finish`.

    ``prefix`` makes the run's ids unique on a shared backend; ``size`` is the
    image size (odd, so parts and chunks never line up).
    """

    def __init__(self, backend: Backend, prefix: str, *, size: int | None = None, piece: int = 256 << 10,
                 seed: int = 0, log: Callable[[str], None] | None = None) -> None:
        self.backend = backend
        self.prefix = prefix
        self.size = size or backend.image_size
        self.piece = piece
        self.rng = random.Random(seed)
        self.log = log or (lambda message: None)
        self.tables = {name: backend.table(name) for name in STORES}
        self.stores = {name: imagestore.open_store({**table, **SETTINGS}, name) for name, table in self.tables.items()}
        self.points: list[Point] = []
        self.tally = Tally()
        self.counts: dict[str, dict[str, int]] = {}
        self.last_kill = 0.0
        self._serial = itertools.count()
        self._expect: dict[tuple[str, str], bytes] = {}  # (store, id) -> the bytes it must hold if visible
        self._later: list[tuple[Point, str, Callable[[], object]]] = []

    # ------------------------------------------------------------ ids and data
    def _ids(self, op: str, index: int) -> dict[str, str]:
        base = f"{self.prefix}{op.replace('_', '')[:6]}{index}"
        return {"src": f"{base}-src", "new": f"{base}-new", "child": f"{base}-child", "keep": f"{base}-keep"}

    def _data(self, name: str) -> bytes:
        return payload(self.size, sum(map(ord, name)) * 7919 + len(name))

    def _add(self, store: str, name: str) -> None:
        data = self._data(name)
        self.stores[store].add(name, chunks(data, self.piece), len(data))
        self._expect[(store, name)] = data

    # ------------------------------------------------------------ one point
    def _prepare(self, op: str, ids: Mapping[str, str]) -> dict[str, Any]:
        """Parent-side set-up of a point; the child's arguments."""
        images, vms = self.stores["images"], self.stores["vms"]
        args: dict[str, Any] = {"size": self.size, "piece": self.piece}
        if op in ("add", "add_unknown_size"):
            args.update(new=ids["new"], seed=sum(map(ord, ids["new"])) * 7919 + len(ids["new"]))
            self._expect[("images", ids["new"])] = payload(self.size, args["seed"])
            return args
        if op == "sweep":
            self._add("images", ids["keep"])
            for store, n in (("images", 2), ("vms", 1)):
                for i in range(n):
                    self.backend.plant_dead_temporary(store, f"{ids['new']}{i}", 1 << 20)
            return args
        self._add("images", ids["src"])
        args.update(src=ids["src"], new=ids["new"])
        if op in ("clone", "clone_stream", "clone_delete_parent"):
            self._expect[("vms", ids["new"])] = self._expect[("images", ids["src"])]
        if op == "delete_parent":
            images.clone(ids["src"], vms, name=ids["child"])
            self._expect[("vms", ids["child"])] = self._expect[("images", ids["src"])]
        return args

    def _spawn(self, op: str, args: Mapping[str, Any], kill: Mapping[str, Any]) -> tuple[int | None, dict[str, Any]]:
        job = {"tables": self.tables, "op": op, "args": dict(args), "kill": dict(kill)}
        proc = subprocess.Popen([sys.executable, "-m", "imagestore.testing.crash"], stdin=subprocess.PIPE,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                env={**os.environ, **killable_env()})
        try:
            out, err = proc.communicate(json.dumps(job), timeout=CHILD_TIMEOUT)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.communicate()
            return None, {"error": f"the child hung for {CHILD_TIMEOUT:g} s"}
        if proc.returncode == -signal.SIGKILL:
            self.last_kill = time.monotonic()
            return proc.returncode, {}
        if proc.returncode != 0:
            return proc.returncode, {"error": f"child exited {proc.returncode}: {err.strip()[-800:]}"}
        result: dict[str, Any] = json.loads(out.strip().splitlines()[-1])
        return 0, result

    def dry_run(self, op: str) -> dict[str, int]:
        """Run ``op`` unkilled once, counting its driver call boundaries and bytes written."""
        index = next(self._serial)
        ids = self._ids(op, index)
        args = self._prepare(op, ids)
        code, result = self._spawn(op, args, {"mode": "count", "at": 0})
        if code != 0 or result.get("error"):
            raise RuntimeError(f"dry run of {op} on {self.backend.kind} failed: {result}")
        point = Point(op, "none", 0, index, outcome=str(result["outcome"]))
        self._check(point, ids)
        if point.violations:
            raise RuntimeError(f"dry run of {op} on {self.backend.kind}: {point.violations}")
        counts = {"calls": int(result["calls"]), "bytes": int(result["bytes"])}
        self.counts[op] = counts
        return counts

    def plan(self, op: str, n_calls: int, n_bytes: int = 0) -> list[tuple[str, int]]:
        """Seeded kill points for ``op``: ``n_calls`` boundaries and ``n_bytes`` byte offsets."""
        counts = self.counts.get(op) or self.dry_run(op)
        calls = max(1, int(counts["calls"] * 0.98))  # thread scheduling may shift the last few
        picked = [("calls", c) for c in sorted(self.rng.sample(range(1, calls + 1), min(n_calls, calls)))]
        if op in WRITES and n_bytes and counts["bytes"] > 1:
            span = range(1, counts["bytes"])
            picked += [("bytes", b) for b in sorted(self.rng.sample(span, min(n_bytes, len(span))))]
        return picked

    def strike(self, op: str, mode: str, at: int, *, redraws: int = 2) -> Point:
        """Prepare, run the child until it is killed at the point, and check the invariants.

        A call boundary past the end of this run (an operation's count of calls varies with
        what earlier points left behind, e.g. a sweep's) is drawn again, up to ``redraws``
        times, within the calls that run made."""
        index = next(self._serial)
        ids = self._ids(op, index)
        args = self._prepare(op, ids)
        point = Point(op, mode, at, index)
        code, result = self._spawn(op, args, {"mode": mode, "at": at})
        point.killed = code == -signal.SIGKILL
        made = int(result.get("calls") or 0)
        if code == 0 and mode == "calls" and 1 < made < at and redraws > 0:
            self._check(point, ids)  # the unkilled run is checked like any other
            if point.violations:
                self.points.append(point)
                return point
            return self.strike(op, mode, self.rng.randint(1, made - 1), redraws=redraws - 1)
        point.outcome = "killed" if point.killed else str(result.get("outcome", result.get("error", "")))
        if code is None:
            self.tally.hung += 1
            point.violations.append(str(result["error"]))
        elif code != 0 and not point.killed:
            point.violations.append(str(result["error"]))
        self._check(point, ids)
        self.points.append(point)
        if point.violations:
            self.log(f"{self.backend.kind} {op} {mode}={at}: {point.violations}")
        return point

    # ------------------------------------------------------------ checks
    def _state(self, store: str, name: str) -> tuple[str, str]:
        """``("absent"|"intact"|"corrupt-caught"|"corrupt-returned"|"partial", detail)``."""
        s = self.stores[store]
        want = self._expect[(store, name)]
        try:
            info = s.stat(name)
        except NotFound:
            return "absent", ""
        except ImageStoreError as exc:
            return "partial", f"stat: {exc}"
        try:
            got = s.get(name)
        except ChecksumMismatch as exc:
            return "corrupt-caught", str(exc)
        except ImageStoreError as exc:
            return "partial", f"read: {type(exc).__name__}: {exc}"
        if got != want:
            return "corrupt-returned", f"a verified read returned {len(got)} bytes that are not the image's"
        if info.size != len(want) or dict(info.checksums) != digests(want):
            return "partial", "stored size or checksums are not those of the bytes"
        return "intact", ""

    def _require(self, point: Point, store: str, name: str, *, may_be_absent: bool) -> str:
        state, detail = self._state(store, name)
        label = f"{store}/{name}"
        if state == "intact" or (state == "absent" and may_be_absent):
            return state
        if state == "corrupt-returned":
            self.tally.corrupt_reads_returned += 1
        elif state == "absent":
            self.tally.images_lost += 1
        elif state in ("partial", "corrupt-caught"):
            self.tally.partial_visible += 1
            if not may_be_absent:
                self.tally.images_lost += 1
        point.violations.append(f"{label}: {state} {detail}".strip())
        return state

    def _again(self, point: Point, what: str, fn: Callable[[], object], *, later: bool = False,
               landed: tuple[str, str] | None = None) -> None:
        """The operation run again after the crash must work: nothing is left stuck.

        ``landed``: the image the operation makes; AlreadyExists is no violation when it is
        intact by now (a server may finish a request whose client was killed after sending it).

        ``later``: only once the dead child's watches have lapsed (in :meth:`finish`), since
        a backend may refuse to remove an image a dead client still seems to hold open."""
        if later:
            self._later.append((point, what, fn))
            return
        try:
            fn()
        except AlreadyExists as exc:
            if landed is None or self._state(*landed)[0] != "intact":
                self.tally.stuck += 1
                point.violations.append(f"running {what} again failed: {type(exc).__name__}: {exc}")
        except ImageStoreError as exc:
            self.tally.stuck += 1
            point.violations.append(f"running {what} again failed: {type(exc).__name__}: {exc}")

    def _check(self, point: Point, ids: Mapping[str, str]) -> None:
        images, vms = self.stores["images"], self.stores["vms"]
        op = point.op
        if op in ("add", "add_unknown_size"):
            if self._require(point, "images", ids["new"], may_be_absent=True) == "absent":
                data = self._expect[("images", ids["new"])]
                self._again(point, "add", lambda: images.add(ids["new"], chunks(data, self.piece), len(data)),
                            landed=("images", ids["new"]))
                self._require(point, "images", ids["new"], may_be_absent=False)
        elif op in ("clone", "clone_stream"):
            self._require(point, "images", ids["src"], may_be_absent=False)
            if self._require(point, "vms", ids["new"], may_be_absent=True) == "absent":
                stream = op == "clone_stream"
                self._again(point, "clone", lambda: images.clone(ids["src"], vms, name=ids["new"],
                                                                 mode="stream" if stream else "auto"),
                            landed=("vms", ids["new"]))
                self._require(point, "vms", ids["new"], may_be_absent=False)
        elif op in ("delete", "delete_parent"):
            if op == "delete_parent":
                self._require(point, "vms", ids["child"], may_be_absent=False)
            if self._require(point, "images", ids["src"], may_be_absent=True) == "intact":
                self._again(point, "delete", lambda: _delete_or_in_use(images, ids["src"]), later=True)
            if op == "delete_parent":
                self._require(point, "vms", ids["child"], may_be_absent=False)
        elif op == "clone_delete_parent":
            new = self._require(point, "vms", ids["new"], may_be_absent=True)
            src = self._require(point, "images", ids["src"], may_be_absent=True)
            if new == "absent" and src == "intact":
                self._again(point, "clone", lambda: images.clone(ids["src"], vms, name=ids["new"]),
                            landed=("vms", ids["new"]))
                self._require(point, "vms", ids["new"], may_be_absent=False)
        elif op == "sweep":
            self._require(point, "images", ids["keep"], may_be_absent=False)
            self._again(point, "sweep", lambda: images.sweep(0))
            self._require(point, "images", ids["keep"], may_be_absent=False)

    # ------------------------------------------------------------ the end
    def finish(self) -> dict[str, Any]:
        """Wait for dead writers' locks and watches to lapse, sweep, check for orphans; then
        delete every image of the run, sweep again, and check that nothing is left."""
        wait = self.backend.sweep_wait - (time.monotonic() - self.last_kill) if self.last_kill else 0.0
        if wait > 0:
            self.log(f"{self.backend.kind}: waiting {wait:.0f} s for dead writers' locks and watches to lapse")
            time.sleep(wait)
        for point, what, fn in self._later:
            self._again(point, what, fn)
        # a dead client's lock or watch lapses after about sweep_wait, later on a loaded machine:
        # wait (up to one more sweep_wait) until the backend says nothing is held, then ONE sweep
        # of each store must leave nothing. A backend that cannot tell is swept until clean.
        deadline = time.monotonic() + max(self.backend.sweep_wait, 10.0)
        held = self.backend.held(self.prefix)
        while held and time.monotonic() < deadline:
            time.sleep(1)
            held = self.backend.held(self.prefix)
        while True:
            for opened in self.stores.values():
                opened.sweep(0)
            shown = visible(self.backend, self.stores, self.prefix)
            tables = {(store, companion(name, info.block_table)) for (store, name), info in shown.items()
                      if info.block_table is not None}
            orphans = [o for o in self.backend.objects(self.prefix)
                       if o.kind in ("temporary", "snapshot", "trash")
                       or (o.kind == "image" and (o.store, o.name) not in shown and (o.store, o.name) not in tables)]
            if held is not None or not orphans or time.monotonic() > deadline:
                break
            time.sleep(2)
        self.tally.orphans_after_sweep = len(orphans)
        unsound = []
        for key in sorted(shown):  # every visible image of the run verifies
            if key in self._expect:
                state, detail = self._state(*key)
                if state != "intact":
                    unsound.append(f"{key[0]}/{key[1]}: {state} {detail}")
                    self.tally.partial_visible += 1
        removed = _delete_all(self.stores, sorted(shown, key=lambda k: k[0] != "vms"))
        for opened in self.stores.values():
            opened.sweep(0)
        residue = self.backend.objects(self.prefix)
        self.tally.residue_after_cleanup = len(residue)
        return self.report(orphans=[str(o) for o in orphans], unsound_after_sweep=unsound,
                           residue=[str(r) for r in residue], deleted=removed)

    def report(self, **extra: Any) -> dict[str, Any]:
        """Figures of the sweep: points by operation and mode, the invariants' counters, violations."""
        by_op = Counter(p.op for p in self.points if p.killed)
        by_mode = Counter(p.mode for p in self.points if p.killed)
        return {
            "backend": self.backend.describe(),
            "kill_points": sum(by_op.values()),
            "points_run": len(self.points),
            "by_operation": dict(by_op),
            "by_mode": dict(by_mode),
            "dry_run_counts": self.counts,
            **vars(self.tally),
            "violations": [f"{p.op} {p.mode}={p.at}: {v}" for p in self.points for v in p.violations],
            **extra,
        }

    def close(self) -> None:
        for store in self.stores.values():
            store.close()


def _delete_or_in_use(store: Store, name: str) -> DeleteOutcome | None:
    try:
        return store.delete(name)
    except InUse:
        return None


def _delete_all(stores: Mapping[str, Store], keys: list[tuple[str, str]]) -> int:
    """Delete the images (clones first; retried while parents are still in use); how many went."""
    left = list(keys)
    removed = 0
    for _ in range(4):
        pending = []
        for store, name in left:
            try:
                stores[store].delete(name)
                removed += 1
            except NotFound:
                removed += 1
            except InUse:
                pending.append((store, name))
        left = pending
        if not left:
            break
    return removed


if __name__ == "__main__":
    raise SystemExit(main())
