"""Fixtures of the observe tests: a real Prometheus registry, an in-memory OpenTelemetry exporter,
and the hardening tests' backends (file, rbd, s3 on moto, swift) for stores to observe."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from prometheus_client import CollectorRegistry

from imagestore.observe import Observer
from tests.hardening.conftest import file_backend, moto_backend, prefix, rbd_backend, swift_backend

__all__ = ["Watched", "file_backend", "moto_backend", "prefix", "rbd_backend", "swift_backend"]


@dataclass
class Watched:
    """An observer and what it reported: the registry's samples and the finished spans."""

    observer: Observer
    registry: CollectorRegistry
    exporter: InMemorySpanExporter

    def value(self, name: str, **labels: str) -> float:
        """A sample's value (0 when it was never reported)."""
        return self.registry.get_sample_value(name, labels) or 0.0

    def samples(self, prefix: str = "imagestore_") -> list[Any]:
        return [s for m in self.registry.collect() for s in m.samples if s.name.startswith(prefix)]

    def spans(self, name: str | None = None) -> list[ReadableSpan]:
        return [s for s in self.exporter.get_finished_spans() if name is None or s.name == name]

    def texts(self) -> list[str]:
        """Every label value and span attribute, name and event reported: what must never carry an
        image id, a location, a query or a secret."""
        out = [str(v) for s in self.samples() for v in s.labels.values()]
        for span in self.spans():
            out.append(span.name)
            out += [str(v) for v in (span.attributes or {}).values()]
            out += [str(span.status.description or "")]
            for event in span.events:
                out.append(event.name)
                out += [str(v) for v in (event.attributes or {}).values()]
        return out


@pytest.fixture
def watched() -> Iterator[Watched]:
    registry = CollectorRegistry()
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    yield Watched(Observer(registry=registry, tracer_provider=provider), registry, exporter)
    provider.shutdown()
