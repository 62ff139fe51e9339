"""The Swift SAIO is a real Swift with what the Swift driver relies on.

Also pins down Swift behaviour the driver has to live with (If-None-Match is checked
when a PUT starts, not when it commits), and the safety of the start/stop scripts.
"""

from __future__ import annotations

import hashlib
import http.client
import json
import os
import shutil
import socket
import subprocess
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from pathlib import Path
from typing import Any

import pytest

from .ports import free_ports
from .swift import SCRIPTS, SwiftSAIO, SwiftSAIOFactory

MiB = 1 << 20
OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def answer_of(call: Any, *args: Any, **kwargs: Any) -> tuple[int, bytes]:
    """HTTP status and error body (b"" on success) of a swiftclient call, whether it succeeds or raises."""
    from swiftclient.exceptions import ClientException

    resp: dict[str, Any] = {}
    try:
        call(*args, response_dict=resp, **kwargs)
    except ClientException as exc:
        return int(exc.http_status), exc.http_response_content or b""
    return int(resp["status"]), b""


def status_of(call: Any, *args: Any, **kwargs: Any) -> int:
    return answer_of(call, *args, **kwargs)[0]


def http_status(url: str, method: str = "GET", headers: dict[str, str] | None = None,
                data: bytes | None = None) -> tuple[int, bytes]:
    req = urllib.request.Request(url, data=data, method=method, headers=headers or {})
    try:
        with OPENER.open(req, timeout=60) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


@pytest.fixture
def conn(swift_saio: SwiftSAIO) -> Any:
    return swift_saio.admin_conn()


@pytest.fixture
def container(conn: Any) -> Any:
    """A fresh container (and its _segments twin) in AUTH_test, emptied and removed after the test."""
    name = "t-" + uuid.uuid4().hex[:10]
    conn.put_container(name)
    conn.put_container(name + "_segments")
    yield name
    for c in (name, name + "_segments"):
        for obj in conn.get_container(c, full_listing=True)[1]:
            conn.delete_object(c, obj["name"])
        conn.delete_container(c)


def put_slo(conn: Any, container: str, name: str, parts: list[bytes], **kwargs: Any) -> list[dict[str, Any]]:
    manifest = []
    for i, part in enumerate(parts):
        seg = f"{name}/{i:08d}"
        etag = conn.put_object(container + "_segments", seg, contents=part)
        manifest.append({"path": f"/{container}_segments/{seg}", "etag": etag, "size_bytes": len(part)})
    conn.put_object(container, name, contents=json.dumps(manifest), query_string="multipart-manifest=put", **kwargs)
    return manifest


# ---------------------------------------------------------------- the service


def test_info_lists_the_middlewares_and_limits(swift_saio: SwiftSAIO) -> None:
    info = swift_saio.info()
    assert info["swift"]["version"] == swift_saio.version == "2.38.3"
    for capability in ("slo", "tempurl", "bulk_delete", "bulk_upload", "container_quotas", "tempauth"):
        assert capability in info, capability
    assert {"sha256", "sha512"} <= set(info["tempurl"]["allowed_digests"])
    # the session SAIO has Swift's defaults: 1000 segments, an 8 MiB manifest, 5 GiB + 2 bytes per object
    assert info["slo"]["max_manifest_segments"] == swift_saio.max_manifest_segments
    assert info["slo"]["max_manifest_size"] == swift_saio.max_manifest_size
    assert info["slo"]["min_segment_size"] == 1
    assert info["swift"]["max_file_size"] == int(swift_saio.constraints.get("max_file_size", 5 * 1024**3 + 2))


def test_v1_auth_of_the_three_users(swift_saio: SwiftSAIO) -> None:
    url, token = swift_saio.auth()
    assert url == swift_saio.storage_url == f"{swift_saio.proxy_url}/v1/AUTH_test" and token
    url2, token2 = swift_saio.auth(swift_saio.user2, swift_saio.key2)
    assert url2 == swift_saio.storage_url2 == f"{swift_saio.proxy_url}/v1/AUTH_test2" and token2 != token
    url3, token3 = swift_saio.auth(swift_saio.nonadmin_user, swift_saio.nonadmin_key)
    assert url3 == swift_saio.storage_url

    with pytest.raises(urllib.error.HTTPError) as bad:
        swift_saio.auth(swift_saio.user, "wrong")
    assert bad.value.code == 401
    name = "auth-" + uuid.uuid4().hex[:8]
    assert http_status(f"{url}/{name}", "PUT", {"X-Auth-Token": token3})[0] == 403  # no role: no write
    assert http_status(f"{url}/{name}", "PUT", {"X-Auth-Token": token})[0] == 201
    try:
        assert http_status(f"{url}/{name}", "GET", {"X-Auth-Token": token3})[0] == 403
        assert http_status(f"{url}/{name}", "GET", {"X-Auth-Token": token2})[0] == 403  # other account
        assert http_status(f"{url}/{name}", "GET")[0] == 401
    finally:
        assert http_status(f"{url}/{name}", "DELETE", {"X-Auth-Token": token})[0] == 204


