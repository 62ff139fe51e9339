"""sweep(): how a live writer is recognised (its lease, refreshed every ``heartbeat``), and what
is removed: a dead writer's upload, data no record names, stale leases; never a published
image's data, never a live writer's upload however long it pauses."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import imagestore
from tests.services.s3 import S3Server

from .conftest import MiB, Opener, leftovers, payload, uploads


def test_a_paused_live_writer_is_never_swept(open_s3: Opener, s3_server: S3Server, s3_bucket: str) -> None:
    """A writer that sends nothing for longer than a lease takes to go stale keeps its upload:
    its heartbeat, not its traffic, says it is alive."""
    store = open_s3(part_size="5M", heartbeat=1, connect_timeout=1, read_timeout=3)
    sweeper = open_s3("sweeper", auto_sweep=False)
    stale_after = store.driver.stale_after  # type: ignore[attr-defined]
    client = s3_server.client()
    resume, sent = threading.Event(), threading.Event()
    data = payload(13 * MiB, seed=1)
    outcome: list[object] = []

    def source() -> Iterator[bytes]:
        yield data[:11 * MiB]
        sent.set()
        resume.wait(120)
        yield data[11 * MiB:]

    def run() -> None:
        try:
            outcome.append(store.add("paused", source()))
        except BaseException as exc:  # noqa: BLE001
            outcome.append(exc)

    thread = threading.Thread(target=run)
    thread.start()
    try:
        assert sent.wait(60)
        while not uploads(client, s3_bucket):
            time.sleep(0.05)
        until = time.monotonic() + stale_after + 3
        while time.monotonic() < until:
            assert sweeper.sweep(0) == imagestore.SweepReport()
            time.sleep(0.5)
        assert uploads(client, s3_bucket)
    finally:
        resume.set()
        thread.join(120)
    assert isinstance(outcome[0], imagestore.ImageInfo), outcome
    assert store.get("paused") == data
    assert leftovers(client, s3_bucket) == []


def test_unpublished_data_and_stale_leases_are_swept(open_s3: Opener, s3_server: S3Server, s3_bucket: str) -> None:
    store = open_s3(part_size="5M", auto_sweep=False)
    client = s3_server.client()
    big = payload(12 * MiB, seed=2)
    info = store.add("kept", iter([big]))
    token = client.head_object(Bucket=s3_bucket, Key="kept")["Metadata"]["imagestore-token"]
    # what writers that died at the wrong moment leave: data completed but never published
    # (one for a published id, one for an id never published) and a lease nobody refreshes
    client.put_object(Bucket=s3_bucket, Key=".imagestore/data/kept/1-dead0000dead0000", Body=b"a" * 1000)
    client.put_object(Bucket=s3_bucket, Key=".imagestore/data/ghost/1-dead0000dead0001", Body=b"b" * 2000)
    client.put_object(Bucket=s3_bucket, Key=".imagestore/uploads/ghost/1-dead0000dead0002", Body=b"{}")
    assert len(leftovers(client, s3_bucket)) == 3
    assert store.sweep(3600) == imagestore.SweepReport(), "a fresh leftover was swept with older_than=1h"
    stale_after = store.driver.stale_after  # type: ignore[attr-defined]
    deadline = time.monotonic() + stale_after + 30
    removed = imagestore.SweepReport()
    while leftovers(client, s3_bucket):
        assert time.monotonic() < deadline, leftovers(client, s3_bucket)
        removed += store.sweep(0)
        time.sleep(0.5)
    assert removed == imagestore.SweepReport(3, 3000)
    assert client.head_object(Bucket=s3_bucket, Key=f".imagestore/data/kept/{token}")["ContentLength"] == len(big)
    assert store.get(info.location) == big
    assert store.sweep(0) == imagestore.SweepReport()
