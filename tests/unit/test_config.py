"""Configuration: keys named in errors, secrets by env reference, the embedded default."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

import imagestore
from imagestore import ConfigError, Stores
from imagestore.config import Secret, parse_size, validate_driver_options
from imagestore.drivers import Option


def test_embedded_default(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("IMAGESTORE_CONFIG", raising=False)
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path))
    stores = Stores.from_env()
    assert list(stores) == ["local"] and stores.default_name == "local"
    info = stores.default.add("first", b"hello", 5)
    assert str(info.location) == f"file://{tmp_path}/imagestore/first?store=local"
    assert (tmp_path / "imagestore" / "first").read_bytes() == b"hello"


def test_from_file_and_resolve(tmp_path: Path) -> None:
    cfg = tmp_path / "imagestore.toml"
    cfg.write_text(f"""
default = "a"
[stores.a]
driver = "file"
root = "{tmp_path / 'a'}"
max_image_size = "1M"
[stores.b]
driver = "file"
root = "{tmp_path / 'b'}"
checksums = ["sha256"]
""")
    stores = Stores.from_file(cfg)
    info = stores["b"].add("x", b"data", 4)
    assert set(info.checksums) == {"sha256"}
    store, loc = stores.resolve(str(info.location))
    assert store is stores["b"] and loc == info.location
    store, _ = stores.resolve(str(info.location.with_store(None)))  # found by address
    assert store is stores["b"]
    with pytest.raises(imagestore.ImageTooLarge):
        stores.default.add("big", b"x" * (2 << 20))


@pytest.mark.parametrize(("config", "key"), [
    ({"stores": {}}, "stores"),
    ({"stores": {"a": {"driver": "file", "root": "/x"}}, "extra": 1}, "extra"),
    ({"stores": {"a": {"root": "/x"}}}, "stores.a.driver"),
    ({"stores": {"a": {"driver": "nope"}}}, "stores.a.driver"),
    ({"stores": {"a": {"driver": "file"}}}, "stores.a.root"),
    ({"stores": {"a": {"driver": "file", "root": "/x", "rooot": "/y"}}}, "stores.a.rooot"),
    ({"stores": {"a": {"driver": "file", "root": 7}}}, "stores.a.root"),
    ({"stores": {"a": {"driver": "file", "root": "/x", "max_image_size": "lots"}}}, "stores.a.max_image_size"),
    ({"stores": {"a": {"driver": "file", "root": "/x", "checksums": ["md4x"]}}}, "stores.a.checksums"),
    ({"stores": {"a": {"driver": "file", "root": "/x", "allowed_formats": ["exe"]}}}, "stores.a.allowed_formats"),
    ({"stores": {"a": {"driver": "file", "root": "/x", "chunk_size": 10}}}, "stores.a.chunk_size"),
    ({"stores": {"a": {"driver": "file", "root": "/x", "retries": -1}}}, "stores.a.retries"),
    ({"stores": {"a": {"driver": "file", "root": "/x", "inspect": "yes"}}}, "stores.a.inspect"),
    ({"stores": {"a": {"driver": "file", "root": "/x"}, "b": {"driver": "memory"}}}, "default"),
    ({"default": "zz", "stores": {"a": {"driver": "file", "root": "/x"}}}, "default"),
    ({"stores": {"1a": {"driver": "memory"}}}, "stores.1a"),
])
def test_config_errors_name_the_key(config: dict, key: str) -> None:
    with pytest.raises(ConfigError) as err:
        Stores(config)
    assert err.value.key == key
    assert str(err.value).startswith(key)


def test_bad_toml_and_missing_file(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text("stores = [")
    with pytest.raises(ConfigError, match="not valid TOML"):
        Stores.from_file(bad)
    with pytest.raises(ConfigError, match="does not exist"):
        Stores.from_file(tmp_path / "none.toml")


def test_relative_root_refused() -> None:
    with pytest.raises(ConfigError) as err:
        imagestore.open_store({"driver": "file", "root": "rel/dir"}, "x")
    assert err.value.key == "stores.x.root"


OPTS = {"user": Option(str, required=True), "key": Option(str, secret=True), "n": Option(int, default=3)}


def test_secret_from_env_never_printed(monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    monkeypatch.setenv("IMAGESTORE_TEST_KEY", "s3cr3t-value")
    caplog.set_level(logging.DEBUG)
    values = validate_driver_options(OPTS, {"user": "u", "key": {"env": "IMAGESTORE_TEST_KEY"}}, "stores.s")
    secret = values["key"]
    assert isinstance(secret, Secret) and secret.reveal() == "s3cr3t-value"
    for text in (repr(values), str(values), repr(secret), str(secret), f"{secret}", caplog.text):
        assert "s3cr3t-value" not in text
    assert values["n"] == 3


@pytest.mark.parametrize(("value", "message"), [
    ("plain-text", "use { env"),
    ({"env": "IMAGESTORE_NOT_SET_ANYWHERE"}, "IMAGESTORE_NOT_SET_ANYWHERE is not set"),
    ({"file": "/x"}, "env ="),
])
def test_secret_errors(value: object, message: str) -> None:
    with pytest.raises(ConfigError) as err:
        validate_driver_options(OPTS, {"user": "u", "key": value}, "stores.s")
    assert err.value.key == "stores.s.key" and message in str(err.value)
    assert "plain-text" not in str(err.value)


def test_parse_size() -> None:
    assert parse_size("10G", "k") == 10 << 30
    assert parse_size("512MiB", "k") == 512 << 20
    assert parse_size(4096, "k") == 4096
    for bad in ("", "0", "-1", "1X", True, 1.5):
        with pytest.raises(ConfigError):
            parse_size(bad, "k")


def test_open_store_forms(tmp_path: Path) -> None:
    s = imagestore.open_store(f"file://{tmp_path}/r")
    assert s.name == "local" and s.scheme == "file"
    m = imagestore.open_store("memory://shared-ns")
    m2 = imagestore.open_store("memory://shared-ns", "other")
    info = m.add("x", b"1", 1)
    assert m2.get("x") == b"1" and m2.can_clone(info.location.with_store("other"), m).mode == "server_copy"
    with pytest.raises(ConfigError):
        imagestore.open_store("gopher://x")
