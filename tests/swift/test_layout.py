"""How images sit in Swift: plain objects and SLOs of their own segments, metadata headers,
and that nothing of a failed, aborted or killed upload stays once it is over (or swept)."""

from __future__ import annotations

import hashlib
import io
import json
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from imagestore import SizeMismatch
from imagestore.drivers.swift import SwiftDriver
from imagestore.testing.payloads import chunks, payload

from .area import MiB, SwiftArea


def manifest_of(area: SwiftArea, container: str, name: str) -> list[dict[str, Any]]:
    body = area.conn.get_object(container, name, query_string="multipart-manifest=get")[1]
    entries: list[dict[str, Any]] = json.loads(body)
    return entries


def test_small_image_is_one_plain_object_with_its_metadata(area: SwiftArea) -> None:
    store = area.store()
    data = payload(300_000, seed=1)
    for image, size in (("known", len(data)), ("unknown", None)):
        info = store.add(image, io.BytesIO(data), size)
        headers = area.conn.head_object(area.container(), image)
        assert "x-static-large-object" not in headers
        assert headers["etag"] == hashlib.md5(data).hexdigest()
        assert headers["x-object-meta-image-checksum.sha512"] == hashlib.sha512(data).hexdigest()
        assert headers["x-object-meta-image-format"] == "raw"
        assert headers["x-object-meta-imagestore-writer"]
        assert store.stat(image) == info
    assert area.objects(area.container() + "_segments") == []  # claims and heartbeats are gone


