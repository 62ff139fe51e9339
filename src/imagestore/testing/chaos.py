"""Driver-level fault injection: make chosen driver calls fail, stall, lie or kill the process.

A :class:`Chaos` holds :class:`Fault` rules and is attached to a store (or a bare
driver). Attaching instruments that driver *instance* in place, so the driver
keeps its class (native-clone planning between two stores still sees two file or
two rbd drivers) and every call the facade makes goes through the rules; the
writers and readers the driver returns are wrapped the same way::

    chaos = Chaos(seed=7)
    chaos.add(Fault("read", Raise.transient(), calls={2}))         # the 2nd read fails once
    chaos.add(Fault("write", Kill(), after_bytes=3 << 20))         # SIGKILL after exactly 3 MiB
    chaos.add(Fault("stat", Stall(0.5), probability=0.1))          # seeded: same run, same stalls
    with chaos.attached(store):
        ...
    chaos.calls["read"], chaos.fired["read"], chaos.log

Points are the driver calls: ``open_writer``, ``open_reader``, ``stat``, ``delete``,
``locate``, ``plan_clone``, ``clone``, ``sweep``, ``free_space``, ``clone_depth``,
``flatten``, ``adopt``; of a writer ``write``, ``commit``, ``abort``; of a reader
``read`` and ``close``. Actions: :class:`Raise` (``Transient``, an ``OSError`` with an
errno, a driver bug), :class:`Stall`, :class:`Kill` (SIGKILL: nothing runs after it; only
in a child started for it, whose parent put :func:`killable_env` in its environment),
a :class:`Call` (another client's action placed where a race would
put it), and for reads :class:`Corrupt` (one byte flipped) and :class:`Eof` (the stream ends
early). With ``when="after"`` the real call happens first (a commit that published
but whose caller never learned it). Decisions are deterministic for a given seed and
sequence of calls: the only randomness is ``random.Random(seed)``.
"""

from __future__ import annotations

import errno as _errno
import os
import random
import signal
import threading
import time
from collections import Counter
from collections.abc import Callable, Collection, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Literal

from ..errors import Transient
from ..store.tables import is_companion

__all__ = [
    "DRIVER_POINTS",
    "POINTS",
    "READER_POINTS",
    "WRITER_POINTS",
    "Action",
    "Call",
    "Chaos",
    "Corrupt",
    "Eof",
    "Fault",
    "KILLABLE_ENV",
    "Kill",
    "Raise",
    "Stall",
    "killable_env",
    "may_kill_self",
    "require_killable",
]

DRIVER_POINTS = ("open_writer", "open_reader", "stat", "delete", "locate", "plan_clone", "clone", "sweep",
                 "free_space", "clone_depth", "flatten", "adopt")
WRITER_POINTS = ("write", "commit", "abort")
READER_POINTS = ("read", "close")
POINTS = (*DRIVER_POINTS, *WRITER_POINTS, *READER_POINTS)
When = Literal["before", "after"]


class Action:
    """What a fault does when it fires; ``name`` is what the log and the figures call it."""

    @property
    def name(self) -> str:
        """The action's kind: its class name in lower case."""
        return type(self).__name__.lower()

    def before(self, chaos: Chaos, point: str) -> None:
        """Run in place of (or ahead of) the real call; raising stops the call."""

    def alter(self, chaos: Chaos, data: bytes) -> bytes:
        """For reads: the bytes the caller gets instead of ``data``."""
        return data


@dataclass(frozen=True)
class Raise(Action):
    """Raise ``make()``: what a backend's failure looks like to the facade."""

    make: Callable[[], BaseException]
    label: str = "raise"

    @property
    def name(self) -> str:
        """The error's kind: ``transient``, ``eio``, ``enospc``, ``bug``..."""
        return self.label

    def before(self, chaos: Chaos, point: str) -> None:
        raise self.make()

    @classmethod
    def transient(cls) -> Raise:
        """A retryable fault (timeout, connection reset, 503)."""
        return cls(lambda: Transient("injected: connection timed out"), "transient")

    @classmethod
    def os_error(cls, code: int) -> Raise:
        """An ``OSError`` with ``code`` (``errno.EIO``, ``errno.ENOSPC``...)."""
        return cls(lambda: OSError(code, os.strerror(code)), _errno.errorcode.get(code, str(code)).lower())

    @classmethod
    def bug(cls) -> Raise:
        """An exception no driver should raise: the facade must still translate it."""
        return cls(lambda: RuntimeError("injected: a driver bug"), "bug")


