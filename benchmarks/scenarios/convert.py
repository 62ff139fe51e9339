"""Convert once, clone forever (``--scenario convert``): a qcow2 image in a file store cloned with
``format="raw"`` into an RBD pool. Figures, same run, interleaved, best of ``ctx.runs``:

* the first clone (the verified inspection of the source's metadata, ``qemu-img`` reading the
  verified blocks, the raw base's add, the RBD clone) against ``qemu-img convert -f qcow2 -O raw``
  of the same local file straight into the pool, each step on a pool emptied of the last one's
  image (the memstore OSD holds it in RAM) and alternating which goes first;
* the second clone (an RBD clone of the existing base) of an 8 GiB-virtual image against that of a
  1 GiB-virtual one, and against the RBD clone of a raw image of the same pool;
* ``rbd du`` of the base against the source's data.

Uses the cluster named by ``CEPH_CONF`` (user ``CEPH_USER``, keyring ``CEPH_KEYRING``, pools
``images`` and ``vms``), or starts a throwaway one and stops it afterwards.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
from pathlib import Path
from typing import Any

import imagestore

from ..env.context import Context, settle
from ..env.services import Services
from ..figures import gib_label, target
from ..stores import file_store, remove_tree

GiB = 1 << 30
EXTENTS = 4
"""Data extents of the guest disk (spread over it, holes between)."""


def _guest(path: Path, virtual: int, data: int, seed: int) -> None:
    """A sparse raw guest disk of ``virtual`` bytes holding ``data`` bytes in ``EXTENTS`` runs."""
    block = os.urandom(4 << 20)
    with open(path, "wb") as fh:
        fh.truncate(virtual)
        for n in range(EXTENTS):
            fh.seek(n * (virtual // EXTENTS))
            fh.write(seed.to_bytes(8, "little"))
            left = data // EXTENTS
            while left > 0:
                fh.write(block[:min(left, len(block))])
                left -= len(block)


def _qcow2(work: Path, name: str, virtual: int, data: int, seed: int) -> Path:
    raw, out = work / f"{name}.raw", work / f"{name}.qcow2"
    _guest(raw, virtual, data, seed)
    subprocess.run(["qemu-img", "convert", "-q", "-f", "raw", "-O", "qcow2", str(raw), str(out)], check=True)
    raw.unlink()
    return out


def _cluster(ctx: Context, osd_mb: int) -> tuple[dict[str, Any], Services | None]:
    conf = os.environ.get("CEPH_CONF")
    if conf:
        spec = {"driver": "rbd", "conf": conf, "user": os.environ.get("CEPH_USER", "admin")}
        if os.environ.get("CEPH_KEYRING"):
            spec["keyring"] = os.environ["CEPH_KEYRING"]
        return spec, None
    services = Services(log=ctx.log)
    services.start({"ceph"}, osd_mb=osd_mb)
    if services.ceph is None:
        services.stop()
        raise RuntimeError(f"no Ceph: {services.failures.get('ceph')}")
    return {"driver": "rbd", "conf": services.ceph.conf, "user": "imagestore",
            "keyring": services.ceph.keyring}, services


def _qemu_rbd(spec: dict[str, Any], pool: str, image: str) -> str:
    opts = f"conf={spec['conf']}:id={spec['user']}" + (f":keyring={spec['keyring']}" if spec.get("keyring") else "")
    return f"rbd:{pool}/{image}:{opts}"


def _admin(spec: dict[str, Any], *args: str) -> str:
    """An admin tool's stdout (``rbd``/``ceph`` as the cluster's admin); RuntimeError with its stderr."""
    env = {k: v for k, v in os.environ.items() if k != "CEPH_KEYRING"}  # the tools read it: the admin's is in conf
    proc = subprocess.run([args[0], "-c", spec["conf"], *args[1:]], capture_output=True, text=True, timeout=300,
                          env=env)
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(args)}: exit {proc.returncode}: {proc.stderr.strip()[-500:]}")
    return proc.stdout


def _drop(vms: imagestore.Store, *names: str) -> None:
    """Delete clones, then their base (purged once no clone needs it)."""
    for name in names:
        try:
            vms.delete(name)
        except imagestore.NotFound:
            pass


def run(ctx: Context) -> dict[str, Any]:
    data = min(ctx.size, GiB)
    virtual = 4 * data
    spec, services = _cluster(ctx, osd_mb=int(3 * data / (1 << 20)) + 3072)
    work = ctx.scratch("convert")
    tag = os.urandom(3).hex()  # names of this run: a pool given by CEPH_CONF may hold an earlier one's
    targets: list[dict[str, Any]] = []
    result: dict[str, Any] = {"data_bytes": data, "virtual_bytes": virtual, "targets": targets}
    try:
        images = file_store(work / "images")
        vms = imagestore.open_store({**spec, "pool": "vms"}, "vms")
        pool_images = imagestore.open_store({**spec, "pool": "images"}, "rbdimages")
        first: list[float] = []
        plain: list[float] = []
        for run_no in range(ctx.runs):
            src = _qcow2(work, f"src{run_no}", virtual, data, seed=run_no)  # new bytes: a new base each time
            with open(src, "rb") as fh:
                info = images.add(f"src{run_no}", fh, os.path.getsize(src), format="qcow2")
            for which in (("clone", "qemu") if run_no % 2 == 0 else ("qemu", "clone")):
                settle(ctx)  # the source's writeback, the last step's deletes in the OSD: not billed to this one
                start = time.perf_counter()
                if which == "qemu":
                    subprocess.run(["qemu-img", "convert", "-q", "-f", "qcow2", "-O", "raw", str(src),
                                    _qemu_rbd(spec, "vms", f"{tag}-plain{run_no}")], check=True)
                    plain.append(time.perf_counter() - start)
                    _admin(spec, "rbd", "rm", "--no-progress", f"vms/{tag}-plain{run_no}")
                else:
                    made = images.clone(info.location, vms, name=f"{tag}-first{run_no}", format="raw")
                    first.append(time.perf_counter() - start)
                    assert made.converted and made.base is not None
                    base = made.base.image
                    du = json.loads(_admin(spec, "rbd", "du", "--format", "json", f"vms/{base}@snap"))
                    used = sum(i["used_size"] for i in du["images"])
                    obj = json.loads(_admin(spec, "rbd", "info", "--format", "json", f"vms/{base}"))["object_size"]
                    _drop(vms, f"{tag}-first{run_no}", base)  # each step starts on an empty pool: memstore holds it in RAM
            ctx.log(f"convert: run {run_no}: first clone {first[-1]:.2f} s, qemu-img into the pool {plain[-1]:.2f} s")
            src.unlink()
        result.update(first_clone_s=[round(s, 3) for s in first], qemu_img_into_pool_s=[round(s, 3) for s in plain],
                      base_used_bytes=used, object_size=obj)
        targets.append(target("first_clone_vs_qemu_img",
                              f"first raw clone of a qcow2 ({gib_label(data)} data, {gib_label(virtual)} virtual) "
                              "/ qemu-img convert of the file into the pool", min(first) / min(plain), "<=", 1.25))
        targets.append(target("base_du", "rbd du of the base / (1.1 x data + one object per extent)",
                              used / (1.1 * data + EXTENTS * obj), "<=", 1.0))

        again: dict[str, list[float]] = {}
        for label, size in (("1G", GiB), ("8G", 8 * GiB)):
            src = _qcow2(work, f"o1-{label}", size, 16 << 20, seed=100 + len(again))
            info = images.add(f"o1-{label}", src.read_bytes(), format="qcow2")
            images.clone(info.location, vms, name=f"{tag}-o1-{label}-0", format="raw")
            again[label] = []
            for i in range(1, 1 + max(5, ctx.runs)):
                start = time.perf_counter()
                made = images.clone(info.location, vms, name=f"{tag}-o1-{label}-{i}", format="raw")
                again[label].append(time.perf_counter() - start)
                assert not made.converted
        raw = pool_images.add(f"{tag}-raw-1g", _zeros_and_data(GiB), GiB)
        cow: list[float] = []
        for i in range(max(5, ctx.runs)):
            start = time.perf_counter()
            pool_images.clone(raw.location, vms, name=f"{tag}-rawcow-{i}", mode="cow")
            cow.append(time.perf_counter() - start)
        result.update(second_clone_1g_s=[round(s, 4) for s in again["1G"]],
                      second_clone_8g_s=[round(s, 4) for s in again["8G"]], raw_cow_clone_s=[round(s, 4) for s in cow])
        targets.append(target("second_clone_o1", "second raw clone, 8 GiB virtual / 1 GiB virtual (best)",
                              min(again["8G"]) / min(again["1G"]), "<=", 2.0))
        targets.append(target("second_clone_vs_raw_cow", "second raw clone / RBD clone of a raw image (best)",
                              min(again["1G"]) / min(cow), "<=", 1.5))
        return result
    finally:
        remove_tree(work)
        if services is not None:
            services.stop()


def _zeros_and_data(size: int) -> Any:
    """``size`` bytes: 16 MiB of data, zeros after it."""
    yield os.urandom(16 << 20)
    left = size - (16 << 20)
    zero = bytes(4 << 20)
    while left > 0:
        yield zero[:min(left, len(zero))]
        left -= len(zero)
