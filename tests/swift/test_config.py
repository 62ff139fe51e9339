"""Options of swift stores: every mistake is a ConfigError naming its key, and nothing the
driver shows (repr, describe) holds a secret. No Swift is needed."""

from __future__ import annotations

import os
from typing import Any

import pytest

import imagestore
from imagestore import ConfigError
from imagestore.config import Secret
from imagestore.drivers.swift import SwiftDriver

BASE = {"driver": "swift", "auth_url": "http://127.0.0.1:8080/auth/v1.0", "user": "acct:user",
        "key": {"env": "IMAGESTORE_TEST_CONFIG_KEY"}}


@pytest.fixture(autouse=True)
def _key() -> None:
    os.environ["IMAGESTORE_TEST_CONFIG_KEY"] = "a-very-secret-key"


@pytest.mark.parametrize(("change", "key"), [
    ({"auth_url": "ftp://x"}, "auth_url"),
    ({"auth_version": "2"}, "auth_version"),
    ({"key": "written-in-the-file"}, "key"),
    ({"password": {"env": "IMAGESTORE_TEST_CONFIG_KEY"}}, "key"),
    ({"container": "a/b"}, "container"),
    ({"segment_container": ""}, "segment_container"),
    ({"container_seed": 33}, "container_seed"),
    ({"segment_size": "10K"}, "segment_size"),
    ({"segment_size": "lots"}, "segment_size"),
    ({"temp_url_digest": "md5"}, "temp_url_digest"),
    ({"create_window": "0s"}, "create_window"),
    ({"writer_lease": "3s"}, "writer_lease"),
    ({"read_timeout": 0}, "read_timeout"),
    ({"interface": "private"}, "interface"),
    ({"nonsense": 1}, "nonsense"),
    ({"auth_version": "3"}, "project_name"),
])
def test_mistakes_name_their_key(change: dict[str, Any], key: str) -> None:
    with pytest.raises(ConfigError) as err:
        imagestore.Stores({"stores": {"sw": {**BASE, **change}}})["sw"]
    assert err.value.key == f"stores.sw.{key}", err.value


def test_nothing_shown_holds_a_secret() -> None:
    driver = SwiftDriver("sw", auth_url=BASE["auth_url"], user="acct:user", key=Secret("a-very-secret-key", "K"),
                         temp_url_key=Secret("the-tempurl-key", "T"))
    for text in (repr(driver), repr(driver.describe()), repr(driver.auth), repr(driver.http.auth)):
        assert "a-very-secret-key" not in text and "the-tempurl-key" not in text


def test_locations_and_ownership() -> None:
    driver = SwiftDriver("sw", auth_url=BASE["auth_url"], user="acct:user", key=Secret("k"), container_seed=2,
                         location_aliases=["glance-ref"])
    loc = driver.location_for("ab12cd")
    assert str(loc) == "swift://127.0.0.1:8080/images_ab/ab12cd?store=sw"
    assert imagestore.Location.parse(str(loc)) == loc and driver.owns(loc)
    assert driver.place("ab12cd").segments == "images_segments_ab"
    assert driver.owns(imagestore.Location("swift", "glance-ref", ("images_ab", "ab12cd")))
    for bad in (imagestore.Location("swift", "other:1", ("images_ab", "ab12cd")),
                imagestore.Location("swift", "127.0.0.1:8080", ("images_zz", "ab12cd")),
                imagestore.Location("swift", "127.0.0.1:8080", ("images_ab", "x", "ab12cd")),
                imagestore.Location("s3", "127.0.0.1:8080", ("images_ab", "ab12cd"))):
        assert not driver.owns(bad)
