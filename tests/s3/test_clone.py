"""Clones: server-side inside one endpoint (CopyObject, or parallel UploadPartCopy above
``copy_part_size``), atomic like an add; a verified stream to another endpoint."""

from __future__ import annotations

import re
import threading
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

import imagestore
from imagestore import AlreadyExists
from imagestore.testing.processes import race_adds
from tests.services.faultproxy import FaultProxyFactory
from tests.services.s3 import MotoProcess, Radosgw, S3Server, empty_bucket, temporary_bucket

from .conftest import MiB, Opener, leftovers, payload, s3_spec


@pytest.fixture
def second_bucket(s3_server: S3Server) -> Iterator[str]:
    with temporary_bucket(s3_server, "imagestore-vms") as bucket:
        yield bucket


def _copies(log: list[Any]) -> list[tuple[int | None, str]]:
    """(part number or None, copy range or "") of every copy request, in order."""
    out = []
    for r in log:
        if r.method == "PUT" and "x-amz-copy-source" in r.headers:
            m = re.search(r"partNumber=(\d+)", r.query)
            out.append((int(m.group(1)) if m else None, r.headers.get("x-amz-copy-source-range", "")))
    return out


def test_upload_part_copy_above_the_copy_part_size(open_s3: Opener, s3_server: S3Server, s3_bucket: str,
                                                   second_bucket: str, fault_proxy: FaultProxyFactory) -> None:
    proxy = fault_proxy(s3_server)
    src = open_s3("images", endpoint=proxy.endpoint, part_size="5M", auto_sweep=False)
    dst = open_s3("vms", endpoint=proxy.endpoint, bucket=second_bucket, copy_part_size="5M", concurrency=3,
                  auto_sweep=False)
    data = payload(17 * MiB + 3, seed=1)
    info = src.add("base", iter([data[i:i + MiB] for i in range(0, len(data), MiB)]))
    proxy.reset_counters()
    check = src.can_clone(info.location, dst)
    assert check.mode == "server_copy", check
    res = src.clone(info.location, dst, name="copy")
    assert res.mode == "server_copy" and res.location.store == "vms"
    last = len(data) - 1
    *parts, final = _copies(proxy.log)  # the parts into the data key, then one copy of it over the record
    assert sorted(parts) == [(1, f"bytes=0-{5 * MiB - 1}"), (2, f"bytes={5 * MiB}-{10 * MiB - 1}"),
                             (3, f"bytes={10 * MiB}-{15 * MiB - 1}"), (4, f"bytes={15 * MiB}-{last}")]
    assert final == (None, "")
    assert not any(r.method == "GET" and "/base" in r.path for r in proxy.log), "the bytes passed through us"
    assert dst.stat(res.location).checksums == info.checksums
    assert dst.get(res.location) == data  # verified against the carried sha512
    client = s3_server.client()
    assert leftovers(client, s3_bucket) == [] and leftovers(client, second_bucket) == []
    with pytest.raises(AlreadyExists):
        src.clone(info.location, dst, name="copy")


def test_small_clone_is_one_copy_object(open_s3: Opener, s3_server: S3Server, fault_proxy: FaultProxyFactory) -> None:
    proxy = fault_proxy(s3_server)
    store = open_s3(endpoint=proxy.endpoint, auto_sweep=False)
    data = payload(3 * MiB, seed=2)
    info = store.add("small", data, len(data))  # inline: the copy's source is the image key itself
    proxy.reset_counters()
    res = store.clone(info.location, name="small-copy")
    assert _copies(proxy.log) == [(None, ""), (None, "")]  # into the data key, then over the record
    copy_request = next(r for r in proxy.log if "x-amz-copy-source" in r.headers)
    assert copy_request.headers.get("x-amz-copy-source-if-match"), "an inline source is copied at its version"
    assert store.get(res.location) == data


def test_concurrent_clones_to_one_name(open_s3: Opener, s3_server: S3Server, s3_bucket: str) -> None:
    """CopyObject overwrites on both servers; the conditional record makes clones exclusive anyway."""
    store = open_s3(copy_part_size="5M")
    data = payload(11 * MiB, seed=5)
    info = store.add("src", iter([data[:6 * MiB], data[6 * MiB:]]))
    barrier = threading.Barrier(4)

    def run(i: int) -> object:
        barrier.wait()
        return store.clone(info.location, name="target")

    results = race_adds(run, range(4))
    assert sum(isinstance(r, imagestore.CloneResult) for r in results) == 1, results
    assert sum(isinstance(r, AlreadyExists) for r in results) == 3, results
    assert store.get("target") == data
    assert leftovers(s3_server.client(), s3_bucket) == []


