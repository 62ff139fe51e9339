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

    from imagestore.drivers.s3.core import record_body, record_headers
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
    driver: Any = store._driver
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


def test_a_reader_of_a_record_follows_it_into_the_final_object(open_s3: Opener, s3_server: S3Server,
                                                                s3_bucket: str) -> None:
    """A reader that saw the record (the stat before a get) and finds its data gone, because
    the add finished and copied the data over the record, reads the final object instead."""
    client = s3_server.client()
    data = payload(7000, seed=3)
    plant_record(client, s3_bucket, "moving", "1-cccccccccccccccc", data, headers=True)
    store = open_s3(auto_sweep=False)
    driver: Any = store._driver
    assert store.stat("moving").size == len(data)  # the record, remembered for the read that follows
    driver.finish_record("moving", driver.resolve("moving", "moving"))  # what the add does last
    assert client.list_objects_v2(Bucket=s3_bucket, Prefix=".imagestore/").get("KeyCount", 0) == 0
    assert store.get("moving") == data


def test_delete_of_a_record_waits_for_a_live_writer(open_s3: Opener, s3_server: S3Server, s3_bucket: str) -> None:
    """A record whose writer is alive is an add still copying its data over the record:
    deleting it then would let the copy bring the image back, so delete answers InUse; a
    record whose writer is gone (or of an earlier version) is deleted with its data."""
    import pytest

    import imagestore

    client = s3_server.client()
    data = payload(3000, seed=4)
    plant_record(client, s3_bucket, "busy", "1-dddddddddddddddd", data, headers=True)
    client.put_object(Bucket=s3_bucket, Key=".imagestore/uploads/busy/1-dddddddddddddddd", Body=b"{}")
    store = open_s3(auto_sweep=False)
    with pytest.raises(imagestore.InUse):
        store.delete("busy")
    assert store.get("busy") == data
    client.delete_object(Bucket=s3_bucket, Key=".imagestore/uploads/busy/1-dddddddddddddddd")  # the writer ended
    assert store.delete("busy") is imagestore.DeleteOutcome.DELETED
    assert client.list_objects_v2(Bucket=s3_bucket).get("KeyCount", 0) == 0
