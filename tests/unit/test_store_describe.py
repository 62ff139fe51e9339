"""The public face of a store's driver: ``Store.scheme``, ``Store.describe()`` (JSON-able, no
secret) and the deprecated ``Store.driver``; plus the deprecated ``imagestore.stores`` path."""

from __future__ import annotations

import importlib
import json
import sys
import uuid
from pathlib import Path

import pytest

import imagestore
from tests.services.s3 import S3Server

DESCRIBE_KEYS = {"name", "scheme", "driver_class", "capabilities", "backend"}
SECRET = "describe-Secret/" + uuid.uuid4().hex


def test_scheme_and_describe_of_a_file_store(tmp_path: Path) -> None:
    store = imagestore.open_store({"driver": "file", "root": str(tmp_path / "images")}, "files")
    assert store.scheme == "file"
    facts = store.describe()
    assert set(facts) == DESCRIBE_KEYS
    assert facts["name"] == "files" and facts["scheme"] == "file" and facts["driver_class"] == "FileDriver"
    assert facts["capabilities"] == store.capabilities.to_dict()
    assert facts["backend"]["root"] == str(tmp_path / "images")
    assert json.loads(json.dumps(facts)) == facts


def test_scheme_and_describe_of_a_memory_store() -> None:
    store = imagestore.open_store("memory://describe-" + uuid.uuid4().hex[:8])
    assert store.scheme == "memory"
    facts = store.describe()
    assert set(facts) == DESCRIBE_KEYS
    assert (facts["name"], facts["scheme"], facts["driver_class"]) == ("memory", "memory", "MemoryDriver")
    assert json.loads(json.dumps(facts)) == facts


def test_describe_of_a_store_with_a_secret_holds_no_secret(moto_server: S3Server,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    """An S3 store whose secret key comes from the environment: describe() names the endpoint and
    bucket, says keys are configured, and holds the key nowhere."""
    bucket = f"describe-{uuid.uuid4().hex[:12]}"
    moto_server.client().create_bucket(Bucket=bucket)
    monkeypatch.setenv("DESCRIBE_S3_ACCESS", "AKIADESCRIBE")
    monkeypatch.setenv("DESCRIBE_S3_SECRET", SECRET)
    store = imagestore.open_store({"driver": "s3", "endpoint": moto_server.endpoint, "bucket": bucket,
                                   "region": moto_server.region, "access_key": {"env": "DESCRIBE_S3_ACCESS"},
                                   "secret_key": {"env": "DESCRIBE_S3_SECRET"}}, "objects")
    try:
        assert store.scheme == "s3"
        facts = store.describe()
        assert set(facts) == DESCRIBE_KEYS
        assert facts["driver_class"] == "S3Driver"
        assert facts["backend"]["endpoint"] == moto_server.endpoint and facts["backend"]["bucket"] == bucket
        assert facts["backend"]["credentials"] == "configured keys"
        text = json.dumps(facts)
        assert SECRET not in text and SECRET not in repr(facts)
        assert "AKIADESCRIBE" not in text  # the access key id is a secret option too
    finally:
        store.close()
        moto_server.client().delete_bucket(Bucket=bucket)


def test_store_driver_is_deprecated_and_still_the_driver() -> None:
    store = imagestore.open_store("memory://deprecated-" + uuid.uuid4().hex[:8])
    with pytest.warns(DeprecationWarning, match=r"Store\.driver is deprecated"):
        driver = store.driver
    assert driver is store._driver
    assert driver.scheme == store.scheme


def test_imagestore_stores_is_a_deprecated_reexport() -> None:
    sys.modules.pop("imagestore.stores", None)
    with pytest.warns(DeprecationWarning, match=r"imagestore\.stores is deprecated"):
        old = importlib.import_module("imagestore.stores")
    from imagestore import store

    for name in ("Stores", "UnknownStore", "installed_drivers", "load_driver_class", "default_root",
                 "open_store", "ENTRY_POINT_GROUP"):
        assert getattr(old, name) is getattr(store, name), name
