"""Metrics and traces of every store operation, written once at the facade.

A :class:`Store` reports each public operation to its :class:`Observer`: Prometheus metrics
on the registry the embedding service passes (:mod:`.prometheus`) and OpenTelemetry spans
from its tracer provider (:mod:`.otel`). The default, :data:`NULL`, reports nothing and costs
nothing: neither ``prometheus_client`` nor ``opentelemetry`` is imported and nothing is timed.
Labels and attributes are the store, its driver (scheme), the operation and the outcome,
never an image id, a location or a secret.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Mapping, Sequence
from contextlib import AbstractContextManager, nullcontext
from contextvars import ContextVar
from typing import Any, Protocol

from ..errors import AlreadyExists, ChecksumMismatch, UnsafeImage
from ..spi.retry import retry_listener
from ..spi.trace import NOTHING, PhaseSpan, phase_tracer

__all__ = ["NULL", "Instrumentation", "Observer", "Operation", "phase", "refusal_reason"]

_CURRENT: ContextVar[Operation | None] = ContextVar("imagestore_operation", default=None)
_NO_PHASE: AbstractContextManager[None] = nullcontext()


class Instrumentation(Protocol):
    """One sink of the observer (Prometheus, OpenTelemetry): told when an operation starts and ends,
    of retries, of cache events; ``labels`` are (store, driver, operation). A sink that traces
    phases also has ``begin(op, name, attributes) -> PhaseSpan | None`` (optional: looked up)."""

    def start(self, op: Operation) -> None: ...
    def end(self, op: Operation, outcome: str, exc: BaseException | None) -> None: ...
    def retry(self, op: Operation, site: str) -> None: ...
    def phase(self, op: Operation, name: str) -> AbstractContextManager[Any]: ...
    def cache_event(self, event: str, size: int | None) -> None: ...
    def cache_size(self, nbytes: int, entries: int) -> None: ...


class Operation:
    """One running operation of one store: its labels, start time, bytes and sink state (a span)."""

    __slots__ = ("observer", "store", "driver", "operation", "started", "size", "spans", "final", "detached",
                 "_token")

    def __init__(self, observer: Observer, store: str, driver: str, operation: str) -> None:
        self.observer, self.store, self.driver, self.operation = observer, store, driver, operation
        self.final = operation
        """The operation's label once it is done (a clone becomes ``clone_cow``, ``clone_stream``...)."""
        self.size: int | None = None
        self.spans: dict[str, Any] = {}
        self.started = 0.0
        self.detached = False
        """Started with :meth:`start_detached`: not the current operation of the thread that started it."""

    def __enter__(self) -> Operation:
        self._token = (_CURRENT.set(self), retry_listener.set(self.retried), phase_tracer.set(self))
        self.started = time.perf_counter()
        for sink in self.observer.sinks:
            sink.start(self)
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: object) -> None:
        outcome = "ok" if exc is None else type(exc).__name__
        try:
            for sink in self.observer.sinks:
                sink.end(self, outcome, exc)
        finally:
            phase_tracer.reset(self._token[2])
            retry_listener.reset(self._token[1])
            _CURRENT.reset(self._token[0])

    def start_detached(self) -> Operation:
        """Start without becoming the thread's current operation: for a stream that outlives the call
        that opened it (a reader), ended by :meth:`ended` from wherever the stream ends."""
        self.detached = True
        self.started = time.perf_counter()
        for sink in self.observer.sinks:
            sink.start(self)
        return self

    def ended(self, exc: BaseException | None, nbytes: int) -> None:
        """The detached operation is over: ``exc`` None when it succeeded, having moved ``nbytes``."""
        if exc is None:
            self.size = nbytes
        outcome = "ok" if exc is None else type(exc).__name__
        for sink in self.observer.sinks:
            sink.end(self, outcome, exc)

    @property
    def seconds(self) -> float:
        """Seconds since the operation started."""
        return time.perf_counter() - self.started

    def begin(self, name: str, attributes: Mapping[str, int | str]) -> PhaseSpan:
        """A phase a driver or the part uploader marks (``part``, ``claim``...): a span of each
        sink that traces phases (see :mod:`imagestore.spi.trace`)."""
        spans = [span for sink in self.observer.sinks
                 if (begin := getattr(sink, "begin", None)) is not None
                 and (span := begin(self, name, attributes)) is not None]
        if not spans:
            return NOTHING
        return spans[0] if len(spans) == 1 else _Spans(spans)

    def retried(self, site: str) -> None:
        """A retry (or a resume, site ``read-resume``) at ``site`` happened within this operation."""
        for sink in self.observer.sinks:
            sink.retry(self, site)


