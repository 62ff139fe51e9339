"""S3 scenario: memory of an unknown-size add, add and get throughput against bare boto3, and
glance_store's S3 add of unknown size, on moto's server and on Ceph radosgw.

Figures, per server:

* peak RSS growth of ``Store.add`` of an unknown-size stream of 1 GiB and 2 GiB, each in a
  fresh interpreter (target <= 256 MiB, flat from 1 to 2 GiB);
* add throughput of ``Store.add`` (md5 + sha512 + inspection) and of the driver's writer alone
  (no hashing) against boto3's ``upload_fileobj`` of the same file (target >= 0.8);
* get throughput of ``Store.open(verify=False)`` against a bare boto3 streaming get (>= 0.8);
* glance_store's S3 ``add`` of unknown size (``image_size=0``) of the same file, when a Python
  with glance_store and boto3 is given (``IMAGESTORE_GLANCE_STORE_PYTHON``): its time and RSS.

``run(ctx)`` uses ``ctx.size`` (the throughput size), ``ctx.runs`` and ``ctx.workdir``. Servers:
``IMAGESTORE_MOTO_ENDPOINT`` or a moto server started here; ``IMAGESTORE_CEPH_V2_DIR`` (a
cluster of scripts/ceph-start.sh with radosgw) or a throwaway cluster started and stopped here.
Also a script: ``python -m imagestore_bench.scenarios.s3 [--size-gib 1] [--rss-gib 1 2] [--runs 2]``.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from ..env.checkout import SCRIPTS, script
from imagestore.testing.moto import MotoProcess

from ..env.services import free_port

GiB, MiB = 1 << 30, 1 << 20
_CLIENT_OPTS = ("signature_version='s3v4', s3={'addressing_style': 'path'}, "
                "request_checksum_calculation='when_required', response_checksum_validation='when_required'")


def _env_file(directory: Path) -> dict[str, str]:
    env = {}
    for line in (directory / "env").read_text().splitlines():
        if line.startswith("export ") and "=" in line:
            key, _, value = line[len("export "):].partition("=")
            env[key] = value
    return env


class Server:
    """One S3 endpoint for the scenario: where, which keys, and how to reclaim space."""

    def __init__(self, name: str, endpoint: str, access: str, secret: str, conf: str | None = None) -> None:
        self.name, self.endpoint, self.access, self.secret, self.conf = name, endpoint, access, secret, conf

    def client(self) -> Any:
        import boto3
        from botocore.config import Config

        config = Config(signature_version="s3v4", s3={"addressing_style": "path"}, max_pool_connections=32,
                        request_checksum_calculation="when_required", response_checksum_validation="when_required")
        return boto3.client("s3", endpoint_url=self.endpoint, region_name="us-east-1", aws_access_key_id=self.access,
                            aws_secret_access_key=self.secret, config=config)

    def reclaim(self) -> None:
        """radosgw frees deleted objects' data in its garbage collector: run it now."""
        if self.conf:
            subprocess.run(["radosgw-admin", "-c", self.conf, "gc", "process", "--include-all"],
                           capture_output=True, timeout=600, check=False)


@contextmanager
def moto() -> Iterator[Server]:
    """moto's standalone server: the one of IMAGESTORE_MOTO_ENDPOINT, or one started here."""
    reuse = os.environ.get("IMAGESTORE_MOTO_ENDPOINT")
    if reuse:
        yield Server("moto", reuse.rstrip("/"), "imagestore-access", "imagestore-secret")
        return
    server = MotoProcess()
    try:
        server.start()
        yield Server("moto", server.endpoint, "imagestore-access", "imagestore-secret")
    finally:
        server.cleanup()


@contextmanager
def radosgw(osd_mib: int) -> Iterator[Server]:
    """radosgw on the cluster of IMAGESTORE_CEPH_V2_DIR, or on a throwaway cluster started here
    (memstore of ``osd_mib``, garbage collection without delay) and stopped afterwards."""
    reuse = os.environ.get("IMAGESTORE_CEPH_V2_DIR")
    directory = Path(reuse) if reuse else Path(tempfile.mkdtemp(prefix="ceph-s3b-", dir="/tmp"))
    started = False
    try:
        if not reuse:
            env = {**os.environ, "CEPH_MON_PORT": str(free_port()), "CEPH_OSD_SIZE_MB": str(osd_mib)}
            start = script("ceph-start.sh", "--scenario s3 (its radosgw)")
            subprocess.run(["bash", str(start), str(directory)], env=env, check=True, capture_output=True, timeout=900)
            started = True
            conf = str(directory / "ceph.conf")
            for key, value in (("rgw_gc_obj_min_wait", "0"), ("rgw_gc_processor_period", "5")):
                subprocess.run(["ceph", "-c", conf, "config", "set", "global", key, value], check=True,
                               capture_output=True, timeout=60)
        if "CEPH_RGW_ENDPOINT" not in _env_file(directory):
            env = {**os.environ, "CEPH_RGW_PORT": str(free_port())}
            subprocess.run(["bash", str(SCRIPTS / "ceph-rgw-start.sh"), str(directory)], env=env, check=True,
                           capture_output=True, timeout=900)
        e = _env_file(directory)
        yield Server("radosgw", e["CEPH_RGW_ENDPOINT"], e["CEPH_RGW_ACCESS_KEY"], e["CEPH_RGW_SECRET_KEY"],
                     str(directory / "ceph.conf"))
    finally:
        if started:
            subprocess.run(["bash", str(SCRIPTS / "ceph-stop.sh"), str(directory)], capture_output=True, timeout=300)


