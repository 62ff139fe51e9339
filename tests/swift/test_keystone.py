"""Keystone v3 end to end: a real Keystone (tests/swift/keystone.py) gives the token and the
object-store endpoint from its catalog; the data goes to a Swift proxy that validates the
token with Keystone. A wrong password is PermissionDenied; a revoked token is renewed."""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import pytest

import imagestore
from imagestore import PermissionDenied
from imagestore.drivers.swift import SwiftDriver
from imagestore.testing.payloads import chunks, payload

from .area import MiB
from .keystone import KeystoneSwift

PASSWORD_ENV = "IMAGESTORE_TEST_KEYSTONE_PASSWORD"


@pytest.fixture
def v3_spec(keystone_swift: KeystoneSwift) -> Iterator[dict[str, Any]]:
    os.environ[PASSWORD_ENV] = keystone_swift.password
    container = f"ks-{os.urandom(4).hex()}"
    yield {"driver": "swift", "auth_version": "3", "auth_url": keystone_swift.auth_url,
           "user": keystone_swift.user, "password": {"env": PASSWORD_ENV}, "project_name": keystone_swift.project,
           "user_domain_name": "Default", "project_domain_name": "Default", "region": "RegionOne",
           "interface": "public", "container": container, "segment_size": "1M", "create_window": "1s",
           "writer_lease": "15s"}


def test_v3_store_round_trip(keystone_swift: KeystoneSwift, v3_spec: dict[str, Any]) -> None:
    store = imagestore.open_store(v3_spec, "ks")
    try:
        driver = store._driver
        assert isinstance(driver, SwiftDriver)
        assert driver.auth.storage_url == f"{keystone_swift.proxy_url}/v1/AUTH_{keystone_swift.project_id}"
        data = payload(3 * MiB + 11, seed=1)
        info = store.add("img", chunks(data, MiB))
        assert store.get(info.location) == data
        assert store.clone(info.location, name="copy").mode == "server_copy"
        assert store.get("copy") == data
        store.delete(info.location)
        store.delete("copy")
        assert keystone_swift.password not in repr(driver.describe()) + repr(store) + repr(driver)
    finally:
        store.close()


def test_v3_revoked_token_is_renewed(keystone_swift: KeystoneSwift, v3_spec: dict[str, Any]) -> None:
    store = imagestore.open_store(v3_spec, "ks")
    try:
        driver = store._driver
        assert isinstance(driver, SwiftDriver)
        data = payload(6 * MiB, seed=2)
        revoked = []

        def source() -> Iterator[bytes]:
            for i, chunk in enumerate(chunks(data, MiB)):
                if i == 3:
                    token = driver.auth.credentials()[1]
                    keystone_swift.revoke(token)
                    revoked.append(token)
                yield chunk

        before = driver.auth.renewals
        info = store.add("img", source())
        assert revoked and driver.auth.renewals == before + 1
        assert driver.auth.credentials()[1] != revoked[0]
        assert store.get(info.location) == data
        store.delete(info.location)
    finally:
        store.close()


def test_v3_wrong_password_is_permission_denied(keystone_swift: KeystoneSwift, v3_spec: dict[str, Any]) -> None:
    os.environ["IMAGESTORE_TEST_KEYSTONE_WRONG"] = "wrong-password-7f3a"
    with pytest.raises(PermissionDenied) as err:
        imagestore.open_store({**v3_spec, "password": {"env": "IMAGESTORE_TEST_KEYSTONE_WRONG"}}, "ks")
    assert "wrong-password-7f3a" not in str(err.value) and keystone_swift.user in str(err.value)