class _Spans:
    """The spans of several sinks for one phase, ended together."""

    __slots__ = ("_spans",)

    def __init__(self, spans: list[PhaseSpan]) -> None:
        self._spans = spans

    def end(self, exc: BaseException | None = None) -> None:
        for span in self._spans:
            span.end(exc)


class Observer:
    """Where stores (and an image cache) report: Prometheus metrics on ``registry`` and
    OpenTelemetry spans from ``tracer_provider``; each is off when None.

    ``sinks`` adds instrumentations of the service's own. Pass one Observer to ``Stores(config,
    observer=...)``, ``Store(driver, settings, observer=...)`` or ``ImageCache(..., observer=...)``;
    one Observer per registry (its metrics are registered once). :meth:`default` uses prometheus_client's default
    registry and OpenTelemetry's global tracer provider, for whichever is installed.
    """

    def __init__(self, *, registry: Any = None, tracer_provider: Any = None,
                 sinks: Sequence[Instrumentation] = ()) -> None:
        own: list[Instrumentation] = list(sinks)  # a service's own (a StatsD client...), besides these two
        if registry is not None:
            from .prometheus import PrometheusMetrics  # imported only when asked for
            own.append(PrometheusMetrics(registry))
        if tracer_provider is not None:
            from .otel import Tracing
            own.append(Tracing(tracer_provider))
        self.sinks: tuple[Instrumentation, ...] = tuple(own)
        self.enabled = bool(own)

    @classmethod
    def default(cls) -> Observer:
        """Metrics on prometheus_client's default registry and spans from OpenTelemetry's global
        tracer provider, each only when its package is installed; the same Observer every time
        (a registry takes the package's metrics once)."""
        return _default()

    @classmethod
    def _make_default(cls) -> Observer:
        registry = provider = None
        try:
            import prometheus_client
            registry = prometheus_client.REGISTRY
        except ImportError:
            pass
        try:
            from opentelemetry import trace
            provider = trace.get_tracer_provider()
        except ImportError:
            pass
        return cls(registry=registry, tracer_provider=provider)

    def __repr__(self) -> str:
        return f"<Observer {[type(s).__name__ for s in self.sinks]}>"

    def operation(self, store: str, driver: str, operation: str) -> Operation:
        """A context manager around one operation: counted, timed, traced; the retries anywhere in
        the package (the one retry loop) while it runs count for it."""
        return Operation(self, store, driver, operation)

    def cache_event(self, event: str, size: int | None = None) -> None:
        """An image cache's ``hit``, ``fill`` (with its bytes) or ``evict`` (with the bytes freed)."""
        for sink in self.sinks:
            sink.cache_event(event, size)

    def cache_size(self, nbytes: int, entries: int) -> None:
        """The image cache's bytes on disk and entries, after a fill or an eviction."""
        for sink in self.sinks:
            sink.cache_size(nbytes, entries)


@functools.cache
def _default() -> Observer:
    """The process's one default Observer, made when first asked for."""
    return Observer._make_default()


NULL = Observer()
"""The observer of a store nobody observes: no sink, no cost."""


def phase(name: str) -> AbstractContextManager[Any]:
    """A child span ``name`` (``open_writer``, ``write``, ``commit``...) of the running operation
    when it is traced; otherwise nothing."""
    op = _CURRENT.get()
    if op is None or not op.observer.enabled:
        return _NO_PHASE
    for sink in op.observer.sinks:
        ctx = sink.phase(op, name)
        if ctx is not _NO_PHASE:
            return ctx
    return _NO_PHASE


def no_phase() -> AbstractContextManager[None]:
    """The context manager of a sink that traces no phases."""
    return _NO_PHASE


def refusal_reason(exc: BaseException) -> str | None:
    """What a failure says about the pipeline's checks, as a bounded label: ``checksum`` (a
    verification failed), ``conflict`` (the id was taken), ``format:<why>`` (the format
    policy refused), else None."""
    if isinstance(exc, ChecksumMismatch):
        return "checksum"
    if isinstance(exc, AlreadyExists):
        return "conflict"
    if isinstance(exc, UnsafeImage):
        return "format:" + _why(exc)
    return None


def _why(exc: UnsafeImage) -> str:
    """A fixed word for the first reason of a format refusal (its text may name a file: never a label)."""
    text = exc.reasons[0].lower() if exc.reasons else ""
    for word, label in (("polyglot", "polyglot"), ("could not be determined", "unknown_format"),
                        ("is not allowed", "format_not_allowed"), ("declared", "declared_mismatch"),
                        ("backing", "backing_file"), ("data file", "data_file"), ("clones raw", "not_raw"),
                        ("partition", "partition_table"), ("encrypt", "encrypted")):
        if word in text:
            return label
    return "other"
