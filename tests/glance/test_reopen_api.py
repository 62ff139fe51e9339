"""A real Glance started while one imagestore backend's store cannot be opened: uploads to it fail
with a clear 503 until the cause is fixed, then work without restarting Glance."""

from __future__ import annotations

import hashlib
import os
import time
from pathlib import Path

from tests.services.glance import GlanceFactory, GlanceServer, toml_table

MiB = 1 << 20


def _log(server: GlanceServer) -> str:
    return (server.dir / "log" / "glance-api.log").read_text(errors="replace")


def test_a_backend_that_could_not_open_at_start_takes_uploads_once_its_store_opens(
        glance_factory: GlanceFactory) -> None:
    work = glance_factory.workdir("reopen")
    blocker = work / "mnt"  # a regular file where the late store's root's parent directory should be
    blocker.write_text("not mounted yet")
    late_root = blocker / "images"
    config = work / "imagestore.toml"
    config.write_text('default = "fast"\n' + toml_table("stores.fast", {"driver": "file", "root": work / "fast"})
                      + toml_table("stores.late", {"driver": "file", "root": late_root}))
    sections = {name: {"imagestore_config": config, "imagestore_store": name} for name in ("fast", "late")}
    sections["broken"] = {"imagestore_config": config, "imagestore_store": "nope"}  # never usable: read-only
    server = glance_factory.start("reopen", {"fast": "imagestore", "late": "imagestore", "broken": "imagestore"},
                                  sections, default_backend="fast")
    client = server.client
    assert "cannot be opened" in _log(server)  # said at start-up, and Glance runs

    detail = {s["id"]: s for s in client.ok("GET", "/v2/info/stores/detail").json()["stores"]}
    assert detail["late"]["properties"]["available"] is False and detail["fast"]["properties"]["available"] is True
    assert "read-only" not in detail["late"]  # it takes uploads once its store opens
    assert detail["broken"]["read-only"] == "true" and detail["broken"]["properties"]["read_only"] is True

    data = os.urandom(MiB + 17)
    image = client.create_image(name="late")
    failed = client.upload(image["id"], data, store="late")
    assert failed.status == 503, failed
    text = failed.body.decode()
    assert "cannot be opened" in text and "'late'" in text and str(late_root) in text
    assert "Traceback" not in text
    assert client.image(image["id"])["status"] == "queued"  # Glance puts it back; nothing was stored

    blocker.unlink()  # the cause is fixed while Glance runs
    deadline = time.monotonic() + 120  # the backoff after one failure is about a second
    while True:
        resp = client.upload(image["id"], data, store="late")
        if resp.status == 204:
            break
        assert resp.status == 503 and "next attempt in" in resp.body.decode(), resp
        assert time.monotonic() < deadline, f"the late store was not opened again: {resp}"
        time.sleep(0.5)

    image = client.image(image["id"])
    assert image["status"] == "active" and image["checksum"] == hashlib.md5(data).hexdigest()
    assert image["direct_url"] == f"file://{late_root}/{image['id']}"
    assert (late_root / image["id"]).read_bytes() == data
    back = [line for line in _log(server).splitlines() if "is open again after" in line]
    assert len(back) == 1 and "'late'" in back[0] and ("INFO" in back[0] or "WARNING" in back[0]), back
    detail = {s["id"]: s for s in client.ok("GET", "/v2/info/stores/detail").json()["stores"]}
    assert detail["late"]["properties"]["available"] is True
    assert detail["late"]["properties"]["url_prefix"] == f"file://{late_root}/"
    assert Path(late_root).is_dir()
