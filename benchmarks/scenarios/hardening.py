"""Hardening figures: crash sweeps, the fault matrix and concurrent load on every backend,
fuzzing, and the advisory suite, each with its invariants' counters.

``run(ctx)`` starts what it needs and stops it afterwards: two Ceph clusters (clone v1 and
v2) with a radosgw on the second, moto's S3 server and a Swift SAIO, through the
project's scripts; a backend that cannot start is reported as skipped. Set
``IMAGESTORE_CEPH_V1_DIR``/``IMAGESTORE_CEPH_V2_DIR`` or ``IMAGESTORE_SWIFT_DIR`` to reuse
running ones. ``ctx.quick`` gives a smoke-sized run. Also a script:
``python -m imagestore_bench.scenarios.hardening [--quick]`` prints the JSON.

The figures the README reports, per backend and overall: kill points, images lost,
corrupt reads returned, orphans after sweep, faults injected per kind, operations under
load (ops/s, p99, leaks), fuzz examples, advisories covered, and secrets printed
(occurrences of any backend secret in every log record and in this report).
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import re
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from functools import partial
from pathlib import Path
from typing import Any

from imagestore.testing import fuzz
from imagestore.testing.backends import Backend, FileBackend, RbdBackend, S3Backend, SwiftBackend
from imagestore.testing.crash import OPS, WRITES, CrashSweep
from imagestore.testing.faultrun import fault_run
from imagestore.testing.load import load_run
from imagestore.testing.moto import MotoProcess

from ..env.checkout import REPO, NeedsCheckout, need_checkout
from ..env.checkout import script as script_path
from ..env.services import free_port, free_ports, read_env

FULL: dict[str, Any] = {"calls_per_op": 14, "bytes_per_write": 4, "fault_rounds": 5, "load_seconds": 20.0,
                        "fuzz_examples": 2000, "inspector_examples": 400}
QUICK: dict[str, Any] = {"calls_per_op": 1, "bytes_per_write": 1, "fault_rounds": 1, "load_seconds": 3.0,
                         "fuzz_examples": 50, "inspector_examples": 20}


class Services:
    """The servers this run started (stopped by :meth:`stop`) and the backends on them."""

    def __init__(self, workdir: Path, log: Callable[[str], None]) -> None:
        self.workdir = workdir
        self.log = log
        self.stops: list[Callable[[], object]] = []
        self.skipped: dict[str, str] = {}
        self.secrets: list[str] = []

    def _run(self, script: str, directory: Path, env: dict[str, str]) -> str:
        try:
            path = script_path(script, "--scenario hardening (its services)")
        except NeedsCheckout as exc:
            return str(exc)
        proc = subprocess.run(["bash", str(path), str(directory)], env={**os.environ, **env},
                              capture_output=True, text=True, timeout=900)
        if proc.returncode != 0:
            return f"{script} exited {proc.returncode}: {(proc.stderr or proc.stdout).strip()[-600:]}"
        return ""

    def ceph(self, kind: str) -> Path | None:
        reuse = os.environ.get(f"IMAGESTORE_CEPH_{kind.upper()}_DIR")
        if reuse:
            return Path(reuse)
        d = Path(tempfile.mkdtemp(prefix=f"hceph{kind}-", dir="/tmp"))
        failure = self._run("ceph-start.sh", d, {"CEPH_MON_PORT": str(free_port()),
                                                 "CEPH_MIN_COMPAT_CLIENT": "mimic" if kind == "v2" else ""})
        self.stops.append(lambda: self._run("ceph-stop.sh", d, {}))
        if failure:
            self.skipped[f"rbd-{kind}"] = failure
            return None
        return d

    def rbd(self, kind: str) -> Backend | None:
        d = self.ceph(kind)
        if d is None:
            return None
        keyring = d / "client.imagestore.keyring"
        self.secrets += [line.split("=", 1)[1].strip() for line in keyring.read_text().splitlines()
                         if line.strip().startswith("key")]
        return RbdBackend(str(d / "ceph.conf"), keyring=str(keyring), label=kind)

    def radosgw(self, cluster: Path | None) -> Backend | None:
        if cluster is None:
            self.skipped["s3-radosgw"] = "no Ceph cluster"
            return None
        env = read_env(cluster / "env")
        if "CEPH_RGW_ENDPOINT" not in env:
            failure = self._run("ceph-rgw-start.sh", cluster, {"CEPH_RGW_PORT": str(free_port())})
            if failure:
                self.skipped["s3-radosgw"] = failure
                return None
            if os.environ.get("IMAGESTORE_CEPH_V2_DIR"):  # else ceph-stop.sh stops it with our cluster
                self.stops.append(lambda: self._run("ceph-rgw-stop.sh", cluster, {}))
            env = read_env(cluster / "env")
        self.secrets += [env["CEPH_RGW_SECRET_KEY"], env["CEPH_RGW_ACCESS_KEY"]]
        return S3Backend(env["CEPH_RGW_ENDPOINT"], env["CEPH_RGW_ACCESS_KEY"], env["CEPH_RGW_SECRET_KEY"],
                         base=f"hard-{uuid.uuid4().hex[:8]}", label="radosgw")

    def moto(self) -> Backend | None:
        server = MotoProcess(logdir=self.workdir)
        self.stops.append(server.stop)
        try:
            server.start()
        except RuntimeError as exc:
            self.skipped["s3-moto"] = f"moto.server did not start (pip install 'moto[server]'): {exc}"[:500]
            return None
        port = server.port
        secret = f"moto-secret-{uuid.uuid4().hex[:12]}"
        self.secrets.append(secret)
        return S3Backend(f"http://127.0.0.1:{port}", "moto-access", secret, base=f"hard-{uuid.uuid4().hex[:8]}",
                         label="moto")

    def swift(self) -> Backend | None:
        reuse = os.environ.get("IMAGESTORE_SWIFT_DIR")
        if reuse:
            d = Path(reuse)
        else:
            d = Path(tempfile.mkdtemp(prefix="hswift-", dir="/tmp"))
            names = ("SWIFT_PROXY_PORT", "SWIFT_OBJECT_PORT", "SWIFT_CONTAINER_PORT", "SWIFT_ACCOUNT_PORT",
                     "SWIFT_MEMCACHED_PORT")
            env = {n: str(port) for n, port in zip(names, free_ports(len(names)), strict=True)}
            env.update(SWIFT_NODE_TIMEOUT="3", SWIFT_CONSTRAINTS="", SWIFT_MAX_MANIFEST_SEGMENTS="1000",
                       SWIFT_MAX_MANIFEST_SIZE=str(8 << 20))
            failure = self._run("swift-start.sh", d, env)
            self.stops.append(lambda: self._run("swift-stop.sh", d, {}))
            if failure:
                self.skipped["swift"] = failure
                return None
        for var in ("NO_PROXY", "no_proxy"):
            os.environ[var] = ",".join(filter(None, [os.environ.get(var, ""), "127.0.0.1", "localhost"]))
        env = read_env(d / "env")
        self.secrets.append(env["SWIFT_KEY2"])
        return SwiftBackend(env["ST_AUTH"], env["SWIFT_USER2"], env["SWIFT_KEY2"], base=f"hard-{uuid.uuid4().hex[:8]}")

    def stop(self) -> None:
        for stop in reversed(self.stops):
            with contextlib.suppress(Exception):
                stop()


class _Capture(logging.Handler):
    """Every imagestore log record of the run, formatted, to count secrets in."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        with contextlib.suppress(Exception):
            self.lines.append(self.format(record))


