"""The observer on memory and file stores and on the image cache: nil cost when nobody observes,
format refusals by reason, atomic-create conflicts, ranged reads, cache fills, hits and
evictions; never an image id or a path in a label or attribute."""

from __future__ import annotations

import io
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import imagestore.observe
from imagestore import ImageCache, Stores
from imagestore.errors import AlreadyExists, UnsafeImage
from imagestore.observe import NULL, Observer

from .conftest import Watched


def test_with_nobody_observing_neither_package_is_imported(tmp_path: Path) -> None:
    code = textwrap.dedent(f"""
        import io, sys
        import imagestore
        store = imagestore.Stores({{"stores": {{"f": {{"driver": "file", "root": {str(tmp_path)!r}}}}}}})["f"]
        store.add("one", io.BytesIO(b"x" * 1000), 1000)
        assert store.get("one") == b"x" * 1000
        print(sorted(m for m in sys.modules if m.startswith(("prometheus_client", "opentelemetry"))))
    """)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_with_nobody_observing_nothing_is_timed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    class NoClock:
        def perf_counter(self) -> float:
            raise AssertionError("an unobserved store read the clock")

    monkeypatch.setattr(imagestore.observe, "time", NoClock())
    store = Stores({"stores": {"f": {"driver": "file", "root": str(tmp_path)}}})["f"]
    assert store.observer is NULL and not NULL.enabled
    store.add("one", io.BytesIO(b"x" * 10), 10)
    assert store.get("one") == b"x" * 10


def test_an_observer_without_a_registry_or_a_tracer_is_off() -> None:
    assert not Observer().enabled
    assert Observer().sinks == ()


def test_a_format_refusal_is_counted_by_reason_never_by_its_text(tmp_path: Path, watched: Watched) -> None:
    if shutil.which("qemu-img") is None:
        pytest.fail("qemu-img is missing: apt install qemu-utils", pytrace=False)
    path = tmp_path / "evil.qcow2"
    subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", "-u", "-b", "/etc/passwd", "-F", "raw", str(path),
                    "1M"], check=True)
    data = path.read_bytes()
    store = Stores({"stores": {"m": {"driver": "memory"}}}, observer=watched.observer)["m"]
    with pytest.raises(UnsafeImage) as raised:
        store.add("evil-image", io.BytesIO(data), len(data))
    assert "/etc/passwd" in str(raised.value)  # the text names the backing file: never a label
    refusals = [(s.labels["reason"], s.value) for s in watched.samples("imagestore_format_refusals_total")]
    assert refusals == [("backing_file", 1.0)]
    assert watched.value("imagestore_operations_total", store="m", driver="memory", operation="add",
                         outcome="UnsafeImage") == 1
    assert not [t for t in watched.texts() if "/etc/passwd" in t or "evil-image" in t]


def test_an_add_of_a_taken_id_is_a_create_conflict(tmp_path: Path, watched: Watched) -> None:
    store = Stores({"stores": {"f": {"driver": "file", "root": str(tmp_path)}}}, observer=watched.observer)["f"]
    store.add("taken", io.BytesIO(b"a"), 1)
    with pytest.raises(AlreadyExists):
        store.add("taken", io.BytesIO(b"b"), 1)
    assert watched.value("imagestore_create_conflicts_total", store="f", driver="file", operation="add") == 1
    assert watched.value("imagestore_operations_total", store="f", driver="file", operation="add",
                         outcome="AlreadyExists") == 1
    (span,) = [s for s in watched.spans("imagestore.add") if s.attributes["imagestore.outcome"] != "ok"]
    assert span.attributes["imagestore.refusal"] == "conflict"
    assert span.status.description == "AlreadyExists"  # the class, not the message naming the image


def test_a_ranged_read_is_its_own_operation(tmp_path: Path, watched: Watched) -> None:
    store = Stores({"stores": {"f": {"driver": "file", "root": str(tmp_path)}}}, observer=watched.observer)["f"]
    store.add("img", io.BytesIO(b"0123456789"), 10)
    assert store.get("img", 2, 3, verify=False) == b"234"
    assert store.get("img", offset=5, verify=False) == b"56789"
    assert watched.value("imagestore_operations_total", store="f", driver="file", operation="get_range",
                         outcome="ok") == 2
    assert watched.value("imagestore_operation_bytes_total", store="f", driver="file", operation="get_range") == 8
    assert watched.value("imagestore_operations_total", store="f", driver="file", operation="get",
                         outcome="ok") == 0


def test_the_cache_reports_fills_hits_evictions_and_its_size(tmp_path: Path, watched: Watched) -> None:
    stores = Stores({"stores": {"m": {"driver": "memory"}}}, observer=watched.observer)
    data = b"z" * 5000
    stores["m"].add("img", io.BytesIO(data), len(data))
    cache = ImageCache(tmp_path / "cache", store=stores)  # reports through the stores' observer
    path = cache.fetch("img")
    assert cache.fetch("img") == path
    v = watched.value
    assert v("imagestore_operations_total", store="m", driver="memory", operation="cache_fill", outcome="ok") == 1
    assert v("imagestore_operations_total", store="m", driver="memory", operation="cache_hit", outcome="ok") == 1
    assert v("imagestore_cache_events_total", event="fill") == 1
    assert v("imagestore_cache_events_total", event="hit") == 1
    assert v("imagestore_cache_event_bytes_total", event="fill") == len(data)
    assert v("imagestore_cache_entries") == 1
    assert v("imagestore_cache_bytes") == cache.total_bytes() > 0
    report = cache.evict(keys=[cache.key_of("img")])
    assert len(report.removed) == 1
    assert v("imagestore_cache_events_total", event="evict") == 1
    assert v("imagestore_cache_entries") == 0
    assert v("imagestore_cache_bytes") == 0
    assert not [t for t in watched.texts() if "img" in t.replace("imagestore", "") or str(tmp_path) in t]