def _source(path: Path, size: int) -> Path:
    """A file of ``size`` incompressible bytes (made once), read once so that it is cached."""
    if not path.exists() or path.stat().st_size != size:
        block = bytearray(os.urandom(64 * MiB))
        with open(path, "wb") as fh:
            for at in range(0, size, len(block)):
                block[:16] = at.to_bytes(16, "little")
                fh.write(memoryview(block)[: min(len(block), size - at)])
    with open(path, "rb", buffering=0) as fh:
        while fh.read(64 * MiB):
            pass
    return path


def _spec(server: Server, bucket: str, **extra: Any) -> dict[str, Any]:
    return {"driver": "s3", "endpoint": server.endpoint, "bucket": bucket, "access_key": {"env": "BENCH_S3_ACCESS"},
            "secret_key": {"env": "BENCH_S3_SECRET"}, "auto_sweep": False, **extra}


_RSS_CHILD = r"""
import json, os, sys, imagestore
def hwm():
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
spec, image, size = json.loads(sys.argv[1]), sys.argv[2], int(sys.argv[3])
store = imagestore.open_store(spec, "bench")
block = bytearray(os.urandom(4 << 20))
def stream():  # unknown size: an iterator, never a file
    for at in range(0, size, len(block)):
        block[:16] = at.to_bytes(16, "little")
        yield bytes(block[: min(len(block), size - at)])
first = bytes(block)  # touch what the stream itself holds before the baseline
before = hwm()
info = store.add(image, stream())
print(json.dumps({"before": before, "peak": hwm(), "size": info.size}))
store.delete(info.location)
"""


def rss_figures(server: Server, bucket: str, sizes: list[int]) -> dict[str, Any]:
    """Peak RSS growth of unknown-size adds, each in a fresh interpreter."""
    out: dict[str, Any] = {}
    env = {**os.environ, "BENCH_S3_ACCESS": server.access, "BENCH_S3_SECRET": server.secret}
    for size in sizes:
        proc = subprocess.run([sys.executable, "-c", _RSS_CHILD, json.dumps(_spec(server, bucket)),
                               f"rss-{uuid.uuid4().hex[:8]}", str(size)], capture_output=True, text=True, env=env,
                              timeout=3600)
        if proc.returncode != 0:
            raise RuntimeError(f"rss child failed: {proc.stderr[-2000:]}")
        data = json.loads(proc.stdout.strip().splitlines()[-1])
        out[f"{size // GiB}GiB" if size % GiB == 0 else f"{size}B"] = {
            "baseline_mib": round(data["before"] / MiB, 1), "peak_mib": round(data["peak"] / MiB, 1),
            "growth_mib": round((data["peak"] - data["before"]) / MiB, 1)}
        server.reclaim()
    return out


def _timed(fn: Any) -> tuple[float, float]:
    cpu, t0 = time.process_time(), time.perf_counter()
    fn()
    return time.perf_counter() - t0, time.process_time() - cpu


