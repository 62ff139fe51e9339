"""The conformance suite on S3: moto's standalone server and Ceph radosgw 16.2."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from tests.services.s3 import S3Server, empty_bucket

from .suite import Backend, ConformanceSuite

TiB = 1 << 40

INTERNAL = ".imagestore/"  # the driver's subtree: data of multipart uploads, leases, probes


def leftovers_in(client: Any, bucket: str) -> list[str]:
    """Every open multipart upload, and every object under the driver's subtree that no
    published image names (leases, probes, data of uploads that were never published)."""
    found = [f"{bucket}: upload {u['Key']}" for page in client.get_paginator("list_multipart_uploads")
             .paginate(Bucket=bucket) for u in page.get("Uploads", [])]
    keys = [o["Key"] for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket)
            for o in page.get("Contents", [])]
    named = set()
    for key in keys:
        if key.startswith(INTERNAL):
            continue
        head = client.head_object(Bucket=bucket, Key=key)
        if head["Metadata"].get("imagestore") == "record":
            doc = json.loads(client.get_object(Bucket=bucket, Key=key)["Body"].read())
            named.add(f"{INTERNAL}data/{key}/{doc['token']}")
    found += [f"{bucket}: object {k}" for k in keys if k.startswith(INTERNAL) and k not in named]
    return found


class S3Backend(Backend):
    """Stores on two fresh buckets of one server (sibling: the second bucket), with keys from
    the environment as a deployment would give them."""

    native_clone_mode = "server_copy"
    # both servers honour a conditional PutObject (atomic_create probed true); S3's 5 TiB object limit
    capabilities = {"write": True, "range_read": True, "cow_clone": False, "server_copy": True,
                    "direct_access": True, "presign": True, "atomic_create": True, "unknown_size": True,
                    "deferred_delete": False, "persistent": True, "adopt": False, "max_object_size": 5 * TiB}

    def __init__(self, server: S3Server, buckets: tuple[str, str], env: tuple[str, str]) -> None:
        self.server = server
        self.buckets = buckets
        self.env = env
        self.client = server.client()

    def _spec(self, bucket: str) -> dict[str, Any]:
        return {"driver": "s3", "endpoint": self.server.endpoint, "region": self.server.region, "bucket": bucket,
                "access_key": {"env": self.env[0]}, "secret_key": {"env": self.env[1]},
                "part_size": "5M", "heartbeat": 1, "connect_timeout": 2, "read_timeout": 10}

    def spec(self) -> dict[str, Any]:
        return self._spec(self.buckets[0])

    def sibling_spec(self) -> dict[str, Any]:
        return self._spec(self.buckets[1])

    def secrets(self) -> list[str]:
        return [self.server.secret_key, self.server.access_key]

    def leftovers(self) -> list[str]:
        return [item for bucket in self.buckets for item in leftovers_in(self.client, bucket)]


@pytest.fixture
def s3_backend(s3_server: S3Server, monkeypatch: pytest.MonkeyPatch) -> Iterator[S3Backend]:
    client = s3_server.client()
    tag = uuid.uuid4().hex[:10]
    buckets = (f"conf-{tag}-images", f"conf-{tag}-vms")
    for bucket in buckets:
        client.create_bucket(Bucket=bucket)
    env = (f"IMAGESTORE_TEST_{s3_server.name.upper()}_ACCESS", f"IMAGESTORE_TEST_{s3_server.name.upper()}_SECRET")
    monkeypatch.setenv(env[0], s3_server.access_key)
    monkeypatch.setenv(env[1], s3_server.secret_key)
    try:
        yield S3Backend(s3_server, buckets, env)
    finally:
        for bucket in buckets:
            empty_bucket(client, bucket)
            client.delete_bucket(Bucket=bucket)


class TestS3(ConformanceSuite):
    """Both servers: moto (no signature checks, 412 on conditional completes) and radosgw
    (signatures checked, conditional completes ignored): the driver's commit is a
    conditional PutObject, which both honour."""

    @pytest.fixture
    def backend(self, s3_backend: S3Backend) -> Backend:
        return s3_backend
