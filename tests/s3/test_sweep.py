"""sweep(): how a live writer is recognised (its lease, refreshed every ``heartbeat``), and what
is removed: a dead writer's upload, data no record names, stale leases; never a published
image's data, never a live writer's upload however long it pauses."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from types import SimpleNamespace
from typing import Any

import pytest

import imagestore
from imagestore.store.tables import companion
from tests.services.s3 import S3Server

from .conftest import MiB, Opener, leftovers, payload, s3_spec, uploads


def test_a_paused_live_writer_is_never_swept(open_s3: Opener, s3_server: S3Server, s3_bucket: str) -> None:
    """A writer that sends nothing for longer than a lease takes to go stale keeps its upload:
    its heartbeat, not its traffic, says it is alive."""
    store = open_s3(part_size="5M", heartbeat=1, connect_timeout=1, read_timeout=3)
    sweeper = open_s3("sweeper", auto_sweep=False)
    stale_after = store._driver.stale_after  # type: ignore[attr-defined]
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
    # what writers that died at the wrong moment leave: data completed but never published
    # (one for a published id, one for an id never published) and a lease nobody refreshes
    client.put_object(Bucket=s3_bucket, Key=".imagestore/data/kept/1-dead0000dead0000", Body=b"a" * 1000)
    client.put_object(Bucket=s3_bucket, Key=".imagestore/data/ghost/1-dead0000dead0001", Body=b"b" * 2000)
    client.put_object(Bucket=s3_bucket, Key=".imagestore/uploads/ghost/1-dead0000dead0002", Body=b"{}")
    assert len(leftovers(client, s3_bucket)) == 3
    assert store.sweep(3600) == imagestore.SweepReport(), "a fresh leftover was swept with older_than=1h"
    stale_after = store._driver.stale_after  # type: ignore[attr-defined]
    deadline = time.monotonic() + stale_after + 30
    removed = imagestore.SweepReport()
    while leftovers(client, s3_bucket):
        assert time.monotonic() < deadline, leftovers(client, s3_bucket)
        removed += store.sweep(0)
        time.sleep(0.5)
    assert removed == imagestore.SweepReport(3, 3000)
    assert client.head_object(Bucket=s3_bucket, Key="kept")["ContentLength"] == len(big)  # the key holds the bytes
    assert store.get(info.location) == big
    assert store.sweep(0) == imagestore.SweepReport()


def _objects(client: Any, bucket: str) -> list[str]:
    return sorted(o["Key"] for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket)
                  for o in page.get("Contents", []))


def test_one_sweep_leaves_only_the_visible_images(open_s3: Opener, s3_server: S3Server, s3_bucket: str) -> None:
    """Every state a killed add (or open) can leave, built by hand: after one ``sweep(0)`` once
    the writers' leases are stale, the bucket holds the visible images' keys and nothing else,
    each key holding its image's bytes."""
    from .test_records import plant_record

    # a sweeper whose leases go stale fast (two 0.2 s heartbeats + 0.2 s of timeouts)
    store = open_s3(part_size="5M", auto_sweep=False, heartbeat=0.2, connect_timeout=0.1, read_timeout=0.1)
    client = s3_server.client()
    small, big = payload(1000, seed=1), payload(6 * MiB + 1, seed=2)
    store.add("won", small, len(small))  # inline
    final_table = store.add("final", iter([big])).block_table  # multipart: record, then its data copied over it
    assert final_table is not None
    token = client.head_object(Bucket=s3_bucket, Key="final")["Metadata"]["imagestore-token"]

    def lease(image: str, tok: str) -> None:
        client.put_object(Bucket=s3_bucket, Key=f".imagestore/uploads/{image}/{tok}", Body=b"{}")

    # lost the race to "won" (inline) and was killed before removing its data
    client.put_object(Bucket=s3_bucket, Key=".imagestore/data/won/1-1111111111111111", Body=b"l" * 100)
    lease("won", "1-1111111111111111")
    # killed after copying its data over its record, before deleting the data
    client.put_object(Bucket=s3_bucket, Key=f".imagestore/data/final/{token}", Body=big)
    lease("final", token)
    # killed mid-upload
    up = client.create_multipart_upload(Bucket=s3_bucket, Key=".imagestore/data/mid/1-2222222222222222")
    client.upload_part(Bucket=s3_bucket, Key=".imagestore/data/mid/1-2222222222222222", UploadId=up["UploadId"],
                       PartNumber=1, Body=b"m" * 100)
    lease("mid", "1-2222222222222222")
    # killed after completing its upload, before publishing
    client.put_object(Bucket=s3_bucket, Key=".imagestore/data/done/1-3333333333333333", Body=b"d" * 100)
    lease("done", "1-3333333333333333")
    # killed after publishing its record, before the final copy; and a record of an earlier version
    plant_record(client, s3_bucket, "recorded", "1-4444444444444444", big[:5000], headers=True)
    lease("recorded", "1-4444444444444444")
    plant_record(client, s3_bucket, "legacy", "1-5555555555555555", big[:7000], headers=False)
    # an open killed between writing and removing its probe
    client.put_object(Bucket=s3_bucket, Key=".imagestore/probe/1-6666666666666666", Body=b"")
    # killed between deleting an image and its block table
    client.put_object(Bucket=s3_bucket, Key=companion("gone", "1048576:" + "0" * 64), Body=b"t" * 32)
    time.sleep(2.5)  # every lease and probe above is now older than the sweeper's stale_after

    store.sweep(0)
    assert uploads(client, s3_bucket) == []
    assert _objects(client, s3_bucket) == ["final", companion("final", final_table), "legacy", "recorded", "won"]
    for image, data in [("won", small), ("final", big), ("recorded", big[:5000]), ("legacy", big[:7000])]:
        assert client.get_object(Bucket=s3_bucket, Key=image)["Body"].read() == data  # any S3 client reads it
        assert store.get(image) == data
    assert store.sweep(0) == imagestore.SweepReport()


