"""The object at an image's key: records (the form of adds in progress and of older
versions) and final objects, and how readers cope when one turns into the other."""

from __future__ import annotations

import json
from typing import Any

from tests.services.s3 import S3Server

from .conftest import Opener, payload


def plant_record(client: Any, bucket: str, image: str, token: str, data: bytes, *, headers: bool) -> None:
    """A record and its data as an add of an earlier version wrote them; without ``headers``
    the metadata is only in the record's body (as when it passed 2 KiB)."""
    import hashlib

    from imagestore.drivers.s3_layout import record_body, record_headers
    from imagestore.results import encode_metadata

    meta = encode_metadata({"md5": hashlib.md5(data).hexdigest(), "sha512": hashlib.sha512(data).hexdigest()},
                           None, None)
    client.put_object(Bucket=bucket, Key=f".imagestore/data/{image}/{token}", Body=data)
    extra = record_headers(token, len(data), meta) if headers else {"imagestore": "record",
                                                                       "imagestore-token": token}
    client.put_object(Bucket=bucket, Key=image, Body=record_body(image, token, len(data), meta), Metadata=extra,
                      ContentType="application/vnd.imagestore.record+json")


def test_a_record_replaced_between_head_and_get_is_read_again(open_s3: Opener, s3_server: S3Server,
                                                              s3_bucket: str) -> None:
    """A record whose metadata is only in its body takes a HEAD and a GET pinned to the HEAD's
    ETag; when the record changes in between, the server answers 412 and the store reads the
    key again instead of failing."""
    client = s3_server.client()
    first, second = payload(3000, seed=1), payload(5000, seed=2)
    plant_record(client, s3_bucket, "turn", "1-aaaaaaaaaaaaaaaa", first, headers=False)
    store = open_s3(auto_sweep=False)
    driver: Any = store.driver
    real = driver.client.call
    replaced: list[str] = []

    def call(method: str, what: str, *args: Any, **params: Any) -> Any:
        if method == "get_object" and params.get("Key") == "turn" and "IfMatch" in params and not replaced:
            replaced.append(params["IfMatch"])  # the image changes between the HEAD and this GET
            client.delete_object(Bucket=s3_bucket, Key="turn")
            plant_record(client, s3_bucket, "turn", "2-bbbbbbbbbbbbbbbb", second, headers=False)
        return real(method, what, *args, **params)

    driver.client.call = call
    info = store.stat("turn")
    assert replaced, "the record was never read with a pinned GET: the test proves nothing"
    assert info.size == len(second)
    assert store.get("turn") == second
    assert json.loads(client.get_object(Bucket=s3_bucket, Key="turn")["Body"].read())["size"] == len(second)
