"""No multipart upload (and no unpublished object) survives a failed, capped, refused,
aborted or killed add; a killed writer's upload is swept once its lease lapses, never before."""

from __future__ import annotations

import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from datetime import datetime
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import Any

import pytest

import imagestore
from imagestore import ImageTooLarge, NotFound, SizeMismatch, UnsafeImage
from tests.services.s3 import S3Server

from .conftest import MiB, Opener, leftovers, payload, s3_spec, uploads


def watched(client: Any, bucket: str, data: bytes, seen: list[list[str]], *, then: BaseException | None = None,
            block: int = MiB) -> Iterator[bytes]:
    """Yield ``data`` in blocks, noting the open uploads once 12 MiB went out (proof that the
    add was multipart when it failed), then raise ``then`` if given."""
    for i in range(0, len(data), block):
        if i == 12 * MiB:
            seen.append(uploads(client, bucket))
        yield data[i:i + block]
    if then is not None:
        raise then


def test_source_failure_aborts_the_upload(open_s3: Opener, s3_server: S3Server, s3_bucket: str) -> None:
    store = open_s3(part_size="5M")
    client, seen = s3_server.client(), []
    with pytest.raises(ConnectionResetError):
        store.add("failed", watched(client, s3_bucket, payload(14 * MiB), seen, then=ConnectionResetError("gone")))
    assert seen and seen[0], "no multipart upload was open when the source failed: the test proves nothing"
    assert uploads(client, s3_bucket) == [] and leftovers(client, s3_bucket) == []
    with pytest.raises(NotFound):
        store.stat("failed")


def test_size_cap_aborts_the_upload(open_s3: Opener, s3_server: S3Server, s3_bucket: str) -> None:
    store = open_s3(part_size="5M", max_image_size=13 * MiB)
    client, seen = s3_server.client(), []
    with pytest.raises(ImageTooLarge):
        store.add("capped", watched(client, s3_bucket, payload(30 * MiB), seen))
    assert seen and seen[0]
    assert uploads(client, s3_bucket) == [] and leftovers(client, s3_bucket) == []


def test_short_stream_for_a_declared_size_aborts(open_s3: Opener, s3_server: S3Server, s3_bucket: str) -> None:
    store = open_s3(part_size="5M", single_put_threshold="5M")
    client, seen = s3_server.client(), []
    with pytest.raises(SizeMismatch):
        store.add("short", watched(client, s3_bucket, payload(13 * MiB), seen), size=20 * MiB)
    assert seen and seen[0]
    assert uploads(client, s3_bucket) == [] and leftovers(client, s3_bucket) == []


def test_refused_format_aborts_after_the_parts(open_s3: Opener, s3_server: S3Server, s3_bucket: str,
                                              qcow2_with_backing: bytes) -> None:
    """The format verdict comes at the end of the stream, after parts were sent: they go."""
    store = open_s3(part_size="5M")
    client, seen = s3_server.client(), []
    image = qcow2_with_backing + bytes(14 * MiB)
    with pytest.raises(UnsafeImage):
        store.add("evil", watched(client, s3_bucket, image, seen))
    assert seen and seen[0]
    assert uploads(client, s3_bucket) == [] and leftovers(client, s3_bucket) == []


def test_driver_writer_abort(open_s3: Opener, s3_server: S3Server, s3_bucket: str) -> None:
    store = open_s3(part_size="5M")
    client = s3_server.client()
    writer = store._driver.open_writer("aborted", None)
    for i in range(3):
        writer.write(memoryview(payload(4 * MiB, seed=i)))
    assert uploads(client, s3_bucket), "three 4 MiB writes of 5 MiB parts: an upload must be open"
    writer.abort()
    writer.abort()  # twice is fine
    assert uploads(client, s3_bucket) == [] and leftovers(client, s3_bucket) == []


def _writer_process(spec: dict[str, Any], image: str, marker: Path) -> subprocess.Popen[bytes]:
    """A process adding ``image`` of unknown size; it touches ``marker`` after 12 MiB, then trickles."""
    code = textwrap.dedent(f"""
        import pathlib, time, imagestore
        store = imagestore.open_store({spec!r}, "main")
        def source():
            for _ in range(12):
                yield bytes(range(256)) * 4096
            pathlib.Path({str(marker)!r}).write_text("1")
            while True:
                time.sleep(0.05)
                yield b"y" * 65536
        store.add({image!r}, source())
    """)
    return subprocess.Popen([sys.executable, "-c", code])


def test_killed_writer_is_swept_only_after_its_lease_lapses(s3_server: S3Server, s3_bucket: str, tmp_path: Path,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("IMAGESTORE_TEST_S3_ACCESS", s3_server.access_key)
    monkeypatch.setenv("IMAGESTORE_TEST_S3_SECRET", s3_server.secret_key)
    spec = s3_spec(s3_server, s3_bucket, part_size="5M", heartbeat=1, connect_timeout=1, read_timeout=3)
    client = s3_server.client()
    marker = tmp_path / "started"
    proc = _writer_process(spec, "killed", marker)
    try:
        deadline = time.monotonic() + 60
        while not marker.exists():
            assert proc.poll() is None and time.monotonic() < deadline, "the writer did not start"
            time.sleep(0.05)
        while not uploads(client, s3_bucket):  # its first parts are on their way
            assert time.monotonic() < deadline
            time.sleep(0.05)
        store = imagestore.open_store({**spec, "auto_sweep": False}, "sweeper")
        assert store.sweep(0) == imagestore.SweepReport(), "a live writer's upload was swept"
        proc.send_signal(signal.SIGKILL)
        proc.wait(30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert uploads(client, s3_bucket), "the killed writer left no upload: the test proves nothing"
    stale_after = store._driver.stale_after  # type: ignore[attr-defined]
    killed_at = time.monotonic()
    removed = 0
    while leftovers(client, s3_bucket):
        assert time.monotonic() - killed_at < stale_after + 30, f"never swept: {leftovers(client, s3_bucket)}"
        refreshed = _lease_refreshed_at(client, s3_bucket)  # the dead writer's last heartbeat (server clock)
        report = store.sweep(0)
        if report.removed and refreshed is not None:
            # by the server's clock, after the sweep: at least stale_after since the last heartbeat
            # (an upper bound of the lease's age when it was swept, so load cannot fail it)
            age = (_server_date(client, s3_bucket) - refreshed).total_seconds()
            assert age >= stale_after - 1, f"swept {age:.1f}s after the last heartbeat (stale after {stale_after})"
        removed += report.removed
        time.sleep(0.5)
    assert removed >= 2  # the upload and the lease
    assert uploads(client, s3_bucket) == []
    with pytest.raises(NotFound):
        store.stat("killed")
    store.close()


def _lease_refreshed_at(client: Any, bucket: str) -> datetime | None:
    """When the newest writer lease in the bucket was last refreshed (its LastModified)."""
    listing = client.list_objects_v2(Bucket=bucket, Prefix=".imagestore/uploads/")
    times = [o["LastModified"] for o in listing.get("Contents", [])]
    return max(times) if times else None


def _server_date(client: Any, bucket: str) -> datetime:
    """The server's clock now (the Date of a response; one-second resolution)."""
    date = client.list_objects_v2(Bucket=bucket, MaxKeys=1)["ResponseMetadata"]["HTTPHeaders"]["date"]
    return parsedate_to_datetime(date)
