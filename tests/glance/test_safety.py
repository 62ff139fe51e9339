"""Unsafe uploads through Glance: imagestore refuses them while writing and keeps nothing.

Glance's own format check runs only after a store has taken the bytes (and then
leaves them behind); here imagestore's inspector refuses the image inside the
store's add, so Glance answers 400 with imagestore's reason and puts the image
back to ``queued``, and no byte of it is left in the file or RBD backend.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from tests.glance.test_api import files_in, rbd_images
from tests.services.glance import SharedGlance, stores_of


@pytest.fixture(scope="module")
def backed_qcow2(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    """A qcow2 whose backing file is a host path: a consumer would read that file."""
    qemu_img = shutil.which("qemu-img")
    assert qemu_img, "qemu-img is needed (apt install qemu-utils; scripts/test.sh installs it)"
    d = tmp_path_factory.mktemp("unsafe")
    base = d / "base.raw"
    base.write_bytes(b"\0" * (1 << 20))
    top = d / "top.qcow2"
    subprocess.run([qemu_img, "create", "-q", "-f", "qcow2", "-b", str(base), "-F", "raw", str(top)], check=True)
    return Path(top).read_bytes()


@pytest.mark.parametrize("backend", ["fast", "ceph"])
def test_qcow2_with_a_backing_file_is_refused_with_nothing_left(glance: SharedGlance, backed_qcow2: bytes,
                                                                backend: str) -> None:
    client = glance.client
    image = client.create_image(name=f"unsafe-{backend}", disk_format="qcow2")
    resp = client.upload(image["id"], backed_qcow2, store=backend)
    assert resp.status == 400, resp
    assert b"backing" in resp.body  # imagestore's reason, not Glance's own 415 after the fact
    after = client.image(image["id"])
    assert after["status"] == "queued" and not stores_of(after) and after.get("checksum") is None
    if backend == "fast":
        assert image["id"] not in files_in(glance.roots["fast"])
    else:
        assert not {n for n in rbd_images(glance) if image["id"] in n}
    assert client.delete_image(image["id"]).status == 204


def test_a_refused_glance_direct_import_leaves_nothing(glance: SharedGlance, backed_qcow2: bytes) -> None:
    client = glance.client
    image = client.create_image(name="unsafe-import", disk_format="qcow2")
    assert client.stage(image["id"], backed_qcow2).status == 204
    assert client.import_image(image["id"], "glance-direct", ["slow"]).status == 202
    client.wait(image["id"], lambda i: not i.get("os_glance_importing_to_stores") and i["status"] != "importing",
                "the end of the refused import", fail_on_failed_import=False)
    after = client.image(image["id"])
    assert after["status"] != "active" and "slow" not in stores_of(after)
    assert image["id"] not in files_in(glance.roots["slow"])
