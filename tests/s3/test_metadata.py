"""Metadata that does not fit S3's 2 KiB of user metadata moves to the record's body: nothing
is lost, and the image is still published with one conditional PutObject."""

from __future__ import annotations

import hashlib

from tests.services.s3 import S3Server

from .conftest import MiB, Opener, leftovers, payload

EVERY = ["md5", "sha1", "sha224", "sha256", "sha384", "sha512", "sha3_224", "sha3_256", "sha3_384", "sha3_512",
         "blake2b", "blake2s"]


def test_every_guaranteed_checksum_fits_in_headers(open_s3: Opener, s3_server: S3Server, s3_bucket: str) -> None:
    """Even all twelve hashlib algorithms take about 1.2 KiB: an inline image, stat in one HEAD."""
    store = open_s3(checksums=EVERY)
    data = payload(MiB, seed=1)
    info = store.add("many", data, len(data))
    meta = s3_server.client().head_object(Bucket=s3_bucket, Key="many")["Metadata"]
    assert meta["imagestore"] == "inline" and sum(len(k) + len(v) for k, v in meta.items()) <= 2048
    assert store.stat("many") == info
    assert info.checksums["sha3_512"] == hashlib.sha3_512(data).hexdigest()


def test_metadata_over_2_kib_goes_to_the_record_body(open_s3: Opener, s3_server: S3Server, s3_bucket: str) -> None:
    """A driver's metadata is opaque: one too big for headers makes the image a record whose
    JSON body holds it (the stat then costs a HEAD and a GET)."""
    store = open_s3()
    driver = store._driver
    data = payload(MiB, seed=2)
    writer = driver.open_writer("big-meta", len(data))
    writer.write(memoryview(data))
    metadata = {"checksum.sha512": hashlib.sha512(data).hexdigest(), "note": "n" * 3000, "format": "raw"}
    location = writer.commit(metadata)
    head = s3_server.client().head_object(Bucket=s3_bucket, Key="big-meta")
    assert head["Metadata"]["imagestore"] == "record" and "imagestore-meta" not in head["Metadata"]
    stored = driver.stat(location)
    assert stored.size == len(data) and dict(stored.metadata) == metadata
    assert store.get(location) == data  # verified against the sha512 read from the body
    assert leftovers(s3_server.client(), s3_bucket) == []
