"""Faults on the wire, through the fault proxy in front of each server: throttling (503
SlowDown) and dropped connections are retried where it is safe, a broken read resumes at
the byte where it stopped, and a publish whose answer was lost is recognised as ours."""

from __future__ import annotations

import re

import pytest

from imagestore import BackendUnavailable, NotFound
from tests.services.faultproxy import FaultProxyFactory, Request
from tests.services.s3 import S3Server

from .conftest import MiB, Opener, leftovers, payload


def is_part(r: Request) -> bool:
    return r.method == "PUT" and "partNumber=" in r.query


def is_publish(r: Request) -> bool:
    """The conditional PutObject of an image (not of a lease, nor of its block table)."""
    return (r.method == "PUT" and r.headers.get("if-none-match") == "*" and "/.imagestore/" not in r.path
            and "/imagestore-blocks-" not in r.path)


def blocks(data: bytes, size: int = MiB) -> list[bytes]:
    return [data[i:i + size] for i in range(0, len(data), size)]


def test_503_storm_on_parts_is_retried(open_s3: Opener, s3_server: S3Server, s3_bucket: str,
                                       fault_proxy: FaultProxyFactory) -> None:
    proxy = fault_proxy(s3_server)
    store = open_s3(endpoint=proxy.endpoint, part_size="5M", retry_backoff=0.01, auto_sweep=False)
    proxy.storm(3, match=is_part)
    data = payload(16 * MiB, seed=1)
    info = store.add("throttled", iter(blocks(data)))
    parts = [(r.status, r.fault) for r in proxy.log if is_part(r)]
    assert parts.count((503, "storm")) == 3 and parts.count((200, None)) == 4, parts
    assert store.get(info.location) == data
    assert leftovers(s3_server.client(), s3_bucket) == []


def test_503_storm_on_reads_is_retried(open_s3: Opener, s3_server: S3Server, fault_proxy: FaultProxyFactory) -> None:
    proxy = fault_proxy(s3_server)
    store = open_s3(endpoint=proxy.endpoint, retry_backoff=0.01, auto_sweep=False)
    data = payload(2 * MiB, seed=2)
    store.add("img", data, len(data))
    proxy.storm(2, match=lambda r: r.method == "HEAD")
    proxy.storm(2, match=lambda r: r.method == "GET")
    assert store.get("img") == data
    assert [r.status for r in proxy.log if r.method in ("HEAD", "GET")][-6:] == [503, 503, 200, 503, 503, 206]


def test_a_storm_longer_than_the_retries_is_backend_unavailable(open_s3: Opener, s3_server: S3Server, s3_bucket: str,
                                                                fault_proxy: FaultProxyFactory) -> None:
    proxy = fault_proxy(s3_server)
    store = open_s3(endpoint=proxy.endpoint, part_size="5M", retries=1, retry_backoff=0.01, auto_sweep=False)
    proxy.storm(None, match=is_part)
    with pytest.raises(BackendUnavailable) as err:
        store.add("never", iter(blocks(payload(12 * MiB, seed=3))))
    assert "SlowDown" in str(err.value) and "'s3'" in str(err.value)
    proxy.passthrough()
    with pytest.raises(NotFound):
        store.stat("never")
    assert leftovers(s3_server.client(), s3_bucket) == []


