"""What each operation costs in requests, as documented in the README, counted on the wire;
and no boto3 checksum headers unless the store asks for them (when_required)."""

from __future__ import annotations

from typing import Any

from tests.services.faultproxy import FaultProxyFactory
from tests.services.s3 import S3Server

from .conftest import MiB, Opener, payload


def ops(log: list[Any]) -> list[str]:
    """One word per request: HEAD, GET, PUT, PUT-part, POST-create, POST-complete, DELETE..."""
    out = []
    for r in log:
        q = r.query
        if r.method == "PUT" and "partNumber=" in q:
            out.append("PUT-part")
        elif r.method == "POST" and "uploads" in q.split("&"):
            out.append("POST-create")
        elif r.method == "POST" and "uploadId=" in q:
            out.append("POST-complete")
        elif r.method == "PUT" and "/.imagestore/uploads/" in r.path:
            out.append("PUT-lease")
        elif r.method == "DELETE" and "/.imagestore/uploads/" in r.path:
            out.append("DELETE-lease")
        elif r.method == "PUT" and "x-amz-copy-source" in r.headers:
            out.append("PUT-copy")
        elif r.method == "PUT" and r.headers.get("if-none-match") == "*":
            out.append("PUT-publish")
        else:
            out.append(r.method)
    return out


def test_request_costs(open_s3: Opener, s3_server: S3Server, fault_proxy: FaultProxyFactory) -> None:
    proxy = fault_proxy(s3_server)
    store = open_s3(endpoint=proxy.endpoint, part_size="5M", heartbeat=60, auto_sweep=False)
    assert ops(proxy.log) == ["HEAD", "PUT-publish", "PUT-publish", "DELETE"]  # bucket, conditional-write probe

    def cost(fn: Any) -> list[str]:
        """The requests ``fn`` made for the image itself (those for its block table: ``tables``)."""
        proxy.reset_counters()
        fn()
        return ops([r for r in proxy.log if "/imagestore-blocks-" not in r.path])

    def tables() -> list[str]:
        return ops([r for r in proxy.log if "/imagestore-blocks-" in r.path])

    small = payload(MiB, seed=1)  # one block: no table
    assert cost(lambda: store.add("small", small, len(small))) == ["HEAD", "PUT-publish"]
    assert cost(lambda: store.stat("small")) == ["HEAD"]
    assert cost(lambda: store.get("small")) == ["HEAD", "GET"]
    assert cost(lambda: store.add("unknown", iter([small]))) == ["HEAD", "PUT-lease", "PUT-publish", "DELETE-lease"]
    assert tables() == []
    big = payload(12 * MiB, seed=2)
    assert cost(lambda: store.add("big", iter([big]))) == [
        "HEAD", "PUT-lease", "POST-create", "PUT-part", "PUT-part", "PUT-part", "POST-complete", "PUT-publish",
        "PUT-copy", "DELETE", "DELETE-lease"]  # the record, then the data copied over it
    assert tables() == ["HEAD", "PUT-publish"]  # the block table, written before the image is published
    assert cost(lambda: store.stat("big")) == ["HEAD"]
    assert cost(lambda: store.get("big")) == ["HEAD", "GET"]  # one 16 MiB ranged read
    assert tables() == []  # the process that added the image kept its table
    assert cost(lambda: store.get("big", 5 * MiB, 10)) == ["HEAD", "GET"]  # the block around the range
    assert cost(lambda: store.locate("big")) == []  # presigned locally, from the stat just made
    assert cost(lambda: store.delete("big")) == ["HEAD", "HEAD", "DELETE"]  # the key holds the bytes
    assert tables() == ["HEAD", "DELETE"]  # then the table
    assert cost(lambda: store.delete("small")) == ["HEAD", "HEAD", "DELETE"] and tables() == []


def test_no_sdk_checksums_by_default(open_s3: Opener, s3_server: S3Server, fault_proxy: FaultProxyFactory) -> None:
    """boto3 >= 1.36 adds CRC32 checksums to every upload unless told ``when_required``
    (some radosgw releases refuse them); the store defaults to ``when_required``."""
    proxy = fault_proxy(s3_server)
    store = open_s3(endpoint=proxy.endpoint, part_size="5M", auto_sweep=False)
    data = payload(11 * MiB, seed=3)
    store.add("img", iter([data]))
    uploads = [r for r in proxy.log if r.method == "PUT"]
    assert uploads and not any(k.startswith("x-amz-checksum-") or k == "x-amz-sdk-checksum-algorithm"
                               for r in uploads for k in r.headers)
    other = fault_proxy(s3_server)
    asked = open_s3("crc", endpoint=other.endpoint, request_checksum_calculation="when_supported", auto_sweep=False)
    asked.add("img2", data[:MiB], MiB)
    assert any(k.startswith("x-amz-checksum-") or k == "x-amz-sdk-checksum-algorithm"
               for r in other.log if r.method == "PUT" for k in r.headers)