def throughput(server: Server, bucket: str, path: Path, size: int, runs: int) -> dict[str, Any]:
    """Best-of-``runs`` MiB/s of each contender, alternated run by run."""
    import imagestore

    os.environ["BENCH_S3_ACCESS"], os.environ["BENCH_S3_SECRET"] = server.access, server.secret
    client = server.client()
    store = imagestore.open_store(_spec(server, bucket), "bench")
    best: dict[str, tuple[float, float]] = {}

    def keep(name: str, run: tuple[float, float]) -> None:
        if name not in best or run[0] < best[name][0]:
            best[name] = run

    def boto_put() -> None:
        with open(path, "rb") as fh:
            client.upload_fileobj(fh, bucket, "boto3-object")

    def store_add() -> None:
        with open(path, "rb") as fh:
            store.add("store-object", fh)

    def driver_write() -> None:
        writer = store._driver.open_writer("driver-object", None)
        buf = bytearray(4 * MiB)
        with open(path, "rb", buffering=0) as fh:
            while n := fh.readinto(buf):
                writer.write(memoryview(buf)[:n])
        writer.commit({})

    def boto_get() -> None:
        for _ in client.get_object(Bucket=bucket, Key="boto3-object")["Body"].iter_chunks(MiB):
            pass

    def store_get(verify: bool) -> Any:
        def read() -> None:
            with store.open("store-object", verify=verify) as reader:
                for _ in reader:
                    pass
        return read

    try:
        for _ in range(runs):
            keep("boto3_upload_fileobj", _timed(boto_put))
            keep("store_add", _timed(store_add))
            keep("driver_writer", _timed(driver_write))
            store.delete("driver-object")
            keep("boto3_get", _timed(boto_get))
            keep("store_get", _timed(store_get(False)))
            keep("store_get_verified", _timed(store_get(True)))
            store.delete("store-object")
            client.delete_object(Bucket=bucket, Key="boto3-object")
            server.reclaim()
    finally:
        store.close()
    figures = {k: {"seconds": round(s, 3), "MiB_per_s": round(size / s / MiB, 1), "client_cpu_s": round(c, 2)}
               for k, (s, c) in best.items()}
    t = {k: v[0] for k, v in best.items()}
    figures["add_vs_boto3"] = round(t["boto3_upload_fileobj"] / t["store_add"], 3)
    figures["driver_vs_boto3"] = round(t["boto3_upload_fileobj"] / t["driver_writer"], 3)
    figures["get_vs_boto3"] = round(t["boto3_get"] / t["store_get"], 3)
    figures["verified_get_vs_boto3"] = round(t["boto3_get"] / t["store_get_verified"], 3)
    return figures


_GLANCE_CHILD = r"""
import json, sys, time
from oslo_config import cfg
from glance_store._drivers import s3
endpoint, access, secret, bucket, path = sys.argv[1:6]
def hwm():
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
conf = cfg.ConfigOpts()
store = s3.Store(conf)
conf([], project="bench")
for key, value in {"s3_store_host": endpoint, "s3_store_access_key": access, "s3_store_secret_key": secret,
                   "s3_store_bucket": bucket, "s3_store_bucket_url_format": "path"}.items():
    conf.set_override(key, value, group="glance_store")
store.configure()
before = hwm()
t0 = time.perf_counter()
with open(path, "rb") as fh:
    uri, size, checksum, multihash, meta = store.add("glance-object", fh, 0, "sha512")  # 0: size unknown
seconds = time.perf_counter() - t0
print(json.dumps({"seconds": seconds, "size": size, "before": before, "peak": hwm()}))
"""


def glance_store_add(python: str, server: Server, bucket: str, path: Path, size: int) -> dict[str, Any]:
    """glance_store's S3 add of unknown size of the same file, in its own interpreter."""
    env = {**os.environ, "AWS_REQUEST_CHECKSUM_CALCULATION": "when_required",
           "AWS_RESPONSE_CHECKSUM_VALIDATION": "when_required"}
    proc = subprocess.run([python, "-c", _GLANCE_CHILD, server.endpoint, server.access, server.secret, bucket,
                           str(path)], capture_output=True, text=True, env=env, timeout=3600)
    if proc.returncode != 0:
        return {"error": proc.stderr.strip()[-1500:]}
    data = json.loads(proc.stdout.strip().splitlines()[-1])
    server.client().delete_object(Bucket=bucket, Key="glance-object")
    server.reclaim()
    return {"seconds": round(data["seconds"], 3), "MiB_per_s": round(size / data["seconds"] / MiB, 1),
            "rss_growth_mib": round((data["peak"] - data["before"]) / MiB, 1)}


def one_server(server: Server, path: Path, size: int, rss_sizes: list[int], runs: int,
               glance_python: str | None, log: Any) -> dict[str, Any]:
    client = server.client()
    bucket = f"bench-{uuid.uuid4().hex[:10]}"
    client.create_bucket(Bucket=bucket)
    out: dict[str, Any] = {"endpoint": server.endpoint}
    try:
        log(f"{server.name}: RSS of unknown-size adds {[s // MiB for s in rss_sizes]} MiB")
        out["rss"] = rss_figures(server, bucket, rss_sizes)
        log(f"{server.name}: throughput, {size // MiB} MiB, best of {runs}")
        out["throughput"] = throughput(server, bucket, path, size, runs)
        if glance_python:
            log(f"{server.name}: glance_store S3 add of unknown size")
            out["glance_store"] = gs = glance_store_add(glance_python, server, bucket, path, size)
            if "seconds" in gs:
                ours = out["throughput"]["store_add"]["seconds"]
                out["glance_store_vs_ours"] = round(gs["seconds"] / ours, 2)
    finally:
        for page in client.get_paginator("list_multipart_uploads").paginate(Bucket=bucket):
            for up in page.get("Uploads", []):
                client.abort_multipart_upload(Bucket=bucket, Key=up["Key"], UploadId=up["UploadId"])
        for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket):
            for obj in page.get("Contents", []):
                client.delete_object(Bucket=bucket, Key=obj["Key"])
        client.delete_bucket(Bucket=bucket)
        server.reclaim()
    return out


