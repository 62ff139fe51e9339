"""Errors: a wrong secret is PermissionDenied (radosgw checks signatures), an endpoint that is
down or stalled is BackendUnavailable after the configured retries, configuration mistakes
name their key, and the secret key shows up in no message, log, repr or ``imagestore stores``."""

from __future__ import annotations

import json
import logging
import socket
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import pytest

import imagestore
from imagestore import BackendUnavailable, ConfigError, ImageStoreError, PermissionDenied
from tests.services.faultproxy import FaultProxyFactory
from tests.services.s3 import Radosgw, S3Server, empty_bucket

from .conftest import Opener, s3_spec


def _dead_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_wrong_secret_is_permission_denied(radosgw: Radosgw, rgw_bucket: str, monkeypatch: pytest.MonkeyPatch,
                                           caplog: Any) -> None:
    wrong = "W" + radosgw.secret_key[1:] + "-wrong"
    monkeypatch.setenv("IMAGESTORE_TEST_S3_ACCESS", radosgw.access_key)
    monkeypatch.setenv("IMAGESTORE_TEST_S3_SECRET", wrong)
    caplog.set_level(logging.DEBUG)  # every logger, botocore's included
    with pytest.raises(PermissionDenied) as err:
        imagestore.open_store(s3_spec(radosgw, rgw_bucket), "wrong")
    assert "SignatureDoesNotMatch" in str(err.value) or "403" in str(err.value)
    for text in (str(err.value), repr(err.value), caplog.text):
        assert wrong not in text and radosgw.secret_key not in text