def test_put_get_and_ranges(conn: Any, container: str) -> None:
    data = os.urandom(3 * MiB + 17)
    etag = conn.put_object(container, "img", contents=data)
    assert etag == hashlib.md5(data).hexdigest()
    assert conn.get_object(container, "img")[1] == data

    resp: dict[str, Any] = {}
    start, end = MiB - 5, 2 * MiB + 5
    headers, part = conn.get_object(container, "img", headers={"Range": f"bytes={start}-{end}"}, response_dict=resp)
    assert resp["status"] == 206
    assert headers["content-range"] == f"bytes {start}-{end}/{len(data)}"
    assert part == data[start:end + 1]
    assert conn.get_object(container, "img", headers={"Range": "bytes=-100"})[1] == data[-100:]
    assert conn.get_object(container, "img", headers={"Range": f"bytes={len(data) - 3}-"})[1] == data[-3:]
    assert status_of(conn.get_object, container, "img", headers={"Range": f"bytes={len(data)}-"}) == 416


def test_slo_of_three_segments_reads_whole_and_across_boundaries(conn: Any, container: str) -> None:
    parts = [os.urandom(MiB), os.urandom(MiB), os.urandom(1000)]
    whole = b"".join(parts)
    put_slo(conn, container, "slo", parts)

    head = conn.head_object(container, "slo")
    assert head["x-static-large-object"] == "True"
    assert int(head["content-length"]) == len(whole)
    assert conn.get_object(container, "slo")[1] == whole
    for start, end in ((MiB - 3, MiB + 3), (MiB - 1, 2 * MiB + 10), (2 * MiB, len(whole) - 1)):
        got = conn.get_object(container, "slo", headers={"Range": f"bytes={start}-{end}"})[1]
        assert got == whole[start:end + 1], (start, end)
    listing = json.loads(conn.get_object(container, "slo", query_string="multipart-manifest=get")[1])
    assert [s["bytes"] for s in listing] == [len(p) for p in parts]

    conn.delete_object(container, "slo", query_string="multipart-manifest=delete")  # manifest and segments
    assert conn.get_container(container + "_segments")[1] == []


# ---------------------------------------------------------------- If-None-Match


def test_if_none_match_star_refuses_a_put_over_an_existing_object(conn: Any, container: str) -> None:
    inm = {"If-None-Match": "*"}
    assert status_of(conn.put_object, container, "o", b"first", headers=inm) == 201
    assert status_of(conn.put_object, container, "o", b"second", headers=inm) == 412
    assert conn.get_object(container, "o")[1] == b"first"


def test_if_none_match_star_refuses_an_slo_manifest_put_over_an_existing_object(conn: Any, container: str) -> None:
    inm = {"If-None-Match": "*"}
    first = [b"a" * 100, b"b" * 100, b"c" * 10]
    put_slo(conn, container, "slo", first, headers=inm)  # raises unless 201
    manifest = json.dumps(put_slo(conn, container, "other", [b"x" * 50, b"y" * 50, b"z"]))

    # over an existing SLO, and over an existing plain object: 412, nothing replaced
    assert status_of(conn.put_object, container, "slo", manifest, query_string="multipart-manifest=put",
                     headers=inm) == 412
    assert conn.get_object(container, "slo")[1] == b"".join(first)
    conn.put_object(container, "plain", contents=b"plain")
    assert status_of(conn.put_object, container, "plain", manifest, query_string="multipart-manifest=put",
                     headers=inm) == 412
    assert conn.get_object(container, "plain")[1] == b"plain"
    # and a plain PUT over an existing SLO manifest
    assert status_of(conn.put_object, container, "slo", b"x", headers=inm) == 412