@dataclass(frozen=True)
class Stall(Action):
    """Sleep ``seconds``, then let the call through (a slow backend, not a failing one)."""

    seconds: float
    def before(self, chaos: Chaos, point: str) -> None:
        time.sleep(self.seconds)


KILLABLE_ENV = "IMAGESTORE_CHAOS_KILLABLE"
"""Set by a parent to its own PID in the environment of a child it starts to be killed."""


def killable_env() -> dict[str, str]:
    """The environment entry that lets :class:`Kill` end a child this process starts, and no other."""
    return {KILLABLE_ENV: str(os.getpid())}


def may_kill_self() -> bool:
    """Whether this process is a child started to be killed: its parent named itself in
    :data:`KILLABLE_ENV` (a grandchild, or the parent itself, is not)."""
    return os.environ.get(KILLABLE_ENV) == str(os.getppid())


def require_killable() -> None:
    """RuntimeError unless :func:`may_kill_self`: a crash is simulated only in a disposable child."""
    if not may_kill_self():
        raise RuntimeError("Kill SIGKILLs the process it runs in: run it in a child started for it, with "
                           "imagestore.testing.chaos.killable_env() in that child's environment "
                           "(imagestore.testing.crash does)")


@dataclass(frozen=True)
class Kill(Action):
    """SIGKILL this process: no cleanup, no ``finally``, exactly what a crash leaves.

    Only in a child whose parent started it to be killed (:func:`killable_env`): elsewhere
    :meth:`Chaos.attach` refuses a rule with it, and it raises instead of killing."""

    def before(self, chaos: Chaos, point: str) -> None:
        require_killable()
        if chaos.on_kill is not None:
            chaos.on_kill(point)
        os.kill(os.getpid(), signal.SIGKILL)
        time.sleep(60)  # pragma: no cover - the signal is not deliverable to this thread yet


@dataclass(frozen=True)
class Call(Action):
    """Run ``fn()`` at the point, then let the call through: a concurrent client's action
    (a delete, a second add) placed exactly where a race would put it."""

    fn: Callable[[], object]

    def before(self, chaos: Chaos, point: str) -> None:
        self.fn()


@dataclass(frozen=True)
class Corrupt(Action):
    """Flip one bit of the bytes a read returns (which byte: seeded)."""

    def alter(self, chaos: Chaos, data: bytes) -> bytes:
        if not data:
            return data
        out = bytearray(data)
        at = chaos.rng_randrange(len(out))
        out[at] ^= 1 << chaos.rng_randrange(8)
        return bytes(out)


@dataclass(frozen=True)
class Eof(Action):
    """The read returns ``b""``: the backend's stream ended before the image did."""

    def alter(self, chaos: Chaos, data: bytes) -> bytes:
        return b""


@dataclass
class Fault:
    """One rule: at ``point``, apply ``action`` to the calls it matches.

    A call matches when its 1-based number at that point is in ``calls`` (None:
    any), the bytes already passed through that point (writes, reads) reach
    ``after_bytes`` (None: no condition), the rule has fired fewer than ``times``
    times (None: no limit) and a seeded draw is below ``probability``. A write or
    read that crosses ``after_bytes`` is split there: the bytes before pass untouched.
    """

    point: str
    action: Action
    calls: Collection[int] | None = None
    probability: float = 1.0
    times: int | None = None
    after_bytes: int | None = None
    when: When = "before"
    fired: int = field(default=0, init=False)

    def __post_init__(self) -> None:
        if self.point not in POINTS:
            raise ValueError(f"unknown fault point {self.point!r}; points: {', '.join(POINTS)}")
        if not 0.0 <= self.probability <= 1.0:
            raise ValueError("probability must be between 0 and 1")
        if self.after_bytes is not None and self.point not in ("write", "read"):
            raise ValueError("after_bytes applies to write and read only")
        if isinstance(self.action, (Corrupt, Eof)) and self.point != "read":
            raise ValueError(f"{self.action.name} applies to read only")
        if self.when == "after" and isinstance(self.action, (Corrupt, Eof)):
            raise ValueError("corrupt and eof alter what a read returns: use when='before'")


