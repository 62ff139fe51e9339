"""Prometheus metrics of the stores and the image cache, registered once on the service's registry.

Names and labels follow Prometheus' conventions (base units, ``_total`` counters); the README
lists them. Only bounded labels: store, driver, operation, outcome, retry site, refusal reason.
"""

from __future__ import annotations

from contextlib import AbstractContextManager
from typing import TYPE_CHECKING, Any

try:
    from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
except ImportError as exc:
    raise ImportError(f"metrics need prometheus_client ({exc}): pip install 'imagestore[metrics]'") from exc

from . import no_phase, refusal_reason

if TYPE_CHECKING:
    from . import Operation

__all__ = ["PrometheusMetrics"]

OP = ("store", "driver", "operation")
SECONDS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800)


class PrometheusMetrics:
    """The package's metrics on ``registry`` (an Instrumentation of :class:`~imagestore.observe.Observer`)."""

    def __init__(self, registry: CollectorRegistry) -> None:
        kw: dict[str, Any] = {"registry": registry, "namespace": "imagestore"}
        self.operations = Counter("operations", "Store operations by outcome (ok or the error class)",
                                  [*OP, "outcome"], **kw)
        self.seconds = Histogram("operation_seconds", "Duration of store operations", [*OP, "outcome"],
                                 buckets=SECONDS, **kw)
        self.bytes = Counter("operation_bytes", "Image bytes moved by successful operations", OP, **kw)
        self.in_flight = Gauge("operations_in_flight", "Store operations running now", OP, **kw)
        self.retries = Counter("retries", "Retries and read resumes by retry site", [*OP, "site"], **kw)
        self.verification = Counter("verification_failures", "Checksum verifications that failed", OP, **kw)
        self.refusals = Counter("format_refusals", "Images the format policy refused, by reason",
                                [*OP, "reason"], **kw)
        self.conflicts = Counter("create_conflicts", "Adds refused because the image id was taken", OP, **kw)
        self.cache_events = Counter("cache_events", "Image cache hits, fills and evictions", ["event"], **kw)
        self.cache_bytes_moved = Counter("cache_event_bytes", "Bytes filled into or evicted from the image cache",
                                         ["event"], **kw)
        self.cache_bytes = Gauge("cache_bytes", "Bytes the image cache's entries occupy on disk", **kw)
        self.cache_entries = Gauge("cache_entries", "Images in the image cache", **kw)

    def start(self, op: Operation) -> None:
        self.in_flight.labels(op.store, op.driver, op.operation).inc()

    def end(self, op: Operation, outcome: str, exc: BaseException | None) -> None:
        self.in_flight.labels(op.store, op.driver, op.operation).dec()
        labels = (op.store, op.driver, op.final)
        self.operations.labels(*labels, outcome).inc()
        self.seconds.labels(*labels, outcome).observe(op.seconds)
        if exc is None:
            if op.size:
                self.bytes.labels(*labels).inc(op.size)
            return
        reason = refusal_reason(exc)
        if reason == "checksum":
            self.verification.labels(*labels).inc()
        elif reason == "conflict":
            self.conflicts.labels(*labels).inc()
        elif reason is not None:
            self.refusals.labels(*labels, reason.removeprefix("format:")).inc()

    def retry(self, op: Operation, site: str) -> None:
        self.retries.labels(op.store, op.driver, op.operation, site).inc()

    def phase(self, op: Operation, name: str) -> AbstractContextManager[Any]:
        return no_phase()

    def cache_event(self, event: str, size: int | None) -> None:
        self.cache_events.labels(event).inc()
        if size:
            self.cache_bytes_moved.labels(event).inc(size)

    def cache_size(self, nbytes: int, entries: int) -> None:
        self.cache_bytes.set(nbytes)
        self.cache_entries.set(entries)
