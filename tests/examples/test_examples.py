"""The examples/ flows run as a consumer runs them (their command line, a TOML configuration), and a
real hypervisor tool opens what they produce: ``qemu-img compare`` against the source bytes."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import pytest

import imagestore
from imagestore.testing.payloads import payload
from tests.services.ceph import CephCluster

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
MiB = 1 << 20


def run_example(name: str, *args: str) -> dict[str, Any]:
    proc = subprocess.run([sys.executable, str(EXAMPLES / name), *args], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    result: dict[str, Any] = json.loads(proc.stdout)
    result["log"] = proc.stderr
    return result


def qemu_compare(source: Path, target: str, *, target_is_rbd: bool = False) -> None:
    """``qemu-img compare``: exit 0 when the guest-visible contents are identical."""
    if shutil.which("qemu-img") is None:
        pytest.fail("qemu-img is missing (apt install qemu-utils)", pytrace=False)
    proc = subprocess.run(["qemu-img", "compare", "-f", "raw", "-F", "raw", str(source), target],
                          capture_output=True, text=True, timeout=300)
    if target_is_rbd and "Unknown protocol" in proc.stderr:
        pytest.fail("qemu-img has no rbd: support (apt install qemu-block-extra)", pytrace=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "identical" in proc.stdout


def toml(path: Path, stores: dict[str, dict[str, Any]]) -> Path:
    lines = []
    for name, table in stores.items():
        lines.append(f"[stores.{name}]")
        lines += [f"{k} = {json.dumps(v)}" for k, v in table.items()]
    lines.insert(0, f'default = "{next(iter(stores))}"')
    path.write_text("\n".join(lines) + "\n")
    return path


def rbd_spec(cluster: CephCluster, spec: str) -> str:
    return f"{spec}:conf={cluster.conf}:id=imagestore:keyring={cluster.keyring}"


def raw_image(tmp_path: Path, size: int = 16 * MiB) -> Path:
    """A raw disk with some data and long zero runs."""
    data = bytearray(size)
    data[:MiB] = payload(MiB, seed=1)
    data[9 * MiB:9 * MiB + 300_000] = payload(300_000, seed=2)
    path = tmp_path / "source.raw"
    path.write_bytes(bytes(data))
    return path


@pytest.mark.ceph
def test_compute_node_flow_on_ceph(ceph_cluster: CephCluster, tmp_path: Path) -> None:
    source = raw_image(tmp_path)
    config = toml(tmp_path / "imagestore.toml",
                  {"images": ceph_cluster.spec("images"), "vms": ceph_cluster.spec("vms")})
    image = f"img-{uuid.uuid4().hex[:10]}"
    with imagestore.Stores.from_file(config) as stores:
        stores["images"].add(image, str(source), format="raw")
    out = run_example("compute_node.py", "--config", str(config), "--image", image, "--instance", image,
                      "--size", str(32 * MiB), "--cache-dir", str(tmp_path / "cache"))
    assert out["how"] == "clone" and out["kind"] == "rbd" and out["depth"] == 1
    assert out["spec"] == f"rbd:vms/{image}_disk"
    qemu_compare(source, rbd_spec(ceph_cluster, out["spec"]), target_is_rbd=True)  # grown: the rest reads zeros


def test_compute_node_flow_falls_back_to_the_cache(tmp_path: Path) -> None:
    source = raw_image(tmp_path)
    config = toml(tmp_path / "imagestore.toml", {"images": {"driver": "file", "root": str(tmp_path / "images")},
                                                   "vms": {"driver": "memory"}})
    with imagestore.Stores.from_file(config) as stores:
        stores["images"].add("cirros", str(source))
    out = run_example("compute_node.py", "--config", str(config), "--image", "cirros", "--instance", "i-1",
                      "--cache-dir", str(tmp_path / "cache"))
    assert out["how"] == "cache" and out["code"] == "different_backend" and "using the image cache" in out["log"]
    qemu_compare(source, out["path"])


@pytest.mark.xfs
def test_compute_node_flow_reflinks_on_xfs(xfs_mount: Path, tmp_path: Path) -> None:
    source = raw_image(tmp_path)
    base = xfs_mount / f"ex-{os.getpid()}-{uuid.uuid4().hex[:6]}"
    config = toml(tmp_path / "imagestore.toml", {"images": {"driver": "file", "root": str(base / "images")},
                                                   "vms": {"driver": "file", "root": str(base / "vms")}})
    with imagestore.Stores.from_file(config) as stores:
        stores["images"].add("cirros", str(source))
    out = run_example("compute_node.py", "--config", str(config), "--image", "cirros", "--instance", "i-2")
    assert out["how"] == "clone" and out["kind"] == "path" and out["depth"] == 0
    qemu_compare(source, out["path"])


@pytest.mark.ceph
def test_volume_flow_on_ceph(ceph_cluster: CephCluster, tmp_path: Path) -> None:
    source = raw_image(tmp_path)
    config = toml(tmp_path / "imagestore.toml", {
        "images": ceph_cluster.spec("images"), "volumes": ceph_cluster.spec("vms", clone_flatten="never")})
    image = f"img-{uuid.uuid4().hex[:10]}"
    with imagestore.Stores.from_file(config) as stores:
        stores["images"].add(image, str(source), format="raw")
    out = run_example("volume.py", "--config", str(config), "--image", image, "--volume", f"volume-{image}",
                      "--size", str(64 * MiB))
    assert out["how"] == "clone" and out["depth"] == 1 and out["spec"] == f"rbd:vms/volume-{image}"
    qemu_compare(source, rbd_spec(ceph_cluster, out["spec"]), target_is_rbd=True)
    flat = run_example("volume.py", "--config", str(config), "--image", image, "--volume", f"volume-{image}-f",
                       "--size", str(64 * MiB), "--flatten")
    assert flat["depth"] == 0
    qemu_compare(source, rbd_spec(ceph_cluster, flat["spec"]), target_is_rbd=True)


def test_volume_flow_copies_between_backends(tmp_path: Path) -> None:
    source = raw_image(tmp_path)
    config = toml(tmp_path / "imagestore.toml", {"images": {"driver": "memory", "namespace": "ex"},
                                                   "volumes": {"driver": "file", "root": str(tmp_path / "volumes")}})
    # a memory store lives in one process: add and run the flow in this one
    sys.path.insert(0, str(EXAMPLES))
    try:
        import volume  # type: ignore[import-not-found]
    finally:
        sys.path.remove(str(EXAMPLES))
    with imagestore.Stores.from_file(config) as stores:
        stores["images"].add("cirros", str(source))
        out = volume.create_volume(stores, "cirros", "volume-1", size=None)
    assert out["how"] == "copy (stream)" and out["kind"] == "path" and out["depth"] == 0
    qemu_compare(source, out["path"])
