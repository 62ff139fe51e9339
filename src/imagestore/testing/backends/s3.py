"""Two s3 stores on buckets ``BASE-images`` and ``BASE-vms`` of one endpoint."""

from __future__ import annotations

import json
import os
import secrets
import time
from typing import Any

from imagestore.location import Location

from .base import STORES, Backend, BackendObject, flipped, secret_value

__all__ = ["INTERNAL", "S3Backend", "client_for", "empty_bucket", "leftovers_in"]

TiB = 1 << 40
INTERNAL = ".imagestore/"  # the driver's subtree: data of multipart uploads, leases, probes


def client_for(table: dict[str, Any], **config: Any) -> Any:
    """A boto3 client of an s3 store table's endpoint, with its keys (path style, SigV4, no
    checksums the servers do not know); ``config``: more botocore Config settings."""
    import boto3
    from botocore.config import Config

    return boto3.client(
        "s3", endpoint_url=table.get("endpoint"), region_name=table.get("region", "us-east-1"),
        aws_access_key_id=secret_value(table.get("access_key")),
        aws_secret_access_key=secret_value(table.get("secret_key")),
        config=Config(signature_version="s3v4", s3={"addressing_style": "path"},
                      request_checksum_calculation="when_required", response_checksum_validation="when_required",
                      **config))


def _objects(client: Any, bucket: str, prefix: str, store: str) -> list[BackendObject]:
    """Open multipart uploads and keys of the driver's subtree no published image names are
    ``temporary``; published keys are ``image``."""
    found = [BackendObject(store, "temporary", f"upload {u['Key']}")
             for page in client.get_paginator("list_multipart_uploads").paginate(Bucket=bucket)
             for u in page.get("Uploads", []) if prefix in u["Key"]]
    keys = [o["Key"] for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket)
            for o in page.get("Contents", []) if prefix in o["Key"]]
    named = set()
    for key in keys:
        if key.startswith(INTERNAL):
            continue
        found.append(BackendObject(store, "image", key))
        head = client.head_object(Bucket=bucket, Key=key)
        if head["Metadata"].get("imagestore") == "record":
            doc = json.loads(client.get_object(Bucket=bucket, Key=key)["Body"].read())
            named.add(f"{INTERNAL}data/{key}/{doc['token']}")
    found += [BackendObject(store, "temporary", k) for k in keys if k.startswith(INTERNAL) and k not in named]
    return found


def leftovers_in(client: Any, bucket: str) -> list[str]:
    """Every open multipart upload, and every object under the driver's subtree that no
    published image names (leases, probes, data of uploads that were never published)."""
    return [f"{bucket}: {o.name if o.name.startswith('upload ') else 'object ' + o.name}"
            for o in _objects(client, bucket, "", bucket) if o.kind == "temporary"]


