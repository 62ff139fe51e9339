"""An image glance_store's S3 driver wrote (a plain object at ``bucket/<id>``, recorded by Glance
as ``s3://KEY:SECRET@host/bucket/<id>``) resolves to the store serving that bucket and reads
through it, and a store can serve images written either way side by side."""

from __future__ import annotations

import hashlib
import json
import urllib.request
import uuid
from typing import Any

import pytest

import imagestore
from imagestore import AlreadyExists, Unsupported
from imagestore.store.tables import companion
from tests.services.s3 import S3Server

from .conftest import MiB, payload, s3_spec


@pytest.fixture
def stores(s3_server: S3Server, s3_bucket: str, tmp_path: Any, monkeypatch: pytest.MonkeyPatch) -> Any:
    monkeypatch.setenv("IMAGESTORE_TEST_S3_ACCESS", s3_server.access_key)
    monkeypatch.setenv("IMAGESTORE_TEST_S3_SECRET", s3_server.secret_key)
    config = {"default": "local", "stores": {"local": {"driver": "file", "root": str(tmp_path / "files")},
                                             "images": s3_spec(s3_server, s3_bucket)}}
    with imagestore.Stores(config) as all_stores:
        yield all_stores


@pytest.mark.parametrize("form", ["with keys", "without keys"])
def test_glance_object_resolves_and_reads(stores: Any, s3_server: S3Server, s3_bucket: str, form: str) -> None:
    image_id = str(uuid.uuid4())
    data = payload(3 * MiB + 11, seed=1)
    s3_server.client().put_object(Bucket=s3_bucket, Key=image_id, Body=data)  # what glance_store does
    creds = f"{s3_server.access_key}:{s3_server.secret_key}@" if form == "with keys" else ""
    uri = f"s3://{creds}{s3_server.host}:{s3_server.port}/{s3_bucket}/{image_id}"
    store, loc = stores.resolve(uri)
    assert store.name == "images" and loc.image == image_id
    assert s3_server.secret_key not in str(loc)
    info = store.stat(loc)
    assert info.size == len(data) and info.checksums == {}  # glance keeps its checksums in its database
    with pytest.raises(Unsupported):
        store.get(loc, verify=True)  # nothing stored to verify against: the caller passes what glance recorded
    md5 = hashlib.md5(data).hexdigest()
    with store.open(loc, expected={"md5": md5}) as reader:
        assert reader.read() == data
    assert store.get(loc, MiB, 100, verify=False) == data[MiB:MiB + 100]
    with urllib.request.urlopen(store.locate(loc).url, timeout=30) as resp:  # noqa: S310 - the test server
        assert resp.read() == data
    with pytest.raises(AlreadyExists):
        store.add(image_id, b"x", 1)  # the id is taken by glance's object
    assert store.delete(loc) is imagestore.DeleteOutcome.DELETED
    with pytest.raises(imagestore.NotFound):
        store.stat(loc)


def test_imagestore_images_keep_glance_store_layout(stores: Any, s3_server: S3Server, s3_bucket: str) -> None:
    """Every image, small or multipart, is an ordinary object at bucket/<id> that any S3 client
    (glance_store, rclone) reads as the image's bytes, its checksums in its metadata; nothing
    stays under .imagestore/ once the add returned."""
    store = stores["images"]
    small = payload(MiB, seed=2)
    store.add("small", small, len(small))
    client = s3_server.client()
    obj = client.get_object(Bucket=s3_bucket, Key="small")
    assert obj["Body"].read() == small and obj["Metadata"]["imagestore"] == "inline"
    big = payload(20 * MiB, seed=3)
    info = store.add("big", iter([big[i:i + MiB] for i in range(0, len(big), MiB)]))
    assert info.size == len(big)
    obj = client.get_object(Bucket=s3_bucket, Key="big")
    assert obj["ContentLength"] == len(big) and obj["Body"].read() == big
    meta = json.loads(obj["Metadata"]["imagestore-meta"])
    assert meta["checksum.sha512"] == hashlib.sha512(big).hexdigest() == info.checksums["sha512"]
    keys = [o["Key"] for o in client.list_objects_v2(Bucket=s3_bucket).get("Contents", [])]
    assert info.block_table is not None and keys == ["big", companion("big", info.block_table), "small"]
    assert stores.resolve(f"s3://{s3_server.host}:{s3_server.port}/{s3_bucket}/big")[0] is store
    assert store.get(info.location) == big


