"""The read-only http driver against a real local HTTP(S) server, Range support on and off."""

from __future__ import annotations

import hashlib
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

import imagestore
from imagestore import (
    BackendError,
    ChecksumMismatch,
    InvalidLocation,
    NotFound,
    PermissionDenied,
    Store,
    UnsafeImage,
    Unsupported,
)
from imagestore.config import StoreSettings
from imagestore.drivers.http import HttpDriver
from imagestore.testing.conformance import ReadOnlySuite
from imagestore.testing.payloads import payload

from .server import META_PREFIX, FileServer, make_tls, serve

MiB = 1 << 20


def http_store(url_prefix: str | None = None, name: str = "web", **options: Any) -> Store:
    return Store(HttpDriver(name, url_prefix=url_prefix, **options))


@pytest.fixture
def site(tmp_path: Path) -> Path:
    root = tmp_path / "site"
    (root / "images").mkdir(parents=True)
    return root


@pytest.fixture(params=[True, False], ids=["range-on", "range-off"])
def server(request: pytest.FixtureRequest, site: Path) -> Iterator[FileServer]:
    with serve(site, ranges=request.param) as srv:
        yield srv


def test_stat_and_verified_read(server: FileServer, site: Path) -> None:
    data = payload(5 * MiB + 3, seed=1)
    (site / "images" / "disk.raw").write_bytes(data)
    store = http_store(server.url + "/images")
    info = store.stat("disk.raw")
    assert info.size == len(data) and info.checksums == {}
    assert str(info.location) == f"{server.url}/images/disk.raw?store=web"
    sha = hashlib.sha512(data).hexdigest()
    with store.open("disk.raw", expected={"sha512": sha}) as reader:
        assert b"".join(reader) == data
    with pytest.raises(ChecksumMismatch), store.open("disk.raw", expected={"sha512": "0" * 128}) as reader:
        for _ in reader:
            pass
    assert store.capabilities.write is False
    with pytest.raises(Unsupported):
        store.add("new", b"x", 1)
    with pytest.raises(Unsupported):
        store.delete("disk.raw")
    with pytest.raises(NotFound):
        store.stat("missing.raw")
    store.close()


def test_ranged_reads_use_range_only_when_the_server_honours_it(server: FileServer, site: Path) -> None:
    data = payload(6 * MiB, seed=2)
    (site / "images" / "disk.raw").write_bytes(data)
    store = http_store(server.url + "/images")
    server.log.clear()
    got = store.get("disk.raw", 4 * MiB + 7, 1000, verify=False)
    assert got == data[4 * MiB + 7:4 * MiB + 1007]
    (req,) = server.gets("/images/disk.raw")
    assert req.range == f"bytes={4 * MiB + 7}-{4 * MiB + 1006}"
    if server.ranges:
        assert req.status == 206 and req.sent == 1000
    else:  # the server sends everything from byte 0; the reader skips the prefix
        assert req.done.wait(30), "the server never finished the response"
        assert req.status == 200 and req.sent > 4 * MiB
    store.close()
    no_range = http_store(server.url + "/images", name="norange", range_requests=False)
    assert not no_range.capabilities.range_read
    with pytest.raises(Unsupported):
        no_range.get("disk.raw", 10, 10, verify=False)
    server.log.clear()
    assert no_range.get("disk.raw", verify=False) == data
    assert [r.range for r in server.gets()] == [None]
    no_range.close()


def test_broken_transfer_resumes(server: FileServer, site: Path) -> None:
    data = payload(8 * MiB, seed=3)
    (site / "images" / "disk.raw").write_bytes(data)
    web = Store(HttpDriver("web", url_prefix=server.url + "/images"), StoreSettings(retry_backoff=0.01))
    server.drop_after = 3 * MiB + 5
    server.log.clear()
    with web.open("disk.raw", expected={"md5": hashlib.md5(data).hexdigest()}) as reader:
        assert b"".join(reader) == data
        assert reader.resumes == 1
    first, second = server.gets()
    assert first.range == f"bytes=0-{len(data) - 1}"
    assert second.range == f"bytes={3 * MiB + 5}-{len(data) - 1}"
    if server.ranges:
        assert second.status == 206 and second.sent == len(data) - (3 * MiB + 5)
    else:
        assert second.status == 200 and second.sent == len(data)
    web.close()