def test_dropped_connection_mid_body_resumes_where_it_stopped(open_s3: Opener, s3_server: S3Server,
                                                              fault_proxy: FaultProxyFactory) -> None:
    proxy = fault_proxy(s3_server)
    store = open_s3(endpoint=proxy.endpoint, part_size="5M", retry_backoff=0.01, auto_sweep=False)
    data = payload(20 * MiB + 5, seed=4)
    info = store.add("img", iter(blocks(data)))
    cut = 5 * MiB + 123
    proxy.reset_counters()
    proxy.drop_response(after=cut, how="close", match=lambda r: r.method == "GET")
    with store.open(info.location) as reader:  # verified at the end
        assert b"".join(reader) == data
        assert reader.resumes == 1
    ranges = [r.headers.get("range") for r in proxy.log if r.method == "GET"]
    last = len(data) - 1
    assert len(ranges) == 2 and ranges[0] == f"bytes=0-{last}", ranges
    resumed_at = int(ranges[1].removeprefix("bytes=").split("-")[0])
    # the resumed GET starts at the first byte the reader did not get: nothing is read twice
    # but the cut 1 MiB socket read, and nothing is skipped
    assert cut - MiB <= resumed_at <= cut and ranges[1] == f"bytes={resumed_at}-{last}", ranges


def test_dropped_connection_during_a_ranged_read(open_s3: Opener, s3_server: S3Server,
                                                 fault_proxy: FaultProxyFactory) -> None:
    proxy = fault_proxy(s3_server)
    store = open_s3(endpoint=proxy.endpoint, retry_backoff=0.01, auto_sweep=False)
    data = payload(3 * MiB, seed=5)
    store.add("img", data, len(data))
    proxy.drop_response(after=100_000, how="close", match=lambda r: r.method == "GET")
    assert store.get("img", 1000, 2 * MiB, verify=False) == data[1000:1000 + 2 * MiB]


def test_request_dropped_mid_part_is_sent_again(open_s3: Opener, s3_server: S3Server, s3_bucket: str,
                                                fault_proxy: FaultProxyFactory) -> None:
    proxy = fault_proxy(s3_server)
    store = open_s3(endpoint=proxy.endpoint, part_size="5M", retry_backoff=0.01, auto_sweep=False)
    proxy.drop_request(after=MiB, times=2, match=is_part)
    data = payload(11 * MiB, seed=6)
    info = store.add("img", iter(blocks(data)))
    assert sum(1 for r in proxy.log if is_part(r) and r.fault == "drop_request") == 2
    assert store.get(info.location) == data
    assert leftovers(s3_server.client(), s3_bucket) == []


@pytest.mark.parametrize("size", [2 * MiB, 12 * MiB], ids=["inline", "record"])
def test_lost_answer_to_the_publish_is_recognised(open_s3: Opener, s3_server: S3Server, s3_bucket: str,
                                                  fault_proxy: FaultProxyFactory, size: int) -> None:
    """The server stored the conditional PutObject but the answer was lost: the retry gets 412,
    and the driver sees its own upload token there, so the add succeeds (not AlreadyExists)."""
    proxy = fault_proxy(s3_server)
    store = open_s3(endpoint=proxy.endpoint, part_size="5M", retry_backoff=0.01, auto_sweep=False)
    proxy.lose_response(match=is_publish)
    data = payload(size, seed=7)
    info = store.add("img", iter(blocks(data)))
    publishes = [(r.status, r.fault) for r in proxy.log if is_publish(r)]
    assert publishes == [(200, "lose_response"), (412, None)], publishes
    assert store.get(info.location) == data
    assert leftovers(s3_server.client(), s3_bucket) == []


def test_lost_answer_to_complete_is_retried(open_s3: Opener, s3_server: S3Server, s3_bucket: str,
                                            fault_proxy: FaultProxyFactory) -> None:
    proxy = fault_proxy(s3_server)
    store = open_s3(endpoint=proxy.endpoint, part_size="5M", retry_backoff=0.01, auto_sweep=False)
    proxy.lose_response(match=lambda r: r.method == "POST" and re.search(r"uploadId=", r.query) is not None)
    data = payload(12 * MiB, seed=8)
    info = store.add("img", iter(blocks(data)))
    completes = [r.status for r in proxy.log if r.method == "POST" and "uploadId=" in r.query]
    assert completes == [200, 200]
    assert store.get(info.location) == data
    assert leftovers(s3_server.client(), s3_bucket) == []