class Chaos:
    """Fault rules, their counters, and the drivers they are attached to.

    ``calls`` counts every call per point, ``fired`` the faults applied per point,
    ``log`` lists ``(point, call number, action name)`` in order; ``bytes`` counts
    the bytes through ``write`` and ``read``. ``on_kill`` runs just before a
    :class:`Kill` (the crash harness records where it struck). Thread-safe.

    The store's block tables (companion objects beside its images) pass by the rules and the
    counters unless ``tables`` is True, so that a rule's call numbers count image calls only.
    """

    def __init__(self, faults: Collection[Fault] = (), *, seed: int = 0, tables: bool = False) -> None:
        self.faults: list[Fault] = list(faults)
        self.seed = seed
        self.tables = tables
        self._rng = random.Random(seed)
        self._lock = threading.RLock()
        self.calls: Counter[str] = Counter()
        self.fired: Counter[str] = Counter()
        self.bytes: Counter[str] = Counter()
        self.log: list[tuple[str, int, str]] = []
        self.on_kill: Callable[[str], None] | None = None
        self._attached: list[tuple[Any, list[str]]] = []

    # ------------------------------------------------------------ rules
    def add(self, fault: Fault) -> Fault:
        """Add a rule (rules are tried in the order they were added); returns it."""
        if isinstance(fault.action, Kill) and self._attached:
            require_killable()
        with self._lock:
            self.faults.append(fault)
        return fault

    def clear(self) -> None:
        """Remove every rule (counters stay)."""
        with self._lock:
            self.faults.clear()

    def rng_randrange(self, n: int) -> int:
        """A seeded draw in ``range(n)`` (for actions that pick a byte)."""
        with self._lock:
            return self._rng.randrange(n)

    def _match(self, point: str, when: When, number: int, size: int = 0) -> tuple[Fault | None, int]:
        """The first rule that fires for this call, and how many leading bytes pass untouched."""
        done = self.bytes[point]
        for fault in self.faults:
            if fault.point != point or fault.when != when:
                continue
            if fault.calls is not None and number not in fault.calls:
                continue
            if fault.times is not None and fault.fired >= fault.times:
                continue
            keep = 0
            if fault.after_bytes is not None:
                if done + size <= fault.after_bytes and not (size == 0 and done >= fault.after_bytes):
                    continue
                keep = max(0, fault.after_bytes - done)
            if fault.probability < 1.0 and self._rng.random() >= fault.probability:
                continue
            return fault, keep
        return None, 0

    def _fire(self, fault: Fault, point: str, number: int) -> None:
        fault.fired += 1
        self.fired[point] += 1
        self.log.append((point, number, fault.action.name))

    def call(self, point: str, real: Callable[..., Any], *args: Any, **kw: Any) -> Any:
        """Run ``real(*args, **kw)`` as call ``point``, applying the matching rules."""
        with self._lock:
            self.calls[point] += 1
            number = self.calls[point]
            fault, _ = self._match(point, "before", number)
            if fault is not None:
                self._fire(fault, point, number)
        if fault is not None:
            fault.action.before(self, point)
        result = real(*args, **kw)
        with self._lock:
            late, _ = self._match(point, "after", number)
            if late is not None:
                self._fire(late, point, number)
        if late is not None:
            late.action.before(self, point)
        return result

    def write(self, real: Callable[[memoryview], None], data: memoryview) -> None:
        """A writer's ``write``: split at a rule's ``after_bytes``, then apply it."""
        view = memoryview(data)
        with self._lock:
            self.calls["write"] += 1
            number = self.calls["write"]
            fault, keep = self._match("write", "before", number, len(view))
            if fault is not None:
                self._fire(fault, "write", number)
        if fault is not None and keep:
            head, view = view[:keep], view[keep:]
            real(head)
            with self._lock:
                self.bytes["write"] += len(head)
        if fault is not None:
            fault.action.before(self, "write")
        if view:
            real(view)
        with self._lock:
            self.bytes["write"] += len(view)
            late, _ = self._match("write", "after", number)
            if late is not None:
                self._fire(late, "write", number)
        if late is not None:
            late.action.before(self, "write")

    def read(self, real: Callable[[int], bytes], n: int) -> bytes:
        """A reader's ``read``: a read crossing a rule's ``after_bytes`` stops there; the
        next read is the one the rule applies to."""
        with self._lock:
            self.calls["read"] += 1
            number = self.calls["read"]
            done = self.bytes["read"]
            cut = [f.after_bytes - done for f in self.faults
                   if f.point == "read" and f.after_bytes is not None and f.after_bytes > done
                   and (f.times is None or f.fired < f.times)]
            limit = min([n, *cut])
            fault = None
            if limit == n:
                fault, _ = self._match("read", "before", number)
                if fault is not None:
                    self._fire(fault, "read", number)
        if fault is not None:
            fault.action.before(self, "read")
        data = real(limit)
        if fault is not None:
            data = fault.action.alter(self, data)
        with self._lock:
            self.bytes["read"] += len(data)
            late, _ = self._match("read", "after", number)
            if late is not None:
                self._fire(late, "read", number)
        if late is not None:
            late.action.before(self, "read")
        return data

    # ------------------------------------------------------------ attaching
    def attach(self, target: Any) -> Chaos:
        """Instrument a Store's driver (or a Driver) in place; returns self. A :class:`Kill` rule
        is refused (RuntimeError) outside a child started to be killed."""
        if any(isinstance(f.action, Kill) for f in self.faults):
            require_killable()
        driver = getattr(target, "_driver", target)
        patched: list[str] = []
        for point in DRIVER_POINTS:
            real = getattr(driver, point, None)
            if real is None:
                continue
            if point == "open_writer":
                wrapped = self._opener(real, _Writer)
            elif point == "open_reader":
                wrapped = self._opener(real, _Reader)
            else:
                wrapped = self._plain(point, real)
            setattr(driver, point, wrapped)
            patched.append(point)
        with self._lock:
            self._attached.append((driver, patched))
        return self

    def _passes_by(self, args: tuple[Any, ...]) -> bool:
        """Whether a driver call is block-table I/O that the rules do not see."""
        if self.tables or not args:
            return False
        name = args[0] if isinstance(args[0], str) else getattr(args[0], "image", None)
        return isinstance(name, str) and is_companion(name)

    def _plain(self, point: str, real: Callable[..., Any]) -> Callable[..., Any]:
        def wrapped(*args: Any, **kw: Any) -> Any:
            if self._passes_by(args):
                return real(*args, **kw)
            return self.call(point, real, *args, **kw)

        return wrapped

    def _opener(self, real: Callable[..., Any], proxy: type[_Writer] | type[_Reader]) -> Callable[..., Any]:
        point = "open_writer" if proxy is _Writer else "open_reader"

        def wrapped(*args: Any, **kw: Any) -> Any:
            if self._passes_by(args):
                return real(*args, **kw)
            return proxy(self, self.call(point, real, *args, **kw))

        return wrapped

    def detach(self) -> None:
        """Undo every :meth:`attach`: the drivers' own methods are used again."""
        with self._lock:
            attached, self._attached = self._attached, []
        for driver, names in attached:
            for name in names:
                driver.__dict__.pop(name, None)

    @contextmanager
    def attached(self, *targets: Any) -> Iterator[Chaos]:
        """Attach to ``targets`` for the ``with`` block."""
        for target in targets:
            self.attach(target)
        try:
            yield self
        finally:
            self.detach()

    def summary(self) -> dict[str, Any]:
        """Counters as plain data (for reports)."""
        with self._lock:
            kinds = Counter(action for _, _, action in self.log)
            return {"calls": dict(self.calls), "fired": dict(self.fired), "by_action": dict(kinds),
                    "bytes": dict(self.bytes)}


class _Writer:
    """A driver's writer whose calls go through the chaos rules (other attributes pass through)."""

    def __init__(self, chaos: Chaos, inner: Any) -> None:
        self._chaos = chaos
        self._inner = inner

    def write(self, data: memoryview) -> None:
        self._chaos.write(self._inner.write, data)

    def commit(self, metadata: Any) -> Any:
        return self._chaos.call("commit", self._inner.commit, metadata)

    def abort(self) -> None:
        self._chaos.call("abort", self._inner.abort)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)


class _Reader:
    """A driver's reader whose calls go through the chaos rules."""

    def __init__(self, chaos: Chaos, inner: Any) -> None:
        self._chaos = chaos
        self._inner = inner

    def read(self, n: int) -> bytes:
        return self._chaos.read(self._inner.read, n)

    def close(self) -> None:
        self._chaos.call("close", self._inner.close)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)
