"""An operator switches an S3 backend from glance_store's own S3 driver to imagestore, and back.

One Glance, one database, one bucket, restarted with another ``enabled_backends``
(glance_store's ``s3``, then ``imagestore`` on an s3 store of the same bucket, then
``s3`` again): every image stays readable whole, with the checksums Glance recorded,
whichever driver wrote it (a multipart imagestore add too: its key holds the image's
bytes), and glance_store's delete of an imagestore image leaves nothing in the bucket.
On moto and on radosgw (glance_store's S3 driver runs with this interpreter's boto3,
which the Glance virtualenv lacks, linked in).
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from imagestore import Stores
from imagestore.testing.backends.s3 import leftovers_in
from tests.glance.test_api import assert_checksums
from tests.s3.test_glance import boto_overlay
from tests.services.glance import GlanceFactory
from tests.services.s3 import S3Server

MiB = 1 << 20


def test_switch_s3_to_imagestore_and_back(glance_factory: GlanceFactory, s3_server: S3Server, s3_bucket: str,
                                          tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PYTHONPATH", str(boto_overlay(tmp_path)))  # the Glance processes inherit it
    monkeypatch.setenv("AWS_REQUEST_CHECKSUM_CALCULATION", "when_required")
    monkeypatch.setenv("AWS_RESPONSE_CHECKSUM_VALIDATION", "when_required")
    monkeypatch.setenv("IMAGESTORE_GLANCE_S3_ACCESS", s3_server.access_key)
    monkeypatch.setenv("IMAGESTORE_GLANCE_S3_SECRET", s3_server.secret_key)
    glance_store_s3 = {"legacy": {
        "s3_store_host": s3_server.endpoint, "s3_store_access_key": s3_server.access_key,
        "s3_store_secret_key": s3_server.secret_key, "s3_store_bucket": s3_bucket,
        "s3_store_create_bucket_on_put": "false", "s3_store_bucket_url_format": "path",
        "s3_store_region_name": s3_server.region}}
    name = f"s3switch-{s3_server.name}"
    config = glance_factory.workdir(name) / "imagestore.toml"
    config.write_text(f'[stores.legacy]\ndriver = "s3"\nendpoint = "{s3_server.endpoint}"\n'
                      f'region = "{s3_server.region}"\nbucket = "{s3_bucket}"\n'
                      'access_key = { env = "IMAGESTORE_GLANCE_S3_ACCESS" }\n'
                      'secret_key = { env = "IMAGESTORE_GLANCE_S3_SECRET" }\n')
    server = glance_factory.start(name, {"legacy": "s3"}, glance_store_s3)
    try:
        old_data = os.urandom(5 * MiB + 3)
        old = server.client.create_image(name="old")["id"]
        assert server.client.upload(old, old_data).status == 204

        server.restart(backends={"legacy": "imagestore"},
                       sections={"legacy": {"imagestore_config": config, "imagestore_store": "legacy"}},
                       default_backend="legacy")
        client = server.client
        assert_checksums(client.image(old), old_data)
        assert client.download(old).body == old_data  # what glance_store wrote, read by imagestore
        new_data = os.urandom(20 * MiB + 7)
        new = client.create_image(name="new")["id"]
        assert client.upload(new, iter([new_data[i:i + MiB] for i in range(0, len(new_data), MiB)])).status == 204
        assert_checksums(client.image(new), new_data)

        server.restart(backends={"legacy": "s3"}, sections=glance_store_s3, default_backend="legacy")
        client = server.client
        for iid, data in ((old, old_data), (new, new_data)):
            assert_checksums(client.image(iid), data)
            got = client.download(iid)
            assert got.status == 200 and got.body == data  # including the multipart one imagestore wrote
        assert client.delete_image(new).status == 204  # glance_store deletes an imagestore image
        s3 = s3_server.client()
        (table,) = [o["Key"] for o in s3.list_objects_v2(Bucket=s3_bucket).get("Contents", []) if o["Key"] != old]
        assert table.startswith("imagestore-blocks-") and table.endswith(f"-{new}")  # glance_store leaves it
        with Stores.from_file(config) as stores:  # what an operator's `imagestore sweep` does after a switch back
            assert stores["legacy"].sweep(0).removed == 1
        assert [o["Key"] for o in s3.list_objects_v2(Bucket=s3_bucket).get("Contents", [])] == [old]
        assert leftovers_in(s3, s3_bucket) == []
    finally:
        server.stop()
