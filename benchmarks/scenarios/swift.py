"""Swift scenario: add and get against bare python-swiftclient, the memory of an unknown-size
add, and a server-side clone against a stream copy, on one SAIO in the same run.

``run(ctx)`` uses the SAIO of ``IMAGESTORE_BENCH_SWIFT_DIR`` (a scripts/swift-start.sh
DIR) or starts a throwaway one on free ports and stops it afterwards. Sizes: ``ctx.size``
for throughput and clones (1 GiB by default), twice that for the memory figure. Only the
public API is used: ``imagestore.open_store``, ``Store.add/open/clone/delete`` (and, for
"hashing off", the driver's own writer). Also runnable as a script:
``python -m imagestore_bench.scenarios.swift [WORKDIR] [SIZE_GIB]`` prints JSON.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

from ..env.checkout import SCRIPTS, script
from ..env.services import free_ports, read_env
from ..figures import target

MiB = 1 << 20
GiB = 1 << 30
SEGMENT = 32 * MiB
CONCURRENCY = 4
KEY_ENV = "IMAGESTORE_BENCH_SWIFT_KEY"

_RSS_CHILD = r"""
import json, os, sys, time
import imagestore
spec, size = json.loads(sys.argv[1]), int(sys.argv[2])

def hwm_mib():
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024

store = imagestore.open_store(spec, "bench")
block = os.urandom(4 << 20)
marks = {}
base = hwm_mib()

def stream():
    sent = 0
    while sent < size:
        n = min(len(block), size - sent)
        yield block[:n]
        sent += n
        if sent >= size // 2 and "half" not in marks:
            marks["half"] = hwm_mib()