@pytest.mark.parametrize("second", ["plain", "slo"])
def test_if_none_match_is_checked_when_a_put_starts_not_when_it_commits(
        swift_saio: SwiftSAIO, conn: Any, container: str, second: str) -> None:
    """Two creators of one name can both get 201: If-None-Match does not make create atomic.

    The object server checks for an existing object when the PUT arrives, before the
    body; the proxy gives every request its timestamp when it starts, and the newest
    timestamp wins. So the PUT that started first and finished last got 201 too, but
    its bytes are gone. The same holds when the second creator PUTs an SLO manifest.
    """
    storage_url, token = swift_saio.auth()
    path = urllib.parse.urlparse(storage_url).path + f"/{container}/race"
    first = http.client.HTTPConnection("127.0.0.1", swift_saio.proxy_port, timeout=60)
    first.putrequest("PUT", path)
    for k, v in {"X-Auth-Token": token, "If-None-Match": "*", "Content-Length": "10"}.items():
        first.putheader(k, v)
    first.endheaders()
    first.send(b"AAAAA")  # half the body: the object server has checked and is reading
    time.sleep(0.5)
    try:
        if second == "plain":
            assert status_of(conn.put_object, container, "race", b"BBBBBBBBBB", headers={"If-None-Match": "*"}) == 201
        else:
            put_slo(conn, container, "race", [b"BBBBB", b"BBBBB", b"B"], headers={"If-None-Match": "*"})
        first.send(b"AAAAA")
        resp = first.getresponse()
        resp.read()
        assert resp.status == 201
    finally:
        first.close()
    # the later-started PUT's bytes
    assert conn.get_object(container, "race")[1] == (b"BBBBBBBBBB" if second == "plain" else b"BBBBBBBBBBB")


# ---------------------------------------------------------------- TempURL, quotas


def test_tempurl_sha256_and_sha512_fetch_without_a_token(swift_saio: SwiftSAIO, conn: Any, container: str) -> None:
    from swiftclient.utils import generate_temp_url

    data = os.urandom(MiB + 3)
    conn.put_object(container, "img", contents=data)
    key = uuid.uuid4().hex
    conn.post_account(headers={"X-Account-Meta-Temp-URL-Key": key})
    try:
        path = urllib.parse.urlparse(swift_saio.storage_url).path + f"/{container}/img"
        for digest in ("sha256", "sha512"):
            status, body = http_status(swift_saio.proxy_url + generate_temp_url(path, 300, key, "GET", digest=digest))
            assert (status, body == data) == (200, True), digest
        # sha1 is not among the allowed digests; a wrong key and no signature are refused
        assert http_status(swift_saio.proxy_url + generate_temp_url(path, 300, key, "GET", digest="sha1"))[0] == 401
        assert http_status(swift_saio.proxy_url + generate_temp_url(path, 300, "wrong", "GET"))[0] == 401
        assert http_status(swift_saio.proxy_url + path)[0] == 401
    finally:
        conn.post_account(headers={"X-Remove-Account-Meta-Temp-URL-Key": "x"})


def test_container_quota_full_answers_413(conn: Any, container: str) -> None:
    """Quotas are checked against the proxy's cached container usage, which lives 1 s here."""
    conn.post_container(container, headers={"X-Container-Meta-Quota-Bytes": "100"})
    assert status_of(conn.put_object, container, "a", b"x" * 60) == 201
    time.sleep(1.2)
    assert answer_of(conn.put_object, container, "b", b"x" * 41) == (413, b"Upload exceeds quota.")
    assert status_of(conn.put_object, container, "b", b"x" * 40) == 201
    conn.post_container(container, headers={"X-Remove-Container-Meta-Quota-Bytes": "x",
                                            "X-Container-Meta-Quota-Count": "2"})
    assert answer_of(conn.put_object, container, "c", b"x") == (413, b"Upload exceeds quota.")


# ---------------------------------------------------------------- faults


def test_paused_object_server_gives_503_then_recovers(swift_saio: SwiftSAIO, conn: Any, container: str) -> None:
    conn.put_object(container, "img", contents=b"before")
    with swift_saio.object_server_paused():
        t0 = time.monotonic()
        assert status_of(conn.get_object, container, "img") == 503
        waited = time.monotonic() - t0
        assert status_of(conn.put_object, container, "new", b"during") == 503
    # the proxy waited node_timeout for the object server, then gave up
    assert swift_saio.node_timeout * 0.9 <= waited < swift_saio.node_timeout + 10, waited
    assert conn.get_object(container, "img")[1] == b"before"
    assert status_of(conn.put_object, container, "new", b"after") == 201
    assert conn.get_object(container, "new")[1] == b"after"


# ---------------------------------------------------------------- constraints from the work dir


