"""The fault matrix: every kind of driver fault against the operation it hits, with the
outcome the error contract promises, on one backend.

Each case attaches a :class:`~imagestore.testing.chaos.Chaos` rule, runs one
operation and classifies what came out: ``recovered`` (the call succeeded and
its bytes are the image's), ``clear`` (the promised ImageStoreError class), or a
violation: ``wrong_error`` (another ImageStoreError), ``escaped`` (an exception
that is not an ImageStoreError), ``corrupt_returned`` (a read that succeeded
with other bytes or another length) and ``left_behind`` (a failed add or clone
that left a temporary or an image). :func:`fault_run` returns the tallies.
"""

from __future__ import annotations

import errno
import random
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from imagestore import (
    BackendError,
    BackendUnavailable,
    ChecksumMismatch,
    ImageStoreError,
    NoSpace,
    NotFound,
    PermissionDenied,
    SizeMismatch,
)

from .backends import Backend
from .chaos import Action, Chaos, Corrupt, Eof, Fault, Raise, Stall
from .payloads import chunks, payload

__all__ = ["CASES", "Case", "fault_run"]

SETTINGS: dict[str, Any] = {"retries": 2, "retry_backoff": 0.0, "chunk_size": "64K", "auto_sweep": False}
RECOVER = "recover"


@dataclass(frozen=True)
class Case:
    """One fault and the operation it hits: ``expect`` is ``"recover"`` or the error class."""

    name: str
    op: str  #: get, range, add, clone, delete, locate, sweep, can_clone
    point: str
    action: Callable[[], Action]
    expect: str | type[ImageStoreError]
    times: int | None = 1
    probability: float = 1.0
    after_bytes: int | None = None  #: a write or read fault fires this many bytes in


def _transient() -> Action:
    return Raise.transient()


CASES: tuple[Case, ...] = (
    # retryable faults of idempotent calls: retried, the result is right
    Case("stat transient", "get", "stat", _transient, RECOVER),
    Case("open_reader transient", "get", "open_reader", _transient, RECOVER),
    Case("read transient x2 (resumed)", "get", "read", _transient, RECOVER, times=2),
    Case("read cut short (resumed)", "get", "read", Eof, RECOVER),
    Case("read cut after 1 MiB (resumed)", "get", "read", Eof, RECOVER, after_bytes=1 << 20),
    Case("read transient after 1 MiB (resumed)", "get", "read", _transient, RECOVER, after_bytes=1 << 20),
    Case("ranged read transient (resumed)", "range", "read", _transient, RECOVER),
    Case("ranged read cut short (resumed)", "range", "read", Eof, RECOVER),
    Case("read stall", "get", "read", lambda: Stall(0.05), RECOVER),
    Case("delete transient", "delete", "delete", _transient, RECOVER),
    Case("sweep transient", "sweep", "sweep", _transient, RECOVER),
    Case("plan_clone transient", "can_clone", "plan_clone", _transient, RECOVER),
    Case("open_writer transient", "add", "open_writer", _transient, RECOVER),
    Case("write stall", "add", "write", lambda: Stall(0.05), RECOVER),
    Case("read transient storm p=0.3", "get", "read", _transient, RECOVER, times=None, probability=0.3),
    # faults that outlast the retries, or are not retryable: one clear error, nothing kept
    Case("stat transient forever", "get", "stat", _transient, BackendUnavailable, times=None),
    Case("read transient forever", "get", "read", _transient, BackendUnavailable, times=None),
    Case("read corrupted", "get", "read", Corrupt, ChecksumMismatch),
    Case("read corrupted always", "get", "read", Corrupt, ChecksumMismatch, times=None),
    Case("read corrupted after 1 MiB", "get", "read", Corrupt, ChecksumMismatch, after_bytes=1 << 20),
    Case("read cut short forever", "get", "read", Eof, SizeMismatch, times=None),
    Case("ranged read cut short forever", "range", "read", Eof, SizeMismatch, times=None),
    Case("write EIO", "add", "write", lambda: Raise.os_error(errno.EIO), BackendError),
    Case("write EIO after 1 MiB", "add", "write", lambda: Raise.os_error(errno.EIO), BackendError,
         after_bytes=1 << 20),
    Case("write ENOSPC", "add", "write", lambda: Raise.os_error(errno.ENOSPC), NoSpace),
    Case("write EDQUOT", "add", "write", lambda: Raise.os_error(errno.EDQUOT), NoSpace),
    Case("write EACCES", "add", "write", lambda: Raise.os_error(errno.EACCES), PermissionDenied),
    Case("write transient", "add", "write", _transient, BackendUnavailable),
    Case("write driver bug", "add", "write", Raise.bug, BackendError),
    Case("commit transient", "add", "commit", _transient, BackendUnavailable),
    Case("commit EIO", "add", "commit", lambda: Raise.os_error(errno.EIO), BackendError),
    Case("open_writer transient forever", "add", "open_writer", _transient, BackendUnavailable, times=None),
    Case("clone transient", "clone", "clone", _transient, BackendUnavailable),
    Case("clone EIO", "clone", "clone", lambda: Raise.os_error(errno.EIO), BackendError),
    Case("delete EROFS", "delete", "delete", lambda: Raise.os_error(errno.EROFS), BackendError),
    Case("delete driver bug", "delete", "delete", Raise.bug, BackendError),
    Case("stat EIO", "get", "stat", lambda: Raise.os_error(errno.EIO), BackendError),
)