t0 = time.perf_counter()
info = store.add("rss", stream())  # size unknown to the store
seconds = time.perf_counter() - t0
store.delete(info.location)
print(json.dumps({"baseline_mib": base, "peak_half_mib": marks["half"], "peak_mib": hwm_mib(), "seconds": seconds}))
"""


class Saio:
    """A SAIO for the benchmark: reused from a DIR, or started (and later stopped) here."""

    def __init__(self, log: Any) -> None:
        reuse = os.environ.get("IMAGESTORE_BENCH_SWIFT_DIR")
        self.owned: Path | None = None
        if reuse:
            self.dir = Path(reuse)
        else:
            self.dir = Path(tempfile.mkdtemp(prefix="swift-bench-", dir="/tmp"))
            names = ("SWIFT_PROXY_PORT", "SWIFT_OBJECT_PORT", "SWIFT_CONTAINER_PORT", "SWIFT_ACCOUNT_PORT",
                     "SWIFT_MEMCACHED_PORT")
            env = {**os.environ, **dict(zip(names, map(str, free_ports(5)), strict=True)), "SWIFT_NODE_TIMEOUT": "10"}
            log(f"swift: starting a SAIO in {self.dir}")
            start = script("swift-start.sh", "--scenario swift")
            proc = subprocess.run(["bash", str(start), str(self.dir)], env=env, text=True, capture_output=True,
                                  timeout=900)
            if proc.returncode != 0:
                raise RuntimeError(f"swift-start.sh failed: {proc.stderr[-2000:]}")
            self.owned = self.dir
        self.env = read_env(self.dir / "env")
        for var in ("NO_PROXY", "no_proxy"):
            os.environ[var] = "127.0.0.1,localhost"
        os.environ[KEY_ENV] = self.env["ST_KEY"]

    def pids(self) -> list[int]:
        return [int((self.dir / "pids" / n).read_text().split()[0]) for n in ("proxy", "object", "container")]

    def spec(self, container: str, **extra: Any) -> dict[str, Any]:
        return {"driver": "swift", "auth_url": self.env["ST_AUTH"], "user": self.env["ST_USER"],
                "key": {"env": KEY_ENV}, "container": container, "segment_size": SEGMENT,
                "concurrency": CONCURRENCY, **extra}

    def service(self) -> Any:
        from swiftclient.service import SwiftService

        return SwiftService(options={"auth": self.env["ST_AUTH"], "user": self.env["ST_USER"],
                                     "key": self.env["ST_KEY"], "auth_version": "1",
                                     "segment_threads": CONCURRENCY, "object_uu_threads": 1})

    def conn(self) -> Any:
        from swiftclient.client import Connection

        return Connection(authurl=self.env["ST_AUTH"], user=self.env["ST_USER"], key=self.env["ST_KEY"],
                          auth_version="1", retries=0, timeout=120)

    def stop(self) -> None:
        if self.owned is not None:
            subprocess.run(["bash", str(SCRIPTS / "swift-stop.sh"), str(self.owned)], capture_output=True, timeout=120)


def _cpu(pids: list[int]) -> float:
    total = 0.0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
        except (OSError, IndexError, ValueError):
            pass
    return total


def _timed(fn: Any, saio: Saio) -> tuple[float, float, float, Any]:
    """(wall seconds, our CPU seconds, Swift servers' CPU seconds, result) of ``fn()``."""
    c0, s0, t0 = time.process_time(), _cpu(saio.pids()), time.perf_counter()
    result = fn()
    return time.perf_counter() - t0, time.process_time() - c0, _cpu(saio.pids()) - s0, result


def _row(rows: list[tuple[float, float, float]], nbytes: int) -> dict[str, Any]:
    best = min(rows)
    return {"seconds": round(best[0], 3), "MiB_per_s": round(nbytes / best[0] / MiB, 1),
            "client_cpu_s": round(best[1], 2), "swift_cpu_s": round(best[2], 2), "runs": len(rows),
            "all_seconds": [round(r[0], 3) for r in rows]}


def _bare_upload(saio: Saio, source: Path, container: str, name: str) -> None:
    from swiftclient.service import SwiftUploadObject

    with saio.service() as service:
        for result in service.upload(container, [SwiftUploadObject(str(source), object_name=name)],
                                     options={"segment_size": SEGMENT, "use_slo": True,
                                              "segment_container": f"{container}_segments"}):
            if not result["success"]:
                raise RuntimeError(f"swiftclient upload failed: {result.get('error')}")


def _bare_delete(saio: Saio, container: str, name: str) -> None:
    with saio.service() as service:
        for result in service.delete(container, [name]):
            if not result["success"]:
                raise RuntimeError(f"swiftclient delete failed: {result.get('error')}")


def _driver_write(store: Any, image: str, source: Path, chunk: int) -> Any:
    """The driver's writer alone (no hashing, no inspection): what 'hashing off' means here."""
    writer = store._driver.open_writer(image, None)
    buf = bytearray(chunk)
    with open(source, "rb", buffering=0) as fh:
        while n := fh.readinto(buf):
            writer.write(memoryview(buf)[:n])
    return writer.commit({})


def add_figure(ctx: Any, saio: Saio, targets: list[dict[str, Any]]) -> dict[str, Any]:
    """Store.add of a warm file (hashing md5+sha512, md5 only, driver alone) vs swiftclient's SLO upload."""
    import imagestore

    size, src = ctx.size, ctx.source(ctx.size)
    container = f"bench-add-{uuid.uuid4().hex[:6]}"
    store = imagestore.open_store(saio.spec(container), "bench")
    md5 = imagestore.open_store(saio.spec(container, checksums=["md5"]), "bench-md5")
    rows: dict[str, list[tuple[float, float, float]]] = {"bare": [], "add": [], "add_md5": [], "driver": []}
    ctx.log(f"swift/add: {ctx.runs} x swiftclient SLO upload, Store.add (2 hashes, md5), driver writer")
    order = list(rows)
    for i in range(ctx.runs):
        for which in order if i % 2 == 0 else reversed(order):
            name = f"{which}-{i}"
            if which == "bare":
                wall, cpu, scpu, _ = _timed(lambda n=name: _bare_upload(saio, src, container, n), saio)
                _bare_delete(saio, container, name)
            elif which == "driver":
                wall, cpu, scpu, loc = _timed(lambda n=name: _driver_write(store, n, src, ctx.chunk_size), saio)
                store.delete(loc)
            else:
                s = store if which == "add" else md5
                wall, cpu, scpu, info = _timed(lambda s=s, n=name: s.add(n, str(src)), saio)
                s.delete(info.location)
            rows[which].append((wall, cpu, scpu))
    out = {k: _row(v, size) for k, v in rows.items()}
    for k in ("add", "add_md5", "driver"):
        out[k]["vs_bare"] = round(out["bare"]["seconds"] / out[k]["seconds"], 3)
    targets.append(target("swift_add_vs_swiftclient", f"Store.add (md5+sha512) vs swiftclient SLO upload, "
                          f"{size // MiB} MiB", out["add"]["vs_bare"], ">=", 0.8))
    store.close()
    md5.close()
    return out


def get_figure(ctx: Any, saio: Saio, targets: list[dict[str, Any]]) -> dict[str, Any]:
    """Store.open streamed (verify off and on) vs swiftclient's get_object in 4 MiB chunks."""
    import imagestore

    size, src = ctx.size, ctx.source(ctx.size)
    container = f"bench-get-{uuid.uuid4().hex[:6]}"
    store = imagestore.open_store(saio.spec(container), "bench")
    info = store.add("img", str(src))
    conn = saio.conn()

    def bare() -> int:
        _, body = conn.get_object(container, "img", resp_chunk_size=4 * MiB)
        return sum(len(c) for c in body)

    def ours(verify: bool) -> int:
        with store.open(info.location, verify=verify) as reader:
            return sum(len(c) for c in reader)

    rows: dict[str, list[tuple[float, float, float]]] = {"bare": [], "get": [], "get_verified": []}
    ctx.log(f"swift/get: {ctx.runs} x swiftclient GET, Store.open (verify off, on)")
    for i in range(ctx.runs):
        for which in ("bare", "get", "get_verified") if i % 2 == 0 else ("get_verified", "get", "bare"):
            fn = bare if which == "bare" else (lambda v=(which == "get_verified"): ours(v))
            wall, cpu, scpu, got = _timed(fn, saio)
            if got != size:
                raise AssertionError(f"{which} read {got} of {size} bytes")
            rows[which].append((wall, cpu, scpu))
    out = {k: _row(v, size) for k, v in rows.items()}
    for k in ("get", "get_verified"):
        out[k]["vs_bare"] = round(out["bare"]["seconds"] / out[k]["seconds"], 3)
    targets.append(target("swift_get_vs_swiftclient", f"Store.open(verify=False) vs swiftclient GET, "
                          f"{size // MiB} MiB", out["get"]["vs_bare"], ">=", 0.8))
    store.delete(info.location)
    conn.close()
    store.close()
    return out


def rss_figure(ctx: Any, saio: Saio, targets: list[dict[str, Any]]) -> dict[str, Any]:
    """Peak RSS of an unknown-size add of 2 x size, at half way and at the end (fresh interpreter)."""
    size = 2 * ctx.size
    container = f"bench-rss-{uuid.uuid4().hex[:6]}"
    ctx.log(f"swift/rss: unknown-size add of {size // MiB} MiB in a child process")
    proc = subprocess.run([sys.executable, "-c", _RSS_CHILD, json.dumps(saio.spec(container)), str(size)],
                          capture_output=True, text=True, timeout=3600)
    if proc.returncode != 0:
        raise RuntimeError(f"rss child failed: {proc.stderr[-2000:]}")
    data = json.loads(proc.stdout.strip().splitlines()[-1])
    out = {"size_bytes": size, "baseline_mib": round(data["baseline_mib"], 1),
           "peak_at_half_mib": round(data["peak_half_mib"], 1), "peak_mib": round(data["peak_mib"], 1),
           "growth_mib": round(data["peak_mib"] - data["baseline_mib"], 1),
           "growth_at_half_mib": round(data["peak_half_mib"] - data["baseline_mib"], 1),
           "MiB_per_s": round(size / data["seconds"] / MiB, 1)}
    targets.append(target("swift_rss_growth", f"peak RSS growth of an unknown-size add of {size // MiB} MiB (MiB)",
                          out["growth_mib"], "<=", 256))
    targets.append(target("swift_rss_flat", "peak RSS at the end / at half way of that add",
                          data["peak_mib"] / data["peak_half_mib"], "<=", 1.1))
    return out


def clone_figure(ctx: Any, saio: Saio, targets: list[dict[str, Any]]) -> dict[str, Any]:
    """Server-side clone (every segment copied in Swift) vs a verified stream copy of a size SLO."""
    import imagestore

    size, src = ctx.size, ctx.source(ctx.size)
    container = f"bench-clone-{uuid.uuid4().hex[:6]}"
    store = imagestore.open_store(saio.spec(container), "bench")
    info = store.add("src", str(src))
    rows: dict[str, list[tuple[float, float, float]]] = {"server_copy": [], "stream": []}
    ctx.log(f"swift/clone: {ctx.runs} x server-side clone and stream copy of {size // MiB} MiB")
    for i in range(ctx.runs):
        for mode in ("server_copy", "stream") if i % 2 == 0 else ("stream", "server_copy"):
            wall, cpu, scpu, res = _timed(lambda m=mode, n=f"{mode}-{i}": store.clone(info.location, name=n, mode=m),
                                          saio)
            if res.mode != mode:
                raise AssertionError(f"asked {mode}, got {res.mode}")
            store.delete(res.location)
            rows[mode].append((wall, cpu, scpu))
    out = {k: _row(v, size) for k, v in rows.items()}
    out["server_copy"]["vs_stream"] = round(out["stream"]["seconds"] / out["server_copy"]["seconds"], 3)
    targets.append(target("swift_clone_vs_stream", f"stream copy time / server-side clone time, {size // MiB} MiB",
                          out["server_copy"]["vs_stream"], ">=", 1.0))
    store.delete(info.location)
    store.close()
    return out


def run(ctx: Any) -> dict[str, Any]:
    """Every figure on one SAIO; a part that fails is reported without hiding the others."""
    try:
        saio = Saio(ctx.log)
    except Exception as exc:  # no SAIO here: the scenario reports why
        return {"skipped": f"no Swift SAIO: {type(exc).__name__}: {exc}"}
    out: dict[str, Any] = {"swift_version": saio.env.get("SWIFT_VERSION"), "segment_size": SEGMENT,
                           "concurrency": CONCURRENCY}
    targets: list[dict[str, Any]] = []
    try:
        for name, part in (("add", add_figure), ("get", get_figure), ("rss", rss_figure), ("clone", clone_figure)):
            try:
                out[name] = part(ctx, saio, targets)
            except Exception as exc:  # reported; the other parts still run
                ctx.log(f"swift/{name} failed: {exc!r}")
                out[name] = {"error": f"{type(exc).__name__}: {exc}"}
    finally:
        saio.stop()
    out["targets"] = targets
    return out


class _ScriptContext:
    """Enough of the harness's Context to run standalone: sizes, a work dir, warm source files."""

    def __init__(self, workdir: Path, size: int, runs: int) -> None:
        self.workdir, self.size, self.runs, self.chunk_size = workdir, size, runs, 4 * MiB
        self._sources: dict[int, Path] = {}

    def log(self, message: str) -> None:
        print(f"[bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)

    def source(self, size: int) -> Path:
        path = self._sources.get(size)
        if path is None:
            path = self.workdir / f"source-{size}.bin"
            block = os.urandom(64 * MiB)
            with open(path, "wb") as fh:
                left = size
                while left:
                    left -= fh.write(block[:min(left, len(block))])
            self._sources[size] = path
        with open(path, "rb", buffering=0) as fh:  # page-cache warm
            while fh.read(16 * MiB):
                pass
        return path


if __name__ == "__main__":
    work = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(tempfile.mkdtemp(prefix="swift-bench-", dir="/var/tmp"))
    work.mkdir(parents=True, exist_ok=True)
    gib = float(sys.argv[2]) if len(sys.argv) > 2 else 1.0
    runs = int(sys.argv[3]) if len(sys.argv) > 3 else 3
    print(json.dumps(run(_ScriptContext(work, int(gib * GiB), runs)), indent=2))