def test_constraints_and_slo_limits_come_from_the_workdir(swift_saio_factory: SwiftSAIOFactory) -> None:
    saio = swift_saio_factory(node_timeout=2, constraints={"max_file_size": MiB, "max_meta_count": 7},
                              max_manifest_segments=3, max_manifest_size=4096)
    try:
        info = saio.info()
        assert (info["swift"]["max_file_size"], info["swift"]["max_meta_count"]) == (MiB, 7)
        assert (info["slo"]["max_manifest_segments"], info["slo"]["max_manifest_size"]) == (3, 4096)
        c = saio.admin_conn()
        c.put_container("small")
        c.put_container("small_segments")
        assert status_of(c.put_object, "small", "fits", b"x" * MiB) == 201
        assert status_of(c.put_object, "small", "big", b"x" * (MiB + 1)) == 413
        assert status_of(c.put_object, "small", "big", (b"x" * (MiB + 1) for _ in range(1))) == 413  # chunked
        manifest = put_slo(c, "small", "three", [b"a", b"b", b"c"])
        four = json.dumps(manifest + manifest[:1])
        assert answer_of(c.put_object, "small", "four", four, query_string="multipart-manifest=put") == (
            413, b"Number of object-backed segments must be <= 3")
        big = json.dumps([{**manifest[0], "path": manifest[0]["path"] + "?" + "x" * 4096}])
        assert answer_of(c.put_object, "small", "big", big, query_string="multipart-manifest=put") == (
            413, b"Manifest File > 4096 bytes")
        meta = {f"X-Object-Meta-K{i}": "v" for i in range(8)}
        assert status_of(c.put_object, "small", "meta", b"", headers=meta) == 400
    finally:
        swift_saio_factory.stop(saio)
    assert not saio.workdir.exists()


def test_from_dir_reads_back_the_session_saio(swift_saio: SwiftSAIO) -> None:
    assert SwiftSAIO.from_dir(swift_saio.workdir) == swift_saio
    assert all(swift_saio.pid(name) > 1 for name in ("memcached", "account", "container", "object", "proxy"))


# ---------------------------------------------------------------- script safety (no Swift needed)


def test_start_refuses_a_busy_port() -> None:
    d = tempfile.mkdtemp(prefix="swift-", dir="/tmp")
    try:
        with socket.socket() as busy:
            busy.bind(("127.0.0.1", 0))
            busy.listen()
            port = busy.getsockname()[1]
            others = {n: str(p) for n, p in zip(("SWIFT_OBJECT_PORT", "SWIFT_CONTAINER_PORT", "SWIFT_ACCOUNT_PORT",
                                                 "SWIFT_MEMCACHED_PORT"), free_ports(4), strict=True)}
            proc = subprocess.run(["bash", str(SCRIPTS / "swift-start.sh"), d], capture_output=True, text=True,
                                  env={**os.environ, **others, "SWIFT_PROXY_PORT": str(port)}, timeout=60)
        assert proc.returncode != 0
        assert f"port(s) in use on 127.0.0.1: {port}" in proc.stderr
        assert not any(Path(d, "pids").iterdir())
    finally:
        subprocess.run(["bash", str(SCRIPTS / "swift-stop.sh"), d], capture_output=True, timeout=60, check=True)
    assert not Path(d).exists()


def test_stop_kills_only_the_recorded_process_and_only_removes_its_own_dir() -> None:
    stop = ["bash", str(SCRIPTS / "swift-stop.sh")]
    base = Path(tempfile.mkdtemp(prefix="swift-stop-test-", dir="/tmp"))
    foreign = base / "foreign"
    foreign.mkdir()
    (foreign / "keep").write_text("x")
    assert subprocess.run([*stop, str(foreign)], capture_output=True, timeout=60).returncode != 0
    assert (foreign / "keep").exists()  # no marker: not touched

    sleeper = subprocess.Popen(["sleep", "300"])
    try:
        fields = Path(f"/proc/{sleeper.pid}/stat").read_text().rsplit(")", 1)[1].split()
        d = base / "saio"
        (d / "pids").mkdir(parents=True)
        (d / ".imagestore-swift").touch()
        # a recorded PID whose start time differs is some other process now: left alone
        (d / "pids" / "object").write_text(f"{sleeper.pid} {int(fields[19]) - 1} sleep\n")
        subprocess.run([*stop, str(d)], capture_output=True, timeout=60, check=True)
        assert sleeper.poll() is None and not d.exists()
        # the same PID, start time and name: stopped
        (d / "pids").mkdir(parents=True)
        (d / ".imagestore-swift").touch()
        (d / "pids" / "object").write_text(f"{sleeper.pid} {fields[19]} sleep\n")
        subprocess.run([*stop, str(d)], capture_output=True, timeout=60, check=True)
        assert sleeper.wait(timeout=10) == -15 and not d.exists()
    finally:
        sleeper.kill()
        sleeper.wait()
        shutil.rmtree(base)
