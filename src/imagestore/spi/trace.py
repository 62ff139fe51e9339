"""Phases inside a running operation that drivers and the shared plumbing mark (one part of a
multipart upload, a Swift create claim), without knowing who listens.

The facade's observer sets :data:`phase_tracer` while an operation runs (as it sets the
retry listener); with nobody tracing, :func:`begin` returns a no-op and costs a lookup.
A span begun in one thread may be ended in another (a part is begun when it is handed to
a worker and ended when it is reaped).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Protocol

__all__ = ["PhaseSpan", "PhaseTracer", "begin", "phase_tracer", "traced"]


class PhaseSpan(Protocol):
    """One phase begun: :meth:`end` it with the error that ended it, if any (a second end is ignored)."""

    def end(self, exc: BaseException | None = None) -> None: ...


class PhaseTracer(Protocol):
    """Who listens: begins a span ``name`` with a few bounded attributes (never an image id)."""

    def begin(self, name: str, attributes: Mapping[str, int | str]) -> PhaseSpan: ...


class _Nothing:
    __slots__ = ()

    def end(self, exc: BaseException | None = None) -> None:
        pass


NOTHING: PhaseSpan = _Nothing()
phase_tracer: ContextVar[PhaseTracer | None] = ContextVar("imagestore_phase_tracer", default=None)


def begin(name: str, **attributes: int | str) -> PhaseSpan:
    """Begin phase ``name`` of the running operation (a no-op when nobody traces)."""
    tracer = phase_tracer.get()
    return NOTHING if tracer is None else tracer.begin(name, attributes)


@contextmanager
def traced(name: str, **attributes: int | str) -> Iterator[None]:
    """Phase ``name`` around a block of this thread."""
    span = begin(name, **attributes)
    try:
        yield
    except BaseException as exc:
        span.end(exc)
        raise
    span.end()
