"""OpenTelemetry spans: one per store operation, children for its I/O phases (open_writer,
write, commit...). Attributes are the store, driver, operation, size and outcome; an error is
recorded by its class only (its message names the image)."""

from __future__ import annotations

import threading
from collections.abc import Mapping
from contextlib import AbstractContextManager
from typing import TYPE_CHECKING, Any

try:
    from opentelemetry import trace
    from opentelemetry.trace import Status, StatusCode
except ImportError as exc:
    raise ImportError(f"traces need opentelemetry-api ({exc}): pip install 'imagestore[tracing]'") from exc

from . import refusal_reason

if TYPE_CHECKING:
    from . import Operation

__all__ = ["Tracing"]


class Tracing:
    """Spans from ``tracer_provider`` (an Instrumentation of :class:`~imagestore.observe.Observer`)."""

    def __init__(self, tracer_provider: Any) -> None:
        self.tracer = tracer_provider.get_tracer("imagestore")

    def start(self, op: Operation) -> None:
        span = self.tracer.start_span(f"imagestore.{op.operation}", attributes={
            "imagestore.store": op.store, "imagestore.driver": op.driver, "imagestore.operation": op.operation})
        if op.detached:  # a stream's span: never the current span of the thread that opened it
            op.spans["otel"] = (span, None)
            return
        use = trace.use_span(span, end_on_exit=False, record_exception=False, set_status_on_exception=False)
        use.__enter__()
        op.spans["otel"] = (span, use)

    def end(self, op: Operation, outcome: str, exc: BaseException | None) -> None:
        span, use = op.spans.pop("otel")
        try:
            span.set_attribute("imagestore.outcome", outcome)
            if op.final != op.operation:
                span.set_attribute("imagestore.operation", op.final)
            if op.size is not None:
                span.set_attribute("imagestore.size", op.size)
            if exc is not None:
                reason = refusal_reason(exc)
                if reason is not None:
                    span.set_attribute("imagestore.refusal", reason)
                span.set_status(Status(StatusCode.ERROR, outcome))
        finally:
            if use is not None:
                use.__exit__(None, None, None)
            span.end()

    def retry(self, op: Operation, site: str) -> None:
        entry = op.spans.get("otel")
        if entry is not None and entry[0].is_recording():  # a reader resumed after its open() returned
            entry[0].add_event("imagestore.retry", {"imagestore.site": site})

    def phase(self, op: Operation, name: str) -> AbstractContextManager[Any]:
        span: AbstractContextManager[Any] = self.tracer.start_as_current_span(
            f"imagestore.{op.operation}.{name}", attributes={"imagestore.store": op.store,
                                                              "imagestore.driver": op.driver},
            record_exception=False, set_status_on_exception=False)
        return span

    def begin(self, op: Operation, name: str, attributes: Mapping[str, int | str]) -> _Phase | None:
        """A child span of a phase marked by a driver or the part uploader; its parent is this
        thread's current span of the operation (a ``write`` phase) or the operation's span."""
        entry = op.spans.get("otel")
        if entry is None:
            return None
        current = trace.get_current_span()
        parent = current if current.is_recording() else entry[0]
        attrs: dict[str, int | str] = {"imagestore.store": op.store, "imagestore.driver": op.driver}
        attrs.update((f"imagestore.{key}", value) for key, value in attributes.items())
        span = self.tracer.start_span(f"imagestore.{op.operation}.{name}", context=trace.set_span_in_context(parent),
                                      attributes=attrs)
        return _Phase(span)

    def cache_event(self, event: str, size: int | None) -> None:
        span = trace.get_current_span()
        if span.is_recording():
            span.add_event(f"imagestore.cache.{event}", {} if size is None else {"imagestore.size": size})

    def cache_size(self, nbytes: int, entries: int) -> None:
        pass


class _Phase:
    """An OpenTelemetry span of one marked phase; ended once, from whichever thread reaps it."""

    __slots__ = ("_span", "_once")

    def __init__(self, span: Any) -> None:
        self._span = span
        self._once = threading.Lock()

    def end(self, exc: BaseException | None = None) -> None:
        if not self._once.acquire(blocking=False):
            return  # ended already (a failed part, then the upload's abort)
        if exc is not None:
            self._span.set_attribute("imagestore.outcome", type(exc).__name__)
            self._span.set_status(Status(StatusCode.ERROR, type(exc).__name__))
        else:
            self._span.set_attribute("imagestore.outcome", "ok")
        self._span.end()