def targets(name: str, row: dict[str, Any]) -> list[dict[str, Any]]:
    def t(ident: str, text: str, value: float, op: str, limit: float) -> dict[str, Any]:
        met = value >= limit if op == ">=" else value <= limit
        return {"id": f"s3.{name}.{ident}", "description": f"{name}: {text}", "value": value, "op": op,
                "limit": limit, "met": met}

    out = []
    rss = row.get("rss", {})
    for label, fig in rss.items():
        out.append(t(f"rss_{label}", f"peak RSS growth of an unknown-size add of {label} (MiB)",
                     fig["growth_mib"], "<=", 256))
    if "1GiB" in rss and "2GiB" in rss and rss["1GiB"]["growth_mib"] > 0:
        out.append(t("rss_flat", "RSS growth 2 GiB / 1 GiB", round(rss["2GiB"]["growth_mib"] /
                                                                   rss["1GiB"]["growth_mib"], 2), "<=", 1.1))
    tp = row.get("throughput", {})
    for key, text in (("add_vs_boto3", "Store.add (md5+sha512) vs boto3 upload_fileobj"),
                      ("driver_vs_boto3", "driver writer (no hashing) vs boto3 upload_fileobj"),
                      ("get_vs_boto3", "Store.open(verify=False) vs boto3 streaming get")):
        if key in tp:
            out.append(t(key, text, tp[key], ">=", 0.8))
    if "glance_store_vs_ours" in row:
        out.append(t("glance_store", "glance_store S3 add time / ours (unknown size)", row["glance_store_vs_ours"],
                     ">=", 2))
    return out


def measure(workdir: Path, size: int, rss_sizes: list[int], runs: int, servers: list[str],
            log: Any = print) -> dict[str, Any]:
    """Every figure on every server; JSON-ready."""
    path = _source(workdir / f"s3-source-{size}.bin", size)
    glance_python = os.environ.get("IMAGESTORE_GLANCE_STORE_PYTHON")
    result: dict[str, Any] = {"size_bytes": size, "rss_sizes": rss_sizes, "runs": runs, "servers": {},
                              "targets": [], "notes": (
                                  "ratios are contender seconds / imagestore seconds (>1: imagestore faster); "
                                  "boto3 upload_fileobj uses its defaults (8 MiB parts, 10 threads); the store "
                                  "its own (16 MiB parts, concurrency 8); both clients, the server and the hash "
                                  "threads share this machine's cores")}
    if glance_python is None:
        result["glance_store"] = "skipped: set IMAGESTORE_GLANCE_STORE_PYTHON to a python with glance_store and boto3"
    osd_mib = max(4096, (2 * max([size, *rss_sizes]) + 2 * GiB) // MiB)
    try:
        for name in servers:
            with (moto() if name == "moto" else radosgw(osd_mib)) as server:
                row = one_server(server, path, size, rss_sizes, runs, glance_python, log)
                result["servers"][name] = row
                result["targets"] += targets(name, row)
    finally:
        path.unlink(missing_ok=True)
    return result


def run(ctx: Any) -> dict[str, Any]:
    """The harness entry point: throughput at ``ctx.size``, RSS at 1 and 2 GiB, both servers."""
    size = int(ctx.size)
    rss = [GiB, 2 * GiB] if not getattr(ctx, "quick", False) else [size, 2 * size]
    return measure(Path(ctx.workdir), size, rss, max(1, int(ctx.runs)), ["moto", "radosgw"], log=ctx.log)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--size-gib", type=float, default=1.0, help="throughput size (1)")
    p.add_argument("--rss-gib", type=float, nargs="+", default=[1.0, 2.0], help="unknown-size add sizes (1 2)")
    p.add_argument("--runs", type=int, default=2, help="alternated runs; best kept (2)")
    p.add_argument("--server", action="append", choices=("moto", "radosgw"), help="default: both")
    p.add_argument("--workdir", type=Path, default=Path("/var/tmp"))
    p.add_argument("--out", type=Path)
    args = p.parse_args(argv)

    def log(message: str) -> None:
        print(f"[s3 bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)

    result = measure(args.workdir, int(args.size_gib * GiB), [int(g * GiB) for g in args.rss_gib], args.runs,
                     args.server or ["moto", "radosgw"], log)
    text = json.dumps(result, indent=2)
    if args.out:
        args.out.write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