class _Run:
    """State of one fault run: the stores, the reference images and the tallies."""

    def __init__(self, backend: Backend, prefix: str, size: int) -> None:
        self.backend = backend
        self.prefix = prefix
        self.images = backend.open("images", **SETTINGS)
        self.vms = backend.open("vms", **SETTINGS)
        self.size = size
        self.data = payload(size, 4242)
        self.ref = f"{prefix}-ref"
        self.images.add(self.ref, chunks(self.data, 256 << 10), size)
        self.outcomes: Counter[str] = Counter()
        self.injected: Counter[str] = Counter()
        self.violations: list[str] = []
        self.serial = 0

    def close(self) -> None:
        for store in (self.vms, self.images):
            for name in (self.ref,):
                try:
                    store.delete(name)
                except ImageStoreError:
                    pass
            store.close()

    def _new_id(self) -> str:
        self.serial += 1
        return f"{self.prefix}-n{self.serial}"

    def operation(self, case: Case, new: str) -> Callable[[], object]:
        images, vms = self.images, self.vms
        if case.op == "get":
            return lambda: _check_bytes(images.get(self.ref), self.data)
        if case.op == "range":
            offset, length = self.size // 3, self.size // 2
            return lambda: _check_bytes(images.get(self.ref, offset, length, verify=False),
                                        self.data[offset:offset + length])
        if case.op == "add":
            return lambda: images.add(new, chunks(self.data, 256 << 10), self.size)
        if case.op == "clone":
            return lambda: images.clone(self.ref, vms, name=new)
        if case.op == "delete":
            images.clone(self.ref, images, name=new, mode="stream")
            return lambda: images.delete(new)
        if case.op == "sweep":
            return lambda: images.sweep(0)
        if case.op == "can_clone":
            return lambda: images.can_clone(self.ref, vms)
        raise ValueError(case.op)

    def run(self, case: Case, seed: int) -> str:
        new = self._new_id()
        op = self.operation(case, new)
        chaos = Chaos([Fault(case.point, case.action(), times=case.times, probability=case.probability,
                             after_bytes=case.after_bytes)], seed=seed)
        store = self.vms if case.op == "clone" and case.point == "write" else self.images
        try:
            with chaos.attached(store):
                op()
            outcome = RECOVER
        except CorruptReturned as exc:
            outcome = "corrupt_returned"
            self.violations.append(f"{case.name}: {exc}")
        except ImageStoreError as exc:
            if case.expect != RECOVER and isinstance(exc, case.expect):  # type: ignore[arg-type]
                outcome = "clear"
            elif case.expect == RECOVER and case.probability < 1.0 and isinstance(exc, BackendUnavailable):
                outcome = "clear"  # a storm may outlast the retries: then this, never wrong bytes
            else:
                outcome = "wrong_error"
                self.violations.append(f"{case.name}: expected {_name(case.expect)}, got {type(exc).__name__}: {exc}")
        except Exception as exc:  # noqa: BLE001 - counted: the contract says this never happens
            outcome = "escaped"
            self.violations.append(f"{case.name}: {type(exc).__name__} escaped: {exc}")
        if outcome == RECOVER and case.expect != RECOVER and case.times is not None and chaos.fired[case.point]:
            outcome = "wrong_error"
            self.violations.append(f"{case.name}: succeeded although {_name(case.expect)} was due")
        for action, n in chaos.summary()["by_action"].items():
            self.injected[action] += n
        self.outcomes[outcome] += 1
        if case.op in ("add", "clone") and outcome != RECOVER:
            self._nothing_left(case, new)
        elif case.op in ("add", "clone", "delete"):
            self._cleanup(new)
        return outcome

    def _nothing_left(self, case: Case, new: str) -> None:
        for store in (self.images, self.vms):
            try:
                store.stat(new)
            except NotFound:
                continue
            self.outcomes["left_behind"] += 1
            self.violations.append(f"{case.name}: {store.name}/{new} is visible after a failed {case.op}")
        temps = [str(o) for o in self.backend.objects(new) if o.kind != "image"]
        if temps:
            self.outcomes["left_behind"] += 1
            self.violations.append(f"{case.name}: left {temps}")

    def _cleanup(self, new: str) -> None:
        for store in (self.vms, self.images):
            try:
                store.delete(new)
            except ImageStoreError:
                pass


class CorruptReturned(AssertionError):
    """A read succeeded with bytes that are not the image's."""


def _check_bytes(got: bytes, want: bytes) -> bytes:
    if got != want:
        raise CorruptReturned(f"a read returned {len(got)} bytes that are not the {len(want)} stored ones")
    return got


def _name(expect: str | type[ImageStoreError]) -> str:
    return expect if isinstance(expect, str) else expect.__name__


def fault_run(backend: Backend, prefix: str, *, rounds: int = 1, seed: int = 0, size: int = (2 << 20) + 333,
              cases: tuple[Case, ...] = CASES) -> dict[str, Any]:
    """Every case ``rounds`` times (seeded order); tallies of faults injected and outcomes."""
    rng = random.Random(seed)
    run = _Run(backend, prefix, size)
    try:
        plan = [case for _ in range(rounds) for case in cases]
        rng.shuffle(plan)
        by_case: Counter[str] = Counter()
        for i, case in enumerate(plan):
            by_case[f"{case.name}: {run.run(case, seed * 100_003 + i)}"] += 1
        reference_intact = run.images.get(run.ref) == run.data
    finally:
        run.close()
    bad = ("wrong_error", "escaped", "corrupt_returned", "left_behind")
    return {
        "backend": backend.describe(),
        "cases_run": len(plan),
        "faults_injected": sum(run.injected.values()),
        "injected_by_kind": dict(sorted(run.injected.items())),
        "outcomes": dict(run.outcomes),
        "corrupt_reads_returned": run.outcomes["corrupt_returned"],
        "violations": run.violations,
        "violation_count": sum(run.outcomes[k] for k in bad),
        "reference_intact": reference_intact,
        "by_case": dict(sorted(by_case.items())),
    }