def test_unknown_access_key_is_permission_denied(radosgw: Radosgw, rgw_bucket: str,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("IMAGESTORE_TEST_S3_ACCESS", "NOSUCHACCESSKEY00000")
    monkeypatch.setenv("IMAGESTORE_TEST_S3_SECRET", radosgw.secret_key)
    with pytest.raises(PermissionDenied):
        imagestore.open_store(s3_spec(radosgw, rgw_bucket), "unknown")


def test_endpoint_down_is_backend_unavailable_after_the_retries(s3_server: S3Server, s3_bucket: str,
                                                                fault_proxy: FaultProxyFactory,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    """Nothing listens behind the proxy: each attempt is one refused connection; the store
    gives up after ``retries`` + 1 of them."""
    monkeypatch.setenv("IMAGESTORE_TEST_S3_ACCESS", s3_server.access_key)
    monkeypatch.setenv("IMAGESTORE_TEST_S3_SECRET", s3_server.secret_key)
    proxy = fault_proxy("127.0.0.1", _dead_port())
    with pytest.raises(BackendUnavailable) as err:
        imagestore.open_store(s3_spec(s3_server, s3_bucket, endpoint=proxy.endpoint, retries=2, retry_backoff=0.01),
                              "down")
    assert proxy.requests == 3 and proxy.upstream_failures == 3
    assert "'down'" in str(err.value)
    with pytest.raises(BackendUnavailable):  # and with no proxy at all: connection refused
        imagestore.open_store(s3_spec(s3_server, s3_bucket, endpoint=f"http://127.0.0.1:{_dead_port()}",
                                      retries=1, retry_backoff=0.01), "down")


def test_stalled_endpoint_times_out(open_s3: Opener, s3_server: S3Server, fault_proxy: FaultProxyFactory) -> None:
    proxy = fault_proxy(s3_server)
    store = open_s3(endpoint=proxy.endpoint, read_timeout=0.5, retries=1, retry_backoff=0.01, auto_sweep=False)
    store.add("img", b"data", 4)
    proxy.reset_counters()
    proxy.stall(30, times=None)
    with pytest.raises(BackendUnavailable):
        store.stat("img")
    assert proxy.requests == 2  # one try and one retry, each ended by the read timeout
    proxy.passthrough()


def test_missing_bucket_names_the_key(s3_server: S3Server, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("IMAGESTORE_TEST_S3_ACCESS", s3_server.access_key)
    monkeypatch.setenv("IMAGESTORE_TEST_S3_SECRET", s3_server.secret_key)
    bucket = f"imagestore-missing-{uuid.uuid4().hex[:8]}"
    with pytest.raises(ConfigError) as err:
        imagestore.open_store(s3_spec(s3_server, bucket), "nobucket")
    assert err.value.key == "stores.nobucket.bucket" and bucket in str(err.value)
    store = imagestore.open_store(s3_spec(s3_server, bucket, create_bucket=True), "nobucket")
    try:
        info = store.add("img", b"made", 4)
        assert store.get(info.location) == b"made"
    finally:
        store.close()
        client = s3_server.client()
        empty_bucket(client, bucket)
        client.delete_bucket(Bucket=bucket)


@pytest.mark.parametrize(("options", "key"), [
    ({"endpoint": "ftp://host"}, "endpoint"),
    ({"endpoint": "http://user:pw@host"}, "endpoint"),
    ({"endpoint": "http://host/bucket"}, "endpoint"),
    ({"prefix": "a/../b"}, "prefix"),
    ({"prefix": ".hidden"}, "prefix"),
    ({"presign_ttl": "8d"}, "presign_ttl"),
    ({"part_size": "4M"}, "part_size"),
    ({"verify": "/no/such/ca.pem"}, "verify"),
    ({"bucket": "a/b"}, "bucket"),
    ({"addressing_style": "dns"}, "addressing_style"),
    ({"secret_key": None, "access_key": {"env": "IMAGESTORE_TEST_S3_ACCESS"}}, "secret_key"),
])
def test_bad_options_name_their_key(options: dict[str, Any], key: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("IMAGESTORE_TEST_S3_ACCESS", "access-key-0000")
    monkeypatch.setenv("IMAGESTORE_TEST_S3_SECRET", "secret-key-0000")
    table = {"driver": "s3", "endpoint": "http://127.0.0.1:9", "bucket": "b",
             "access_key": {"env": "IMAGESTORE_TEST_S3_ACCESS"}, "secret_key": {"env": "IMAGESTORE_TEST_S3_SECRET"},
             **options}
    table = {k: v for k, v in table.items() if v is not None}
    with pytest.raises(ConfigError) as err:
        imagestore.Stores({"stores": {"x": table}})["x"]
    assert err.value.key == f"stores.x.{key}", err.value


def test_aws_credential_chain_when_no_keys_are_configured(open_s3: Opener, s3_server: S3Server, s3_bucket: str,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", s3_server.access_key)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", s3_server.secret_key)
    table = {k: v for k, v in s3_spec(s3_server, s3_bucket).items() if k not in ("access_key", "secret_key")}
    store = imagestore.open_store(table, "chain")
    try:
        assert store.describe()["backend"]["credentials"] == "AWS credential chain"
        info = store.add("img", b"chained", 7)
        assert store.get(info.location) == b"chained"
    finally:
        store.close()


def test_secret_in_no_output(open_s3: Opener, s3_server: S3Server, s3_bucket: str, tmp_path: Path,
                             caplog: Any) -> None:
    """Messages, logs (every logger, DEBUG), reprs, locations, describe(), ``imagestore stores``."""
    caplog.set_level(logging.DEBUG)
    secret = s3_server.secret_key
    store = open_s3(part_size="5M")
    info = store.add("img", b"x" * (11 << 20))
    texts = [repr(store), repr(store._driver), str(store.describe()), repr(info), str(info.location),
             repr(store.locate(info.location)), repr(store.capabilities)]
    for op in (lambda: store.add("img", b"y", 1), lambda: store.stat("missing"), lambda: store.get("missing")):
        with pytest.raises(ImageStoreError) as err:
            op()
        texts.append(str(err.value))
    config = tmp_path / "imagestore.toml"
    table = s3_spec(s3_server, s3_bucket)
    config.write_text("[stores.s3]\n" + "".join(f"{k} = {json.dumps(v) if not isinstance(v, dict) else _inline(v)}\n"
                                                 for k, v in table.items()))
    for args in (["stores"], ["--json", "stores"], ["stat", str(info.location)]):
        out = subprocess.run([sys.executable, "-m", "imagestore.cli", "--config", str(config), *args],
                             capture_output=True, text=True, timeout=120)
        assert out.returncode == 0, out.stderr
        texts += [out.stdout, out.stderr]
    assert s3_server.endpoint in texts[-4]  # the JSON listing does describe the endpoint
    texts.append(caplog.text)
    for text in texts:
        assert secret not in text, text


def _inline(table: dict[str, str]) -> str:
    return "{ " + ", ".join(f"{k} = {json.dumps(v)}" for k, v in table.items()) + " }"