@contextlib.contextmanager
def _captured() -> Iterator[_Capture]:
    handler = _Capture()
    loggers = [logging.getLogger(n) for n in ("imagestore", "botocore", "urllib3", "swiftclient")]
    levels = [lg.level for lg in loggers]
    for lg in loggers:
        lg.addHandler(handler)
        lg.setLevel(logging.DEBUG if lg.name == "imagestore" else logging.INFO)
    logging.getLogger("imagestore").propagate = False
    try:
        yield handler
    finally:
        for lg, level in zip(loggers, levels, strict=True):
            lg.removeHandler(handler)
            lg.setLevel(level)
        logging.getLogger("imagestore").propagate = True


def _crash(backend: Backend, sizes: dict[str, Any], log: Callable[[str], None]) -> dict[str, Any]:
    sweep = CrashSweep(backend, f"k{uuid.uuid4().hex[:6]}", seed=2026, log=log)
    try:
        for op in OPS:
            per_write = int(sizes["bytes_per_write"]) if op in WRITES else 0
            for mode, at in sweep.plan(op, int(sizes["calls_per_op"]), per_write):
                sweep.strike(op, mode, at)
        report: dict[str, Any] = sweep.finish()
        return report
    finally:
        sweep.close()


def _inspector_fuzz(examples: int, workdir: Path, seed: int) -> dict[str, Any]:
    """Seeded mutations of real images of every format qemu-img makes (plus junk behind each
    magic): no crash, bounded time per MiB, bounded memory."""
    import random
    import shutil
    import tracemalloc

    from imagestore.formats import KNOWN_FORMATS, StreamInspector

    if shutil.which("qemu-img") is None:
        return {"skipped": "qemu-img is not installed"}
    src = workdir / "src.raw"
    src.write_bytes(random.Random(seed).randbytes(1 << 20) + bytes(1 << 20))
    made = {"raw": src}
    for name, args in {"qcow2": ["-O", "qcow2"], "qcow2-compressed": ["-c", "-O", "qcow2"], "qed": ["-O", "qed"],
                       "vmdk": ["-O", "vmdk"], "vmdk-stream": ["-O", "vmdk", "-o", "subformat=streamOptimized"],
                       "vhd": ["-O", "vpc"], "vhd-fixed": ["-O", "vpc", "-o", "subformat=fixed"],
                       "vhdx": ["-O", "vhdx"], "vdi": ["-O", "vdi"]}.items():
        out = workdir / f"{name}.img"
        subprocess.run(["qemu-img", "convert", *args, str(src), str(out)], check=True, capture_output=True)
        made[name] = out
    samples = {n: p.read_bytes() for n, p in made.items()}
    rng = random.Random(seed)
    failures: list[str] = []
    worst: dict[str, float] = {"seconds_per_mib": 0.0, "peak_bytes": 0}
    count = 0
    tracemalloc.start()
    try:
        for i in range(examples):
            name = rng.choice(sorted(samples))
            data = bytearray(samples[name])
            region = rng.choice([0, max(0, len(data) - 65536), rng.randrange(len(data))])
            for _ in range(rng.randint(1, 32)):
                data[(region + rng.randrange(65536)) % len(data)] = rng.randrange(256)
            if rng.random() < 0.2:
                data = data[:rng.randrange(len(data))]
            chunk = rng.choice([512, 4096, 65536, 1 << 20])
            tracemalloc.reset_peak()
            base = tracemalloc.get_traced_memory()[0]
            start = time.perf_counter()
            try:
                inspector = StreamInspector()
                view = memoryview(bytes(data))
                for at in range(0, len(view), chunk):
                    inspector.feed(view[at:at + chunk])
                verdict = inspector.finish()
                if verdict.format is not None and verdict.format not in KNOWN_FORMATS:
                    failures.append(f"{name}#{i}: unknown format {verdict.format}")
                if verdict.safe is not (not verdict.reasons):
                    failures.append(f"{name}#{i}: safe and reasons disagree")
            except Exception as exc:  # noqa: BLE001 - a crash is the figure
                failures.append(f"{name}#{i}: {type(exc).__name__}: {exc}")
            elapsed = time.perf_counter() - start
            peak = tracemalloc.get_traced_memory()[1] - base - len(data)
            worst["seconds_per_mib"] = max(worst["seconds_per_mib"], elapsed / max(len(data) / (1 << 20), 1 / 16))
            worst["peak_bytes"] = max(worst["peak_bytes"], peak)
            count += 1
    finally:
        tracemalloc.stop()
    return {"examples": count, "formats": sorted(samples), "failures": failures[:20],
            "failure_count": len(failures), "worst_seconds_per_mib": round(worst["seconds_per_mib"], 4),
            "worst_extra_memory_bytes": worst["peak_bytes"]}


