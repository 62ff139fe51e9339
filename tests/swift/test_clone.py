"""Server-side clones: every segment copied inside Swift, so deleting the source or the clone,
in either order, never breaks the other; other accounts and backends get a verified stream."""

from __future__ import annotations

import json
import os
import socket
import time

import pytest

import imagestore
from imagestore.drivers.swift import auth as swift_auth
from imagestore.testing.payloads import chunks, payload
from tests.services.faultproxy import FaultProxyFactory

from .area import MiB, SwiftArea


def segment_names(area: SwiftArea, container: str, image: str) -> list[str]:
    body = area.conn.get_object(container, image, query_string="multipart-manifest=get")[1]
    return [entry["name"] for entry in json.loads(body)]


@pytest.mark.parametrize("first", ["source", "clone"])
def test_deleting_either_leaves_the_other_whole(area: SwiftArea, first: str) -> None:
    store = area.store()
    data = payload(7 * MiB + 3, seed=1)
    info = store.add("src", chunks(data, MiB))
    res = store.clone(info.location, name="copy")
    assert res.mode == "server_copy"
    ours, theirs = segment_names(area, area.container(), "src"), segment_names(area, area.container(), "copy")
    assert len(ours) == len(theirs) == 8 and not set(ours) & set(theirs)  # no shared segment
    assert store.stat(res.location).checksums == info.checksums
    doomed, kept = (info.location, res.location) if first == "source" else (res.location, info.location)
    store.delete(doomed)
    assert store.get(kept) == data  # verified against the stored sha512
    assert store.get(kept, 6 * MiB - 2, MiB + 4) == data[6 * MiB - 2:7 * MiB + 2]
    remaining = {f"/{area.container()}_segments/{r['name']}" for r in area.objects(area.container() + "_segments")}
    assert remaining == set(theirs if first == "source" else ours)  # exactly the deleted image's segments went
    store.delete(kept)
    assert area.objects(area.container() + "_segments") == [] and area.objects(area.container()) == []


def test_clone_of_a_plain_image_and_of_an_empty_one(area: SwiftArea) -> None:
    store = area.store()
    small = store.add("small", b"tiny image", 10)
    empty = store.add("empty", b"", 0)
    for info in (small, empty):
        res = store.clone(info.location, name=info.location.image + "-c")
        assert res.mode == "server_copy" and store.get(res.location) == store.get(info.location)
        store.delete(info.location)
        assert store.get(res.location, verify=True) == (b"tiny image" if info is small else b"")
    assert area.leftovers() == []


def test_clone_into_another_container_of_the_account(area: SwiftArea) -> None:
    store, other = area.store("main"), area.store("other")
    data = payload(3 * MiB, seed=2)
    info = store.add("img", data)
    check = store.can_clone(info.location, other)
    assert check.mode == "server_copy" and "3 segments" in check.reason
    res = store.clone(info.location, other, name="img")
    assert res.location.store == "other" and other.get(res.location) == data
    assert all(n.startswith(f"/{area.container('other')}_segments/img/")
               for n in segment_names(area, area.container("other"), "img"))


def test_other_accounts_and_backends_get_a_verified_stream(area: SwiftArea) -> None:
    store = area.store()
    data = payload(2 * MiB + 1, seed=3)
    info = store.add("img", data)
    os_key = "IMAGESTORE_TEST_SWIFT_KEY_AUTH_TEST"
    os.environ[os_key] = area.saio.key
    foreign = area.store("foreign", user=area.saio.user, key={"env": os_key}, temp_url_key=None)
    check = store.can_clone(info.location, foreign)
    assert check.mode == "stream" and check.code is imagestore.CloneRefusal.DIFFERENT_ACCOUNT  # same cluster
    assert foreign._driver.auth.storage_url in check.reason  # type: ignore[attr-defined]
    assert not store.can_clone(info.location, foreign, mode="server_copy").possible
    with pytest.raises(imagestore.Unsupported):
        store.clone(info.location, foreign, mode="server_copy")
    res = store.clone(info.location, foreign, name="img")
    assert res.mode == "stream" and foreign.get(res.location) == data
    memory = imagestore.open_store("memory://swift-clone", "scratch")
    assert store.can_clone(info.location, memory).code == "different_backend"


def test_another_storage_host_is_a_different_endpoint(area: SwiftArea, fault_proxy: FaultProxyFactory) -> None:
    """The same account reached through another proxy (another storage URL host) is another
    endpoint, not another account: ``different_endpoint``, and auto mode streams verified."""
    store = area.store()
    data = payload(MiB + 7, seed=5)
    info = store.add("img", data)
    proxy = fault_proxy("127.0.0.1", area.saio.proxy_port)
    far = area.store("far", auth_url=f"{proxy.endpoint}/auth/v1.0")
    there = far._driver.auth.storage_url  # type: ignore[attr-defined]
    assert there.startswith(proxy.endpoint) and there.endswith("/AUTH_test2")  # same account, other host
    check = store.can_clone(info.location, far)
    assert check.mode == "stream" and check.code is imagestore.CloneRefusal.DIFFERENT_ENDPOINT, check
    assert check.code == "different_endpoint" and there in check.reason
    assert store.can_clone(info.location, far, mode="server_copy").code == "different_endpoint"
    res = store.clone(info.location, far, name="img")
    assert res.mode == "stream" and far.get(res.location) == data


def test_an_unreachable_auth_service_is_unreachable(area: SwiftArea, fault_proxy: FaultProxyFactory,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    """The target's token has expired and its auth service is down: the accounts cannot be
    compared, so ``can_clone`` says ``unreachable`` (no exception) and auto mode would stream."""
    store = area.store()
    info = store.add("img", b"an image", 8)
    proxy = fault_proxy("127.0.0.1", area.saio.proxy_port)
    target = area.store("down", auth_url=f"{proxy.endpoint}/auth/v1.0", retries=0)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        dead = s.getsockname()[1]  # nothing listens there once the socket is closed
    proxy.retarget("127.0.0.1", dead)

    class Later:  # a day later: every token has expired (tempauth's default lifetime)
        @staticmethod
        def monotonic() -> float:
            return time.monotonic() + 2 * 86400

    monkeypatch.setattr(swift_auth, "time", Later)  # the source renews its token directly, the target cannot
    check = store.can_clone(info.location, target)
    assert check.code is imagestore.CloneRefusal.UNREACHABLE and check.mode == "stream", check
    assert "cannot authenticate" in check.reason and proxy.endpoint in check.reason
    assert not store.can_clone(info.location, target, mode="server_copy").possible


def test_a_failed_copy_leaves_nothing(area: SwiftArea) -> None:
    """The source's segments vanish mid-clone (deleted behind the store's back): the clone
    fails and removes every segment it copied."""
    store = area.store()
    info = store.add("img", payload(6 * MiB, seed=4))
    names = segment_names(area, area.container(), "img")
    area.conn.delete_object(area.container() + "_segments", names[4].split("/", 2)[2])
    with pytest.raises(imagestore.NotFound):
        store.clone(info.location, name="copy", mode="server_copy")
    with pytest.raises(imagestore.NotFound):
        store.stat("copy")
    assert not [r for r in area.objects(area.container() + "_segments") if r["name"].startswith("copy/")]