def test_a_sweep_keeps_its_budget_on_a_big_bucket(moto_server: S3Server, monkeypatch: pytest.MonkeyPatch) -> None:
    """2,100 dead writers' data objects (three listing pages) and a budget of 40 requests,
    counted by a clock that advances one tick per request: the sweep lists one page, stops,
    and the next one goes on after the last key the first one handled, not from the start."""
    from concurrent.futures import ThreadPoolExecutor

    from imagestore.drivers.s3 import sweeper
    from tests.services.s3 import temporary_bucket

    monkeypatch.setenv("IMAGESTORE_TEST_S3_ACCESS", moto_server.access_key)
    monkeypatch.setenv("IMAGESTORE_TEST_S3_SECRET", moto_server.secret_key)
    with temporary_bucket(moto_server, "imagestore-big") as bucket:
        client = moto_server.client()
        keys = [f".imagestore/data/img-{i:05d}/1-{i:016x}" for i in range(2100)]
        with ThreadPoolExecutor(8) as pool:
            list(pool.map(lambda k: client.put_object(Bucket=bucket, Key=k, Body=b"x"), keys))
        store = imagestore.open_store(s3_spec(moto_server, bucket, auto_sweep=False), "big")
        driver: Any = store._driver
        calls: list[tuple[str, dict[str, Any]]] = []
        real = driver.client.call

        def call(method: str, what: str, *args: Any, **params: Any) -> Any:
            calls.append((method, params))
            return real(method, what, *args, **params)

        driver.client.call = call
        monkeypatch.setattr(sweeper, "time", SimpleNamespace(monotonic=lambda: float(len(calls))))

        def listings(since: int) -> list[dict[str, Any]]:
            return [p for m, p in calls[since:] if m == "list_objects_v2"]

        first = store.sweep(0, deadline=len(calls) + 40)
        assert len(listings(0)) == 1, "the sweep listed past its budget"
        assert 0 < first.removed < 40
        left = [k for k in _objects(client, bucket) if k.startswith(".imagestore/")]
        assert left == keys[first.removed:]  # removed in key order, nothing skipped
        mark = len(calls)
        second = store.sweep(0, deadline=len(calls) + 40)
        assert listings(mark)[0].get("StartAfter") == keys[first.removed - 1], "the next sweep started over"
        assert 0 < second.removed < 40
        assert [k for k in _objects(client, bucket) if k.startswith(".imagestore/")] == \
            keys[first.removed + second.removed:]
        store.close()