def _advisories() -> dict[str, Any]:
    """Run the security suite (tests/security) when the source checkout has it."""
    tests = REPO / "tests" / "security"
    if not tests.is_dir():
        return {"skipped": need_checkout("the advisories figure (tests/security)", "tests/security/")}
    proc = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(tests)], cwd=REPO,
                          capture_output=True, text=True, timeout=900)
    tail = proc.stdout.strip().splitlines()[-1] if proc.stdout.strip() else proc.stderr[-300:]
    counts = {k: int(v) for v, k in re.findall(r"(\d+) (passed|failed|error|errors|skipped)", tail)}
    failed = [line.split(" ", 1)[1].split(" - ")[0] for line in proc.stdout.splitlines() if line.startswith("FAILED ")]
    names = {n.split("::")[-1].split("[")[0] for n in failed}
    return {"summary": tail, "passed": counts.get("passed", 0), "failed": counts.get("failed", 0),
            "failed_tests": sorted(names)}


def run(ctx: Any) -> dict[str, Any]:
    """Every hardening figure on every backend that can run here (``ctx.only``: these backends)."""
    sizes = QUICK if getattr(ctx, "quick", False) else FULL
    only = set(getattr(ctx, "only", None) or ())
    workdir = Path(ctx.workdir)
    log: Callable[[str], None] = getattr(ctx, "log", print)
    services = Services(workdir, log)
    out: dict[str, Any] = {"sizes": sizes, "backends": {}}
    started = time.monotonic()
    with _captured() as captured:
        try:
            v2 = services.ceph("v2") if not only or only & {"rbd-v2", "s3-radosgw"} else None
            makers: dict[str, Callable[[], Backend | None]] = {
                "file": lambda: FileBackend(workdir / "file"),
                "rbd-v1": lambda: services.rbd("v1"),
                "rbd-v2": lambda: services.rbd("v2") if v2 is not None else None,
                "s3-moto": services.moto,
                "s3-radosgw": lambda: services.radosgw(v2),
                "swift": services.swift,
            }
            for name, make in makers.items():
                if only and name not in only:
                    continue
                try:
                    backend = make()
                except Exception as exc:  # noqa: BLE001 - one backend that cannot start is a skip
                    services.skipped[name] = f"{type(exc).__name__}: {exc}"
                    backend = None
                if backend is None:
                    out["backends"][name] = {"skipped": services.skipped.get(name, "not available")}
                    continue
                figures: dict[str, Any] = {}
                jobs: list[tuple[str, Callable[[], dict[str, Any]]]] = [
                    ("crash", partial(_crash, backend, sizes, log)),
                    ("faults", partial(fault_run, backend, f"f{uuid.uuid4().hex[:6]}",
                                       rounds=sizes["fault_rounds"], seed=7)),
                    ("load", partial(load_run, backend, f"l{uuid.uuid4().hex[:6]}", clients=16,
                                     seconds=sizes["load_seconds"], seed=3)),
                ]
                for part, job in jobs:
                    log(f"hardening: {name} {part}")
                    t0 = time.monotonic()
                    try:
                        figures[part] = job()
                    except Exception as exc:  # noqa: BLE001 - reported, the next part goes on
                        figures[part] = {"error": f"{type(exc).__name__}: {exc}"}
                    figures[part]["duration_s"] = round(time.monotonic() - t0, 1)
                    figures[part].pop("by_case", None)
                out["backends"][name] = figures
            log("hardening: fuzzing")
            out["fuzz"] = fuzz.run(sizes["fuzz_examples"], seed=0)
            out["inspector_fuzz"] = _inspector_fuzz(sizes["inspector_examples"], workdir, seed=11)
            log("hardening: advisory suite")
            out["advisories"] = _advisories()
        finally:
            services.stop()
    text = json.dumps(out, default=str) + "\n".join(captured.lines)
    out["secrets_printed"] = sum(text.count(s) for s in set(services.secrets) | {fuzz.SECRET} if s)
    out["log_records_checked"] = len(captured.lines)
    out["summary"] = summary(out)
    out["duration_s"] = round(time.monotonic() - started, 1)
    return out


