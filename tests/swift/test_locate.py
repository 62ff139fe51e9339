"""locate(): a TempURL that plain urllib and curl fetch without a token, ranges included."""

from __future__ import annotations

import shutil
import subprocess
import time
import uuid
import urllib.error
import urllib.request
from datetime import UTC, datetime

import pytest

import imagestore
from imagestore.testing.conformance import assert_expires
from imagestore.testing.payloads import chunks, payload
from tests.services.require import unavailable

from .area import MiB, SwiftArea

OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def test_tempurl_of_an_slo_with_urllib_and_curl_range(area: SwiftArea) -> None:
    store = area.store()
    data = payload(3 * MiB + 100, seed=1)
    info = store.add("img", chunks(data, MiB))
    before = datetime.now(UTC)
    access = store.locate(info.location, ttl=300)
    assert access.kind == "url" and access.url and access.expires_at is not None
    assert_expires(access, before, datetime.now(UTC), 300)
    assert "temp_url_sig=" in access.url and "X-Auth-Token" not in access.url
    assert area.tempurl_key not in access.url and area.saio.key2 not in access.url
    with OPENER.open(access.url, timeout=60) as resp:
        assert resp.read() == data
    curl = shutil.which("curl")
    if curl is None:
        unavailable("curl", "not installed (apt install curl)")
    assert curl is not None
    out = subprocess.run([curl, "-sS", "--fail", "--noproxy", "*", "--range", f"{MiB - 10}-{MiB + 9}", access.url],
                         capture_output=True, timeout=60, check=True)
    assert out.stdout == data[MiB - 10:MiB + 10]


def test_tempurl_expires(area: SwiftArea) -> None:
    store = area.store()
    info = store.add("img", b"short-lived", 11)
    access = store.locate(info.location, ttl=2)
    assert access.url is not None
    with OPENER.open(access.url, timeout=60) as resp:
        assert resp.read() == b"short-lived"
    time.sleep(3.5)
    with pytest.raises(urllib.error.HTTPError) as err:
        OPENER.open(access.url, timeout=60)
    assert err.value.code == 401


def test_default_ttl_and_missing_image(area: SwiftArea) -> None:
    store = area.store(presign_ttl="10m")
    info = store.add("img", b"x", 1)
    before = datetime.now(UTC)
    access = store.locate(info.location)
    assert_expires(access, before, datetime.now(UTC), 600)
    with pytest.raises(imagestore.NotFound):
        store.locate("missing")


def test_without_a_temp_url_key_there_is_no_direct_access(area: SwiftArea) -> None:
    store = area.store(temp_url_key=None)
    assert not store.capabilities.direct_access and not store.capabilities.presign
    info = store.add("img", b"x", 1)
    with pytest.raises(imagestore.Unsupported):
        store.locate(info.location)


def _account_meta(area: SwiftArea) -> dict[str, str]:
    return {k: v for k, v in area.conn.head_account().items() if k.startswith("x-account-meta-")}


def test_opening_changes_the_account_only_with_set_temp_url_key(area: SwiftArea,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    """A store whose temp_url_key the account lacks leaves the account alone (no TempURLs, the
    reason in describe()); with ``set_temp_url_key = true`` it writes the key into a free slot."""
    slots = {"x-account-meta-temp-url-key": "Temp-URL-Key", "x-account-meta-temp-url-key-2": "Temp-URL-Key-2"}
    saved = _account_meta(area)
    monkeypatch.setenv("IMAGESTORE_TEST_SWIFT_FRESH_KEY", fresh := uuid.uuid4().hex)
    try:
        area.conn.post_account(headers={"X-Account-Meta-Temp-URL-Key": area.tempurl_key,  # one slot taken,
                                        "X-Remove-Account-Meta-Temp-URL-Key-2": "x"})     # the other free
        before = _account_meta(area)
        assert before["x-account-meta-temp-url-key"] == area.tempurl_key
        assert fresh not in before.values() and "x-account-meta-temp-url-key-2" not in before
        plain = area.store("plain", temp_url_key={"env": "IMAGESTORE_TEST_SWIFT_FRESH_KEY"}, set_temp_url_key=None)
        assert _account_meta(area) == before
        assert not plain.capabilities.presign and not plain.capabilities.direct_access
        assert "set_temp_url_key" in plain.describe()["backend"]["presign_reason"]
        info = plain.add("img", b"tempurl", 7)
        with pytest.raises(imagestore.Unsupported, match="no direct access"):
            plain.locate(info.location)
        setting = area.store("plain", name="setting", temp_url_key={"env": "IMAGESTORE_TEST_SWIFT_FRESH_KEY"},
                             set_temp_url_key=True)
        after = _account_meta(area)
        assert after == {**before, "x-account-meta-temp-url-key-2": fresh}
        assert setting.capabilities.presign and setting.capabilities.direct_access
        access = setting.locate("img", ttl=60)
        assert access.url is not None and fresh not in access.url
        with OPENER.open(access.url, timeout=60) as resp:
            assert resp.read() == b"tempurl"
    finally:
        for header, slot in slots.items():
            if header in saved:
                area.conn.post_account(headers={f"X-Account-Meta-{slot}": saved[header]})
            else:
                area.conn.post_account(headers={f"X-Remove-Account-Meta-{slot}": "x"})