def test_clone_to_another_endpoint_streams(moto_server: S3Server, radosgw: Radosgw,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    buckets = {}
    for server in (moto_server, radosgw):
        env = f"IMAGESTORE_TEST_{server.name.upper()}"
        monkeypatch.setenv(f"{env}_ACCESS", server.access_key)
        monkeypatch.setenv(f"{env}_SECRET", server.secret_key)
        buckets[server.name] = f"imagestore-x-{uuid.uuid4().hex[:10]}"
        server.client().create_bucket(Bucket=buckets[server.name])
    try:
        src = imagestore.open_store(s3_spec(moto_server, buckets["moto"], env="IMAGESTORE_TEST_MOTO"), "moto")
        dst = imagestore.open_store(s3_spec(radosgw, buckets["radosgw"], env="IMAGESTORE_TEST_RADOSGW"), "rgw")
        data = payload(6 * MiB, seed=6)
        info = src.add("img", data, len(data))
        check = src.can_clone(info.location, dst)
        assert check.mode == "stream" and check.code is imagestore.CloneRefusal.DIFFERENT_ENDPOINT, check
        with pytest.raises(imagestore.Unsupported):
            src.clone(info.location, dst, mode="server_copy")
        res = src.clone(info.location, dst)
        assert res.mode == "stream" and dst.get(res.location) == data
        assert dst.stat(res.location).checksums == info.checksums
        src.close()
        dst.close()
    finally:
        for server in (moto_server, radosgw):
            client = server.client()
            empty_bucket(client, buckets[server.name])
            client.delete_bucket(Bucket=buckets[server.name])


def test_another_moto_server_is_a_different_endpoint(moto_server: S3Server, monkeypatch: pytest.MonkeyPatch) -> None:
    """Two moto servers: the same kind of backend on another endpoint is ``different_endpoint``
    (not ``different_backend``), and auto mode streams verified."""
    other = MotoProcess()
    other.start()
    try:
        second = S3Server("moto", other.endpoint, moto_server.region, moto_server.access_key,
                          moto_server.secret_key, moto_server.alt_access_key, moto_server.alt_secret_key)
        monkeypatch.setenv("IMAGESTORE_TEST_S3_ACCESS", moto_server.access_key)
        monkeypatch.setenv("IMAGESTORE_TEST_S3_SECRET", moto_server.secret_key)
        with temporary_bucket(moto_server, "imagestore-a") as a, temporary_bucket(second, "imagestore-b") as b:
            src = imagestore.open_store(s3_spec(moto_server, a), "here")
            dst = imagestore.open_store(s3_spec(second, b), "there")
            data = payload(MiB + 5, seed=7)
            info = src.add("img", data, len(data))
            check = src.can_clone(info.location, dst)
            assert check.mode == "stream" and check.code is imagestore.CloneRefusal.DIFFERENT_ENDPOINT, check
            assert check.code == "different_endpoint" and other.endpoint in check.reason
            check = src.can_clone(info.location, dst, mode="server_copy")
            assert not check.possible and check.code == "different_endpoint"
            res = src.clone(info.location, dst)
            assert res.mode == "stream" and dst.get(res.location) == data
            src.close()
            dst.close()
    finally:
        other.cleanup()


def test_clone_refused_without_read_permission(radosgw: Radosgw, monkeypatch: pytest.MonkeyPatch) -> None:
    """radosgw's second user is another account: it may not read the first one's bucket, so the
    copy would fail; can_clone says so and auto mode streams through the source's credentials."""
    monkeypatch.setenv("IMAGESTORE_TEST_S3_ACCESS", radosgw.access_key)
    monkeypatch.setenv("IMAGESTORE_TEST_S3_SECRET", radosgw.secret_key)
    monkeypatch.setenv("IMAGESTORE_TEST_ALT_ACCESS", radosgw.alt_access_key)
    monkeypatch.setenv("IMAGESTORE_TEST_ALT_SECRET", radosgw.alt_secret_key)
    mine, theirs = f"imagestore-a-{uuid.uuid4().hex[:10]}", f"imagestore-b-{uuid.uuid4().hex[:10]}"
    radosgw.client().create_bucket(Bucket=mine)
    radosgw.client(alt=True).create_bucket(Bucket=theirs)
    try:
        src = imagestore.open_store(s3_spec(radosgw, mine), "mine")
        dst = imagestore.open_store(s3_spec(radosgw, theirs, env="IMAGESTORE_TEST_ALT"), "theirs")
        data = payload(MiB, seed=7)
        info = src.add("img", data, len(data))
        check = src.can_clone(info.location, dst)
        assert check.mode == "stream" and check.code == "permission", check
        res = src.clone(info.location, dst)
        assert res.mode == "stream" and dst.get(res.location) == data
        src.close()
        dst.close()
    finally:
        empty_bucket(radosgw.client(), mine)
        radosgw.client().delete_bucket(Bucket=mine)
        empty_bucket(radosgw.client(alt=True), theirs)
        radosgw.client(alt=True).delete_bucket(Bucket=theirs)