def summary(out: dict[str, Any]) -> dict[str, Any]:
    """The README's table: per backend, the counts and the invariants' counters."""
    rows = {}
    for name, b in out["backends"].items():
        if "skipped" in b:
            rows[name] = {"skipped": b["skipped"][:200]}
            continue
        crash, faults, load = b.get("crash", {}), b.get("faults", {}), b.get("load", {})
        rows[name] = {
            "kill_points": crash.get("kill_points"),
            "images_lost": crash.get("images_lost"),
            "corrupt_reads_returned": sum(x.get("corrupt_reads_returned", 0) or 0 for x in (crash, faults, load)),
            "partial_visible": crash.get("partial_visible"),
            "stuck_ids": crash.get("stuck"),
            "orphans_after_sweep": crash.get("orphans_after_sweep"),
            "residue_after_cleanup": crash.get("residue_after_cleanup"),
            "fault_cases": faults.get("cases_run"),
            "faults_injected": faults.get("faults_injected"),
            "faults_by_kind": faults.get("injected_by_kind"),
            "fault_contract_violations": faults.get("violation_count"),
            "load_ops": load.get("ops"),
            "load_ops_per_s": load.get("ops_per_s"),
            "load_p99_ms": load.get("p99_ms"),
            "load_errors": load.get("error_count"),
            "deadlocked": load.get("deadlocked"),
            "leaked_after_close": load.get("leaked_after_close"),
            "rss_growth_kib": load.get("rss_growth_kib"),
            "errors": [p for p in ("crash", "faults", "load") if "error" in b.get(p, {})],
        }
    return {"backends": rows, "fuzz_examples": out["fuzz"]["total_examples"] + out["inspector_fuzz"].get("examples", 0),
            "fuzz_failures": sorted(out["fuzz"]["failures"]) + (["inspector"] if out["inspector_fuzz"].get(
                "failure_count") else []),
            "advisory_tests_passed": out["advisories"].get("passed"),
            "advisory_tests_failed": out["advisories"].get("failed"),
            "secrets_printed": out["secrets_printed"]}


def main(argv: list[str] | None = None) -> int:
    """Script entry: run at full size (or ``--quick``) in a temporary directory; JSON on stdout."""
    import argparse
    import shutil

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true")
    p.add_argument("--backend", action="append", help="only this backend (file, rbd-v1, rbd-v2, s3-moto, "
                                                      "s3-radosgw, swift; repeatable)")
    p.add_argument("--out", type=Path)
    args = p.parse_args(argv)
    workdir = Path(tempfile.mkdtemp(prefix="imagestore-hardening-", dir="/var/tmp"))

    class _Ctx:
        quick = args.quick
        only = args.backend

        def __init__(self) -> None:
            self.workdir = workdir

        @staticmethod
        def log(message: str) -> None:
            print(f"[hardening {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)

    try:
        result = run(_Ctx())
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    text = json.dumps(result, indent=1, default=str)
    if args.out:
        args.out.write_text(text + "\n")
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
