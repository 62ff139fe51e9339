"""What ``qemu-img`` reads when a clone converts: of a stored image with a block table the inspector
reads the metadata its parsers ask for, and ``qemu-img`` the image, both from a read-only view of
blocks checked against the one table (no local copy); a block changed between the two is refused
by name; an image without a table (an older store's) is spooled locally, verified by its
checksum, as before."""

from __future__ import annotations

import functools
import os
from pathlib import Path

import pytest

from imagestore import ChecksumMismatch, Store
from imagestore.engine import qemu
from imagestore.engine.ranges import VerifiedBlocks
from imagestore.store import tables
from imagestore.store.ops import convert as convert_module
from imagestore.store.ops import read as read_module

from .conftest import Opened
from .test_convert import DISK, Target, _source

pytestmark = pytest.mark.usefixtures("image_id")


def _spy_sources(monkeypatch: pytest.MonkeyPatch) -> list[object]:
    """Records what each conversion gives qemu-img to read."""
    seen: list[object] = []
    real = qemu.raw_stream

    def raw_stream(source: object, *args: object, **kwargs: object) -> object:
        seen.append(source)
        return real(source, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(qemu, "raw_stream", raw_stream)
    return seen


@pytest.mark.parametrize("kind", ["qcow2", "qcow2-compressed", "vmdk-stream-optimized", "vhdx"])
def test_a_stored_image_is_converted_from_its_verified_blocks_without_a_spool(
        kind: str, opened: Opened, tmp_path: Path, image_id: str, monkeypatch: pytest.MonkeyPatch) -> None:
    images = opened({"driver": "file", "root": str(tmp_path / "images")}, "images")
    vms = opened({"driver": "file", "root": str(tmp_path / "vms")}, "vms")
    path = _source(tmp_path, kind, image_id)
    fmt = {"qcow2": "qcow2", "qcow2-compressed": "qcow2", "vmdk-stream-optimized": "vmdk", "vhdx": "vhdx"}[kind]
    info = images.add(image_id, path.read_bytes(), format=fmt)
    seen = _spy_sources(monkeypatch)

    def no_spool(*args: object, **kwargs: object) -> None:
        raise AssertionError("the source was spooled")

    monkeypatch.setattr(convert_module, "download_to", no_spool)
    made = images.clone(info.location, vms, name=f"{image_id}-a", format="raw")
    assert made.converted and len(seen) == 1 and isinstance(seen[0], VerifiedBlocks)
    assert seen[0].fetched >= -(-os.path.getsize(path) // seen[0].block_size) // 2  # its data was read by block
    Target(vms, lambda image: str(tmp_path / "vms" / image)).compare(path, fmt, f"{image_id}-a")
    assert os.stat(tmp_path / "vms" / f"{image_id}-a").st_size == DISK


def test_a_block_changed_after_inspection_is_refused_by_name(opened: Opened, tmp_path: Path, image_id: str,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    images = opened({"driver": "file", "root": str(tmp_path / "images")}, "images")
    vms = opened({"driver": "file", "root": str(tmp_path / "vms")}, "vms")
    info = images.add(image_id, _source(tmp_path, "qcow2", image_id).read_bytes(), format="qcow2")
    stored = tmp_path / "images" / image_id
    at = os.path.getsize(stored) // 2  # a data cluster: qemu-img reads it
    real = convert_module.inspect_at

    def inspect_then_change(*args: object) -> object:
        verdict = real(*args)  # type: ignore[arg-type]
        os.chmod(stored, 0o600)
        with open(stored, "r+b") as fh:  # the image changes behind the store's back after the inspection
            fh.seek(at)
            byte = fh.read(1)
            fh.seek(at)
            fh.write(bytes([byte[0] ^ 0xFF]))
        return verdict

    monkeypatch.setattr(convert_module, "inspect_at", inspect_then_change)
    # keep one block: what the inspection read (and verified) is not what qemu-img reads again
    monkeypatch.setattr(read_module, "VerifiedBlocks", functools.partial(VerifiedBlocks, window=1, capacity=1))
    with pytest.raises(ChecksumMismatch) as err:
        images.clone(info.location, vms, name=f"{image_id}-a", format="raw")
    block = at // tables.block_size(info)
    assert f"block {block} " in str(err.value) and err.value.image == image_id
    assert list(vms._driver.list_images()) == []


def test_an_image_without_a_block_table_is_spooled_verified(opened: Opened, tmp_path: Path, image_id: str,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    images: Store = opened({"driver": "memory", "namespace": f"convert-{image_id}"}, "images")
    vms = opened({"driver": "file", "root": str(tmp_path / "vms")}, "vms")
    path = _source(tmp_path, "vdi", image_id)
    info = images.add(image_id, path.read_bytes(), format="vdi")
    namespace = images._driver._ns
    data, meta, written = namespace.images[image_id]
    for name in [n for n in namespace.images if tables.is_companion(n)]:
        del namespace.images[name]
    namespace.images[image_id] = (data, {k: v for k, v in meta.items() if not k.startswith("integrity.")}, written)
    assert images.stat(info.location).block_table is None and images.stat(info.location).checksums
    seen = _spy_sources(monkeypatch)
    made = images.clone(info.location, vms, name=f"{image_id}-a", format="raw")
    assert made.converted and len(seen) == 1 and isinstance(seen[0], str)  # the local spool's path
    Target(vms, lambda image: str(tmp_path / "vms" / image)).compare(path, "vdi", f"{image_id}-a")