def test_redirects(server: FileServer, site: Path) -> None:
    data = payload(MiB, seed=4)
    (site / "images" / "new.raw").write_bytes(data)
    server.redirects["/images/old.raw"] = server.url + "/images/new.raw"
    store = http_store(server.url + "/images")
    assert store.stat("old.raw").size == len(data)
    assert store.get("old.raw", verify=False) == data
    strict = http_store(server.url + "/images", name="strict", follow_redirects=False)
    with pytest.raises(BackendError, match="redirect"):
        strict.stat("old.raw")
    store.close()
    strict.close()


@pytest.fixture
def loopback_only(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The hosts the http driver tried to connect to other than loopback: never reached (the
    connection fails at once), so a test never sends traffic to another address."""
    tried: list[str] = []
    real = aiohttp.TCPConnector._create_direct_connection

    async def guarded(self: aiohttp.TCPConnector, req: Any, *args: Any, **kwargs: Any) -> Any:
        if req.host not in ("127.0.0.1", "localhost", "::1"):
            tried.append(req.host)
            raise aiohttp.ClientConnectorError(req.connection_key, OSError(113, "not reached from the tests"))
        return await real(self, req, *args, **kwargs)

    monkeypatch.setattr(aiohttp.TCPConnector, "_create_direct_connection", guarded)
    return tried


def test_redirects_leaving_the_origin_are_refused(site: Path, tmp_path: Path, loopback_only: list[str]) -> None:
    """A source URL must not steer the reader elsewhere: a redirect to another origin (another
    port) or to a link-local, private or loopback address is refused before it is followed,
    with a message that names the URL without its query; options allow more."""
    data = payload(MiB, seed=7)
    (site / "images" / "disk.raw").write_bytes(data)
    with serve(site) as origin, serve(site) as other:
        port = other.url.rsplit(":", 1)[1]
        origin.redirects["/images/moved.raw"] = f"{other.url}/images/disk.raw?X-Amz-Signature=s3cr3t"
        origin.redirects["/images/metadata.raw"] = "http://169.254.169.254/latest/meta-data/?token=s3cr3t"
        origin.redirects["/images/named.raw"] = f"http://localhost:{port}/images/disk.raw"
        origin.redirects["/images/same.raw"] = f"{origin.url}/images/disk.raw"
        strict = http_store(origin.url + "/images", name="strict")
        assert strict.get("same.raw", verify=False) == data  # the same origin: followed
        for image, target in (("moved.raw", f"{other.url}/images/disk.raw"),
                              ("metadata.raw", "http://169.254.169.254/latest/meta-data/")):
            with pytest.raises(PermissionDenied, match="leaves the origin") as err:
                strict.stat(image)
            assert f"to {target} refused" in str(err.value) and "s3cr3t" not in str(err.value)
            assert err.value.store == "strict" and err.value.image == image
            with pytest.raises(PermissionDenied):
                strict.get(image, verify=False)
        target = imagestore.open_store({"driver": "file", "root": str(tmp_path / "store")}, "images")
        with pytest.raises(PermissionDenied, match="redirect from .* refused"):
            imagestore.replicate(f"{origin.url}/images/moved.raw", to=target, name="moved")
        with pytest.raises(NotFound):
            target.stat("moved")
        anywhere = http_store(origin.url + "/images", name="anywhere", allow_redirects="any")
        for image in ("moved.raw", "metadata.raw", "named.raw"):  # loopback, link-local, a name of loopback
            with pytest.raises(PermissionDenied, match="private, loopback or link-local"):
                anywhere.stat(image)
        assert other.log == [], "a refused redirect was followed"
        allowed = http_store(origin.url + "/images", name="allowed", redirect_hosts=[f"127.0.0.1:{port}"])
        assert allowed.stat("moved.raw").size == len(data)
        assert allowed.get("moved.raw", verify=False) == data
        with pytest.raises(PermissionDenied):
            allowed.stat("metadata.raw")
        assert {(r.method, r.path) for r in other.log} == {("HEAD", "/images/disk.raw"), ("GET", "/images/disk.raw")}
        for s in (strict, anywhere, allowed):
            s.close()
    assert loopback_only == []


def test_tls_verification_and_ca_file(site: Path, tmp_path: Path) -> None:
    data = payload(MiB + 9, seed=5)
    (site / "images" / "disk.raw").write_bytes(data)
    ctx, ca = make_tls(tmp_path)
    with serve(site, tls=ctx) as srv:
        assert srv.url.startswith("https://")
        untrusted = http_store(srv.url + "/images", name="untrusted")
        with pytest.raises(BackendError, match="TLS"):
            untrusted.stat("disk.raw")
        trusted = http_store(srv.url + "/images", name="trusted", ca_file=str(ca))
        assert trusted.get("disk.raw", verify=False) == data
        insecure = http_store(srv.url + "/images", name="insecure", verify_tls=False)
        assert insecure.stat("disk.raw").size == len(data)
        for s in (untrusted, trusted, insecure):
            s.close()


def test_glance_legacy_http_location_drops_credentials(server: FileServer, site: Path) -> None:
    data = payload(MiB, seed=6)
    (site / "images" / "legacy.raw").write_bytes(data)
    store = http_store()  # no prefix: any URL
    host = server.url.split("://", 1)[1]
    legacy = f"http://glance:s3cr3t-pass@{host}/images/legacy.raw"
    loc = store.location(legacy)
    assert "s3cr3t" not in str(loc) and loc.scheme == "http"
    assert store.get(loc, verify=False) == data
    with pytest.raises(InvalidLocation):
        store.stat("legacy.raw")  # no url_prefix: ids mean nothing
    prefixed = http_store(server.url + "/images", name="prefixed")
    with pytest.raises(InvalidLocation):
        prefixed.stat(server.url + "/elsewhere/legacy.raw")
    store.close()
    prefixed.close()


def _qemu_img(*args: str) -> None:
    if shutil.which("qemu-img") is None:
        pytest.fail("qemu-img is missing (apt install qemu-utils)", pytrace=False)
    subprocess.run(["qemu-img", *args], check=True, capture_output=True)


def test_web_download_with_replicate(server: FileServer, site: Path, tmp_path: Path) -> None:
    """Glance's web-download: imported verified, inspected and size-capped, or not at all."""
    good = site / "images" / "disk.qcow2"
    _qemu_img("create", "-q", "-f", "qcow2", str(good), "64M")
    evil = site / "images" / "evil.qcow2"
    _qemu_img("create", "-q", "-f", "qcow2", "-u", "-b", "/etc/passwd", "-F", "raw", str(evil), "64M")
    target = imagestore.open_store({"driver": "file", "root": str(tmp_path / "store")}, "images")
    sha = hashlib.sha512(good.read_bytes()).hexdigest()
    calls: list[int] = []
    rep = imagestore.replicate(f"{server.url}/images/disk.qcow2", to=target, name="web-image",
                               expected={"sha512": sha}, format="qcow2", progress=lambda d, t: calls.append(d))
    assert rep.mode == "stream" and not rep.existing
    assert rep.info.format == "qcow2" and rep.info.virtual_size == 64 * MiB
    assert rep.info.checksums["sha512"] == sha and calls and calls[-1] == good.stat().st_size
    assert target.get("web-image") == good.read_bytes()
    again = imagestore.replicate(f"{server.url}/images/disk.qcow2", to=target, name="web-image",
                                 expected={"sha512": sha})
    assert again.existing and again.mode is None
    with pytest.raises(UnsafeImage):
        imagestore.replicate(f"{server.url}/images/evil.qcow2", to=target, name="evil")
    with pytest.raises(ChecksumMismatch):
        imagestore.replicate(f"{server.url}/images/disk.qcow2", to=target, name="wrong",
                             expected={"sha512": "1" * 128})
    for name in ("evil", "wrong"):
        with pytest.raises(NotFound):
            target.stat(name)
    assert not list((tmp_path / "store" / ".tmp").iterdir())
    capped = imagestore.open_store({"driver": "file", "root": str(tmp_path / "small"), "max_image_size": 1000},
                                   "small")
    with pytest.raises(imagestore.ImageTooLarge):
        imagestore.replicate(f"{server.url}/images/disk.qcow2", to=capped, name="big")


class TestHttpReadOnly(ReadOnlySuite):
    """The read-only conformance part, through a file store whose root the server publishes
    (its xattrs as metadata headers), with Range support on and off."""

    @pytest.fixture(params=[True, False], ids=["range-on", "range-off"])
    def stores(self, request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[Store, Store]]:
        root = tmp_path / "published"
        writable = imagestore.open_store({"driver": "file", "root": str(root)}, "rw")
        with serve(root, ranges=request.param, metadata=True) as srv:
            view = Store(HttpDriver("ro", url_prefix=srv.url, metadata_prefix=META_PREFIX))
            yield writable, view
            view.close()
        writable.close()