class S3Backend(Backend):
    """Two buckets of one endpoint (made if missing, removed by :meth:`close`). The keys reach
    the stores through environment variables, as in a deployment (and in child processes)."""

    kind = "s3"
    image_size = (7 << 20) + 517  # over part_size: a multipart upload, not one PutObject
    heartbeat = 1.0
    timeouts = (2.0, 10.0)
    native_clone_mode = "server_copy"
    # moto and radosgw honour a conditional PutObject (atomic_create probed true); S3's 5 TiB object limit
    capabilities = {"write": True, "range_read": True, "cow_clone": False, "server_copy": True,
                    "direct_access": True, "presign": True, "atomic_create": True, "unknown_size": True,
                    "deferred_delete": False, "persistent": True, "adopt": False, "metadata_update": True,
                    "max_object_size": 5 * TiB}

    def __init__(self, endpoint: str, access_key: str, secret_key: str, *, base: str, region: str = "us-east-1",
                 label: str = "s3") -> None:
        self.endpoint = endpoint
        self.region = region
        self.base = base
        self.label = label
        self._keys = (access_key, secret_key)
        self.env = (f"IMAGESTORE_TESTING_{label.upper()}_ACCESS", f"IMAGESTORE_TESTING_{label.upper()}_SECRET")
        os.environ[self.env[0]], os.environ[self.env[1]] = access_key, secret_key
        self.buckets = {store: f"{base}-{store}" for store in STORES}
        self._client: Any = None
        client = self.client()
        for bucket in self.buckets.values():
            try:
                client.create_bucket(Bucket=bucket)
            except Exception as exc:  # noqa: BLE001 - an existing bucket of ours is fine
                if "BucketAlready" not in type(exc).__name__ and "BucketAlready" not in str(exc):
                    raise

    @property
    def sweep_wait(self) -> float:  # type: ignore[override]
        """A dead writer's lease is stale after two heartbeats plus the connect and read timeouts."""
        return 2 * self.heartbeat + sum(self.timeouts) + 1.0

    def client(self) -> Any:
        """A boto3 client of the endpoint (one per backend, closed by :meth:`close`)."""
        if self._client is None:
            self._client = client_for(self.table(STORES[0]))
        return self._client

    def table(self, store: str) -> dict[str, Any]:
        return {"driver": "s3", "endpoint": self.endpoint, "region": self.region, "bucket": self.buckets[store],
                "access_key": {"env": self.env[0]}, "secret_key": {"env": self.env[1]}, "part_size": "5M",
                "heartbeat": self.heartbeat, "connect_timeout": self.timeouts[0], "read_timeout": self.timeouts[1]}

    def secrets(self) -> list[str]:
        return [self._keys[1], self._keys[0]]

    def objects(self, prefix: str) -> list[BackendObject]:
        return [o for store, bucket in self.buckets.items() for o in _objects(self.client(), bucket, prefix, store)]

    def leftovers(self) -> list[str]:
        return [item for bucket in self.buckets.values() for item in leftovers_in(self.client(), bucket)]

    def plant_dead_temporary(self, store: str, image_id: str, size: int) -> str:
        client = self.client()
        key = f"{INTERNAL}data/{image_id}/{int(time.time()) - 7200}-{secrets.token_hex(8)}"
        up = client.create_multipart_upload(Bucket=self.buckets[store], Key=key)
        client.upload_part(Bucket=self.buckets[store], Key=key, UploadId=up["UploadId"], PartNumber=1,
                           Body=os.urandom(min(size, 1 << 20)))
        return key

    def corrupt(self, location: Location, offset: int) -> None:
        """Replace the image's object by a PutObject of the flipped bytes with the same metadata."""
        client = self.client()
        bucket, key = location.path[0], "/".join(location.path[1:])
        got = client.get_object(Bucket=bucket, Key=key)
        body = flipped(got["Body"].read(), offset)
        client.put_object(Bucket=bucket, Key=key, Body=body, Metadata=got["Metadata"],
                          ContentType=got.get("ContentType", "application/octet-stream"))

    def describe(self) -> dict[str, Any]:
        return {"kind": self.kind, "server": self.label, "buckets": self.buckets}

    def close(self) -> None:
        """Close the stores, empty and delete both buckets."""
        super().close()
        if not self.buckets:
            return
        client = self.client()
        for bucket in self.buckets.values():
            empty_bucket(client, bucket)
            client.delete_bucket(Bucket=bucket)
        self.buckets = {}
        client.close()
        self._client = None


def empty_bucket(client: Any, bucket: str) -> None:
    """Abort every multipart upload and delete every object of ``bucket`` (not the bucket)."""
    for page in client.get_paginator("list_multipart_uploads").paginate(Bucket=bucket):
        for up in page.get("Uploads", []):
            client.abort_multipart_upload(Bucket=bucket, Key=up["Key"], UploadId=up["UploadId"])
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket):
        for obj in page.get("Contents", []):
            client.delete_object(Bucket=bucket, Key=obj["Key"])
