"""Opening throwaway file stores for the scenarios and timing one call."""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import imagestore

from .env.context import Context, settle

T = TypeVar("T")


def file_store(root: Path, **settings: Any) -> imagestore.Store:
    """A ``file`` store rooted at ``root`` with the given facade settings (e.g. ``inspect=False``)."""
    return imagestore.open_store({"driver": "file", "root": str(root), **settings}, name="bench")


def timed(ctx: Context | None, fn: Callable[..., T], *args: Any) -> tuple[float, float, T]:
    """Wall and process CPU seconds of ``fn(*args)`` and its result; with ``ctx``, waits for an
    idle machine first (see :func:`settle`)."""
    settle(ctx)
    cpu = time.process_time()
    start = time.perf_counter()
    result = fn(*args)
    return time.perf_counter() - start, time.process_time() - cpu, result


def drain(reader: imagestore.ImageReader) -> int:
    """Iterate a reader to the end (verifying if it does); returns the bytes seen."""
    total = 0
    with reader:
        for chunk in reader:
            total += len(chunk)
    return total


def remove_tree(path: Path) -> None:
    """Delete a scratch directory and everything in it, ignoring what is already gone."""
    shutil.rmtree(path, ignore_errors=True)


# ---------------------------------------------------------------- the stores of an ``imagestore bench`` run
SECRET_ENV = {"s3-rgw": ("IMAGESTORE_BENCH_RGW_ACCESS", "IMAGESTORE_BENCH_RGW_SECRET"),
              "s3-moto": ("IMAGESTORE_BENCH_MOTO_ACCESS", "IMAGESTORE_BENCH_MOTO_SECRET"),
              "swift": ("IMAGESTORE_BENCH_SWIFT_KEY", "")}


def _specs(run: Any, services: Any, xfs: Any) -> dict[str, tuple[dict[str, Any], Callable[[], list[int]] | None]]:
    """name -> (store spec, backend PIDs) of every store this run can make itself."""
    import os

    root = (xfs.path / f"imagestore-bench-{os.getpid()}") if xfs is not None and xfs.path else run.workdir
    out: dict[str, tuple[dict[str, Any], Callable[[], list[int]] | None]] = {
        "file": ({"driver": "file", "root": str(root / "store-file")}, None),
        "memory": ({"driver": "memory", "namespace": f"bench-{os.getpid()}"}, None),
    }
    ceph = getattr(services, "ceph", None)
    if ceph is not None:
        rbd = {"driver": "rbd", "conf": ceph.conf, "user": "imagestore", "keyring": ceph.keyring, "pool": "images"}
        out["rbd"] = (rbd, ceph.rbd_pids)
        env = ceph.env
        if "CEPH_RGW_ENDPOINT" in env:
            a, s = SECRET_ENV["s3-rgw"]
            os.environ[a], os.environ[s] = env["CEPH_RGW_ACCESS_KEY"], env["CEPH_RGW_SECRET_KEY"]
            out["s3-rgw"] = ({"driver": "s3", "endpoint": env["CEPH_RGW_ENDPOINT"], "region": env["CEPH_RGW_REGION"],
                              "bucket": "bench", "create_bucket": True, "addressing_style": "path",
                              "access_key": {"env": a}, "secret_key": {"env": s}}, ceph.rgw_pids)
    moto = getattr(services, "moto", None)
    if moto is not None:
        a, s = SECRET_ENV["s3-moto"]
        os.environ[a], os.environ[s] = "bench", "bench-secret"
        out["s3-moto"] = ({"driver": "s3", "endpoint": moto.endpoint, "region": "us-east-1", "bucket": "bench",
                           "create_bucket": True, "addressing_style": "path", "access_key": {"env": a},
                           "secret_key": {"env": s}}, moto.pids)
    swift = getattr(services, "swift", None)
    if swift is not None:
        k = SECRET_ENV["swift"][0]
        os.environ[k] = swift.env["ST_KEY"]
        os.environ["IMAGESTORE_BENCH_SWIFT_DIR"] = str(swift.dir)  # the legacy swift scenario reuses it
        out["swift"] = ({"driver": "swift", "auth_url": swift.env["ST_AUTH"], "user": swift.env["ST_USER"],
                         "key": {"env": k}, "container": "bench"}, swift.pids)
    return out


def _config_specs(path: Path) -> dict[str, dict[str, Any]]:
    """The store tables of an imagestore TOML, as specs for ``open_store``."""
    import tomllib

    data = tomllib.loads(path.read_text())
    return {f"{name}": dict(table) for name, table in (data.get("stores") or {}).items()}


CROSS = {"file": "memory", "memory": "file", "rbd": "rbd-vms", "s3-rgw": "file", "s3-moto": "file", "swift": "file"}


def plan_stores(run: Any, args: Any, services: Any, xfs: Any) -> tuple[list[Any], dict[str, Any], dict[str, str]]:
    """Open every store to measure (as Backends), their cross-store clone targets, and why others are not."""
    from .backends import backend_for

    specs = _specs(run, services, xfs)
    if args.config:
        for name, spec in _config_specs(args.config).items():
            specs[name if name not in specs else f"config-{name}"] = (spec, None)
    wanted = args.store or list(specs)
    skips: dict[str, str] = {}
    backends: list[Any] = []
    kw = {"pool": run.pool(), "chunk": run.chunk, "scratch": run.workdir}
    for name in wanted:
        if name not in specs:
            skips[name] = "no such store in this run (start its service with --with-services, or --config)"
            continue
        spec, pids = specs[name]
        try:
            backends.append(backend_for(name, spec, pids=pids, **kw))
        except Exception as exc:  # a store that cannot be opened is reported, the others run
            skips[name] = f"cannot open: {type(exc).__name__}: {exc}"
    by_name = {b.name: b for b in backends}
    cross: dict[str, Any] = {}
    for b in backends:
        target = CROSS.get(b.name, "file")
        if target == b.name:
            continue
        if target in by_name:
            cross[b.name] = by_name[target]
            continue
        if target == "rbd-vms" and "rbd" in specs:
            spec = {**specs["rbd"][0], "pool": "vms"}
        elif target in specs:
            spec = specs[target][0]
        else:
            continue
        try:
            from .backends import Backend

            cross[b.name] = Backend(target, spec)
        except Exception as exc:  # noqa: BLE001 - no cross-store clone then
            skips[f"{b.name}->{target}"] = f"cross-store target cannot be opened: {exc}"
    for c in cross.values():
        c.shared = c in backends
    return backends, cross, skips