def test_a_configuration_file_can_turn_the_default_observer_on(tmp_path: Path) -> None:
    config = tmp_path / "imagestore.toml"
    config.write_text(f'observe = true\n[stores.f]\ndriver = "file"\nroot = "{tmp_path / "root"}"\n')
    first, second = Stores.from_file(config), Stores.from_file(config)  # as Glance loads it, once per store
    assert first.observer is second.observer is Observer.default()
    assert first["f"].observer.enabled
    import prometheus_client

    labels = {"store": "f", "driver": "file", "operation": "add", "outcome": "ok"}
    before = prometheus_client.REGISTRY.get_sample_value("imagestore_operations_total", labels) or 0
    first["f"].add("one", io.BytesIO(b"1"), 1)
    assert prometheus_client.REGISTRY.get_sample_value("imagestore_operations_total", labels) == before + 1
    plain = tmp_path / "plain.toml"
    plain.write_text(f'[stores.f]\ndriver = "file"\nroot = "{tmp_path / "root"}"\n')
    assert Stores.from_file(plain).observer is NULL


def test_a_retry_in_a_part_thread_counts_for_the_operation_that_started_it(watched: Watched) -> None:
    from imagestore.errors import Transient
    from imagestore.spi.parts import ThreadParts
    from imagestore.spi.retry import RetryPolicy

    calls: list[int] = []

    def flaky() -> str:
        calls.append(1)
        if len(calls) == 1:
            raise Transient("a part's PUT timed out")
        return "sent"

    pool = ThreadParts(1)
    try:
        with watched.observer.operation("s", "d", "add"):
            pending = pool.run(lambda: RetryPolicy(backoff=0).run(flaky, site="part", quiet=True))
            assert pending.wait() == "sent"
    finally:
        pool.close()
    assert watched.value("imagestore_retries_total", store="s", driver="d", operation="add", site="part") == 1


def test_a_read_resumed_after_open_returned_counts_for_the_stream(watched: Watched) -> None:
    from imagestore.testing.chaos import Chaos, Fault, Raise

    store = Stores({"stores": {"m": {"driver": "memory", "retry_backoff": 0}}}, observer=watched.observer)["m"]
    store.add("img", io.BytesIO(b"r" * 3000), 3000)
    with Chaos([Fault("read", Raise.transient(), calls={1})]).attached(store), store.open("img") as reader:
        assert reader.read() == b"r" * 3000  # read by the caller, after open() returned
    labels = {"store": "m", "driver": "memory"}
    assert watched.value("imagestore_retries_total", **labels, operation="read", site="read-resume") == 1
    assert watched.value("imagestore_operations_total", **labels, operation="open", outcome="ok") == 1
    assert watched.value("imagestore_operations_total", **labels, operation="read", outcome="ok") == 1
    assert watched.value("imagestore_operation_bytes_total", **labels, operation="read") == 3000
    (opened,) = watched.spans("imagestore.open")
    assert opened.events == ()  # the open had returned: the resume belongs to the stream
    (stream,) = watched.spans("imagestore.read")
    assert [e.attributes["imagestore.site"] for e in stream.events] == ["read-resume"]
    assert stream.attributes["imagestore.outcome"] == "ok" and stream.attributes["imagestore.size"] == 3000


def test_a_streamed_read_counts_its_late_verification_failure_and_an_early_close(watched: Watched) -> None:
    from imagestore.errors import ChecksumMismatch
    from imagestore.testing.chaos import Chaos, Corrupt, Fault

    store = Stores({"stores": {"m": {"driver": "memory"}}}, observer=watched.observer)["m"]
    store.add("img", io.BytesIO(b"v" * 5000), 5000)
    with Chaos([Fault("read", Corrupt(), calls={1})]).attached(store), store.open("img") as reader:
        with pytest.raises(ChecksumMismatch):
            for _ in reader:  # the mismatch is raised after open() returned, at the stream's end
                pass
    with store.open("img") as reader:
        assert len(reader.read(100)) == 100  # then closed early
    with store.open("img", 10, 20, verify=False) as reader:
        assert reader.read() == b"v" * 20
    labels = {"store": "m", "driver": "memory"}
    v = watched.value
    assert v("imagestore_verification_failures_total", **labels, operation="read") == 1
    assert v("imagestore_operations_total", **labels, operation="read", outcome="ChecksumMismatch") == 1
    assert v("imagestore_operations_total", **labels, operation="read", outcome="ReadIncomplete") == 1
    assert v("imagestore_operations_total", **labels, operation="read_range", outcome="ok") == 1
    assert v("imagestore_operation_bytes_total", **labels, operation="read_range") == 20
    assert v("imagestore_operations_total", **labels, operation="open", outcome="ok") == 2
    assert v("imagestore_operations_total", **labels, operation="open_range", outcome="ok") == 1
    assert all(s.value == 0 for s in watched.samples("imagestore_operations_in_flight"))
    outcomes = sorted(s.attributes["imagestore.outcome"] for s in watched.spans("imagestore.read"))
    assert outcomes == ["ChecksumMismatch", "ReadIncomplete"]