def test_large_image_is_an_slo_of_its_own_segments(area: SwiftArea) -> None:
    store = area.store()
    data = payload(5 * MiB + MiB // 2, seed=2)
    info = store.add("big", chunks(data, 300_001))  # unknown size
    container, segments = area.container(), area.container() + "_segments"
    headers = area.conn.head_object(container, "big")
    assert headers["x-static-large-object"] == "True"
    token = headers["x-object-meta-imagestore-writer"]
    entries = manifest_of(area, container, "big")
    assert [e["name"] for e in entries] == [f"/{segments}/big/{token}/{i:08d}" for i in range(6)]
    assert [e["bytes"] for e in entries] == [MiB] * 5 + [MiB // 2]
    for i, e in enumerate(entries):
        assert e["hash"] == hashlib.md5(data[i * MiB:(i + 1) * MiB]).hexdigest()
    assert sorted(r["name"] for r in area.objects(segments)) == [e["name"].split("/", 2)[2] for e in entries]
    assert store.get(info.location) == data
    for offset, length in ((MiB - 1, 2), (2 * MiB - 5, 2 * MiB + 10), (5 * MiB, MiB // 2)):
        assert store.get(info.location, offset, length) == data[offset:offset + length]
    assert area.leftovers() == []


def test_known_size_above_the_threshold_is_segmented(area: SwiftArea) -> None:
    store = area.store(large_object_threshold="2M")
    small, big = payload(2 * MiB, seed=3), payload(2 * MiB + 1, seed=4)
    store.add("small", small, len(small))
    store.add("big", big, len(big))
    assert "x-static-large-object" not in area.conn.head_object(area.container(), "small")
    assert [e["bytes"] for e in manifest_of(area, area.container(), "big")] == [MiB, MiB, 1]
    # an unknown-size stream that ends within its first segment is a plain object too
    store.add("short", iter([b"abc"]))
    assert "x-static-large-object" not in area.conn.head_object(area.container(), "short")


def test_abort_and_failure_remove_every_segment(area: SwiftArea) -> None:
    store = area.store()
    segments = area.container() + "_segments"

    def broken() -> Iterator[bytes]:
        yield payload(3 * MiB + 5, seed=5)
        raise ConnectionResetError("client went away")

    with pytest.raises(ConnectionResetError):
        store.add("aborted", broken())
    assert area.objects(segments) == []
    with pytest.raises(SizeMismatch):  # 4 segments were written before the stream ran past the size
        store.add("mismatch", chunks(payload(5 * MiB, seed=6), MiB), 4 * MiB + 1)
    assert area.objects(segments) == []
    assert area.objects(area.container()) == []


def _writer_process(area: SwiftArea, image: str, marker: Path, stall: str = "sleep") -> subprocess.Popen[bytes]:
    """A process adding ``image``: 3 MiB, then ``marker`` is written, then it trickles forever."""
    code = textwrap.dedent(f"""
        import imagestore, pathlib, time
        store = imagestore.open_store({area.spec()!r}, "main")
        def source():
            yield b"x" * (3 << 20)
            pathlib.Path({str(marker)!r}).write_text("1")
            while True:
                time.sleep(0.05)
                yield b"y" * 4096
        store.add({image!r}, source())
    """)
    return subprocess.Popen([sys.executable, "-c", code])


def _wait_for(marker: Path, proc: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 60
    while not marker.exists():
        assert proc.poll() is None, "the writer died before it started"
        assert time.monotonic() < deadline, "the writer never started"
        time.sleep(0.05)


def _segments_of(area: SwiftArea, image: str) -> list[str]:
    return [r["name"] for r in area.objects(area.container() + "_segments")
            if r["name"].startswith(f"{image}/") and r["name"].rsplit("/", 1)[1].isdigit()]


def test_killed_writer_is_swept_once_its_heartbeat_lapses(area: SwiftArea, tmp_path: Path) -> None:
    store = area.store()
    marker = tmp_path / "started"
    proc = _writer_process(area, "killed", marker)
    try:
        _wait_for(marker, proc)
        deadline = time.monotonic() + 30
        while len(_segments_of(area, "killed")) < 3:
            assert time.monotonic() < deadline, "no segments were written"
            time.sleep(0.1)
        proc.send_signal(signal.SIGKILL)
        proc.wait(30)
    finally:
        if proc.poll() is None:
            proc.kill()
    killed_at = time.monotonic()
    assert store.sweep(3600).removed == 0  # young: kept whatever its writer's state
    assert store.sweep(0).removed == 0  # the heartbeat still runs for up to writer_lease
    assert len(_segments_of(area, "killed")) == 3
    lease = store._driver.timing.lease  # type: ignore[attr-defined]
    expiry = _heartbeat_expiry(area, "killed")
    assert expiry is not None, "the killed writer left no heartbeat: the test proves nothing"
    while area.leftovers():
        assert time.monotonic() - killed_at < lease + 30, f"never swept: {area.leftovers()}"
        time.sleep(1)
        store.sweep(0)
    # by Swift's clock, just after the sweep that cleaned up: not before the heartbeat expired
    # (the Date is an upper bound of when that sweep ran, so a slow machine cannot fail this)
    assert _server_time(area) >= expiry - 1, "swept before the heartbeat lapsed"
    assert area.objects(area.container()) == []


def _heartbeat_expiry(area: SwiftArea, image: str) -> int | None:
    """The latest ``delete_at`` of ``image``'s writer heartbeats, as the segments listing says."""
    from imagestore.drivers.swift.claims import HEARTBEAT, parse_tag

    rows = [r for r in area.objects(area.container() + "_segments")
            if r["name"].startswith(f"{image}/") and r["name"].rpartition("/")[2] == HEARTBEAT]
    found = [int(t["delete_at"]) for t in (parse_tag(r.get("content_type", "")) for r in rows) if "delete_at" in t]
    return max(found) if found else None


def _server_time(area: SwiftArea) -> float:
    """Swift's clock now: the Date of an account HEAD (one-second resolution)."""
    from email.utils import parsedate_to_datetime

    return parsedate_to_datetime(area.conn.head_account()["date"]).timestamp()


def test_sweep_never_takes_a_live_writers_segments(area: SwiftArea) -> None:
    """A writer that stalls longer than writer_lease but is alive keeps its heartbeat: sweep(0)
    leaves its segments, and its image is whole in the end."""
    store = area.store()
    lease = store._driver.timing.lease  # type: ignore[attr-defined]
    first, rest = payload(3 * MiB, seed=7), payload(MiB + 9, seed=8)
    started, release = threading.Event(), threading.Event()
    outcome: list[object] = []

    def source() -> Iterator[bytes]:
        yield first
        started.set()
        release.wait(120)
        yield rest

    thread = threading.Thread(target=lambda: outcome.append(store.add("alive", source())))
    thread.start()
    try:
        assert started.wait(60)
        deadline = time.monotonic() + lease * 1.5
        while time.monotonic() < deadline:
            assert store.sweep(0).removed == 0
            time.sleep(1)
        assert len(_segments_of(area, "alive")) == 3
    finally:
        release.set()
        thread.join(120)
    assert store.get(outcome[0].location) == first + rest  # type: ignore[attr-defined]
    assert area.leftovers() == []


def test_a_stopped_writer_is_dead_after_its_lease(area: SwiftArea, tmp_path: Path) -> None:
    """A writer process frozen (SIGSTOP) past writer_lease loses its segments to sweep; resumed,
    it fails instead of publishing an image whose segments are gone."""
    store = area.store()
    marker = tmp_path / "started"
    proc = _writer_process(area, "frozen", marker)
    try:
        _wait_for(marker, proc)
        deadline = time.monotonic() + 30
        while len(_segments_of(area, "frozen")) < 3:
            assert time.monotonic() < deadline
            time.sleep(0.1)
        os.kill(proc.pid, signal.SIGSTOP)
        lease = store._driver.timing.lease  # type: ignore[attr-defined]
        deadline = time.monotonic() + lease + 30
        while _segments_of(area, "frozen"):
            assert time.monotonic() < deadline, "a frozen writer's segments were never swept"
            store.sweep(0)
            time.sleep(1)
        os.kill(proc.pid, signal.SIGCONT)
        assert proc.wait(60) != 0  # its lease is gone: the add fails
    finally:
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGCONT)
            proc.kill()
    assert area.objects(area.container()) == []
    deadline = time.monotonic() + lease + 30  # its claim may outlive it by up to a lease
    while area.leftovers():
        assert time.monotonic() < deadline, area.leftovers()
        store.sweep(0)
        time.sleep(1)


def test_part_sizes_follow_the_cluster(area: SwiftArea) -> None:
    store = area.store(segment_size="8M")
    driver = store._driver
    assert isinstance(driver, SwiftDriver)
    info = area.saio.info()
    assert driver.max_file_size == info["swift"]["max_file_size"]
    sizes = driver.part_sizes("x" * 36)
    assert sizes.first == 8 * MiB and sizes.max_parts == info["slo"]["max_manifest_segments"]
    assert sizes.size_of(sizes.max_parts - 1) == driver.max_file_size  # the last ones are as big as Swift allows
    assert store.capabilities.max_object_size == driver.max_object_size()
    assert store.capabilities.max_object_size >= sizes.max_parts * driver.max_file_size // 2  # type: ignore[operator]


def test_images_spread_over_containers(area: SwiftArea) -> None:
    store = area.store(container_seed=1)
    base = area.container()
    for name in (f"{base}_a", f"{base}_segments_a", f"{base}_b", f"{base}_segments_b"):
        area.containers.add(name)  # cleaned with the others
    data = payload(2 * MiB + 1, seed=9)
    a, b = store.add("a-image", data), store.add("b-image", b"small", 5)
    assert a.location.path == (f"{base}_a", "a-image") and b.location.path == (f"{base}_b", "b-image")
    assert [r["name"] for r in area.objects(f"{base}_b")] == ["b-image"]
    assert len(area.objects(f"{base}_segments_a")) == 3
    assert store.get(a.location) == data and store.get("b-image") == b"small"
    assert store.locate(a.location).url is not None
    assert store.sweep(0).removed == 0
    store.delete(a.location)
    assert area.objects(f"{base}_segments_a") == []


def test_sweep_leaves_what_other_tools_put_in_the_segments_container(area: SwiftArea, tmp_path: Path) -> None:
    """`swift upload` puts SLO segments in CONTAINER_segments too (``OBJ/slo/...``): sweep
    touches nothing but its own writers' objects there."""
    from swiftclient.service import SwiftService, SwiftUploadObject

    store = area.store()
    container, segments = area.container(), area.container() + "_segments"
    src = tmp_path / "cli.img"
    data = payload(3 * MiB + 1, seed=10)
    src.write_bytes(data)
    options = {"auth": area.saio.auth_url, "user": area.saio.user2, "key": area.saio.key2, "auth_version": "1"}
    with SwiftService(options=options) as service:
        for result in service.upload(container, [SwiftUploadObject(str(src), object_name="cli.img")],
                                     options={"segment_size": MiB, "use_slo": True}):
            assert result["success"], result
    area.conn.put_object(segments, "x/y/z", contents=b"someone else's")
    area.conn.put_object(segments, "cli.img/0123abcd-0123456789abcdef/notes", contents=b"not a segment of ours")
    before = sorted(r["name"] for r in area.objects(segments))
    assert len(before) == 6
    assert store.sweep(0).removed == 0
    assert sorted(r["name"] for r in area.objects(segments)) == before
    assert area.conn.get_object(container, "cli.img")[1] == data


def test_heartbeat_left_beside_a_published_image_is_swept_its_segments_never(area: SwiftArea) -> None:
    """A writer killed after its manifest went in (or whose PUT the proxy finished after the
    client died) leaves its heartbeat beside the image's segments: sweep removes it alone."""
    store = area.store()
    data = payload(3 * MiB + 7, seed=11)
    info = store.add("published", chunks(data, 400_001))
    container, segments = area.container(), area.container() + "_segments"
    token = area.conn.head_object(container, "published")["x-object-meta-imagestore-writer"]
    beat = f"published/{token}/live"
    area.conn.put_object(segments, beat, contents=b"", content_type="application/x-imagestore-live")
    before = sorted(r["name"] for r in area.objects(segments))
    assert beat in before and len(before) == 5
    assert store.sweep(3600).removed == 0  # young
    removed, deadline = 0, time.monotonic() + 10
    while removed == 0 and time.monotonic() < deadline:  # the proxy's Date has 1 s resolution: a row
        removed = store.sweep(0).removed  # written just now may seem up to 1 s in the future
        time.sleep(0.2)
    assert removed == 1
    assert store.sweep(0).removed == 0
    assert sorted(r["name"] for r in area.objects(segments)) == [n for n in before if n != beat]
    assert store.get(info.location) == data
    store.delete(info.location)
    assert area.leftovers() == []