_GLANCE_STORE = r"""
import json, sys
sys.path.insert(0, sys.argv[1])
from glance_store import location as gl
from peer_child import Upload, _where, make_store
cfg, ops = json.loads(sys.argv[2]), json.loads(sys.argv[3])
store, conf = make_store(cfg)
out = []
for op, uri, path in ops:
    if op == "get":
        it, size = store.get(_where(gl, store, conf, uri))
        with open(path, "wb") as fh:
            for piece in it:
                fh.write(piece)
        out.append(size)
    elif op == "delete":
        store.delete(_where(gl, store, conf, uri))
        out.append(None)
    else:
        up = Upload(path)
        try:
            out.append(store.add(uri, up, 0, "sha512")[0])
        finally:
            up.close()
print(json.dumps(out))
"""


def boto_overlay(tmp: Any) -> Any:
    """A directory of links to this interpreter's boto3 and what it needs that the Glance
    virtualenv lacks (its ``PYTHONPATH`` for glance_store's S3 driver)."""
    import site
    from pathlib import Path

    overlay = Path(tmp) / "overlay"
    overlay.mkdir(exist_ok=True)
    for name in ("boto3", "botocore", "s3transfer", "jmespath"):
        for root in map(Path, site.getsitepackages()):
            if (root / name).exists() and not (overlay / name).exists():
                (overlay / name).symlink_to(root / name)
    return overlay


def glance_store_s3(glance_venv: str, server: S3Server, bucket: str, ops: list[tuple[str, str, str]],
                    tmp: Any) -> list[Any]:
    """Run ``ops`` (get URI -> file, delete URI, add ID <- file) through glance_store 5.7's own S3
    driver, in the Glance virtualenv with this interpreter's boto3 linked in."""
    import json
    import os
    import subprocess
    from pathlib import Path

    overlay = boto_overlay(tmp)
    cfg = {"kind": "s3", "options": {
        "s3_store_host": server.endpoint, "s3_store_access_key": server.access_key,
        "s3_store_secret_key": server.secret_key, "s3_store_bucket": bucket, "s3_store_create_bucket_on_put": False,
        "s3_store_bucket_url_format": "path", "s3_store_region_name": server.region}}
    bench = Path(__file__).resolve().parents[2] / "benchmarks" / "scenarios"
    env = {**os.environ, "PYTHONPATH": str(overlay), "AWS_REQUEST_CHECKSUM_CALCULATION": "when_required",
           "AWS_RESPONSE_CHECKSUM_VALIDATION": "when_required"}
    proc = subprocess.run([f"{glance_venv}/bin/python", "-c", _GLANCE_STORE, str(bench), json.dumps(cfg),
                           json.dumps(ops)], capture_output=True, text=True, env=env, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return list(json.loads(proc.stdout.strip().splitlines()[-1]))


def test_glance_store_s3_driver_reads_and_deletes_imagestore_images(stores: Any, s3_server: S3Server,
                                                                    s3_bucket: str, glance_venv: str,
                                                                    tmp_path: Any) -> None:
    """Rolling back to glance_store's S3 driver: it reads every image imagestore wrote, whole
    and with the right size (a multipart one too), and its delete leaves nothing behind; and
    imagestore reads what glance_store writes. Works both ways, on moto and on radosgw."""
    from imagestore.testing.backends.s3 import leftovers_in

    store = stores["images"]
    small, big = payload(MiB, seed=4), payload(21 * MiB + 5, seed=5)
    store.add("small", small, len(small))
    big_table = store.add("big", iter([big[i:i + MiB] for i in range(0, len(big), MiB)])).block_table
    assert big_table is not None
    gs_data = payload(3 * MiB + 1, seed=6)
    (tmp_path / "gs-in").write_bytes(gs_data)
    base = f"s3://{s3_server.access_key}:{s3_server.secret_key}@{s3_server.host}:{s3_server.port}/{s3_bucket}"
    sizes = glance_store_s3(glance_venv, s3_server, s3_bucket, [
        ("get", f"{base}/small", str(tmp_path / "small")), ("get", f"{base}/big", str(tmp_path / "big")),
        ("add", "from-glance", str(tmp_path / "gs-in"))], tmp_path)
    assert sizes[:2] == [len(small), len(big)]
    assert (tmp_path / "small").read_bytes() == small and (tmp_path / "big").read_bytes() == big
    assert store.get("from-glance", verify=False) == gs_data
    glance_store_s3(glance_venv, s3_server, s3_bucket, [("delete", f"{base}/big", ""),
                                                          ("delete", f"{base}/small", "")], tmp_path)
    client = s3_server.client()
    keys = [o["Key"] for o in client.list_objects_v2(Bucket=s3_bucket).get("Contents", [])]
    # glance_store's driver knows nothing of block tables: big's stays until an imagestore sweep
    assert keys == ["from-glance", companion("big", big_table)]
    assert store.sweep(0).removed == 1
    assert [o["Key"] for o in client.list_objects_v2(Bucket=s3_bucket).get("Contents", [])] == ["from-glance"]
    assert leftovers_in(client, s3_bucket) == []
