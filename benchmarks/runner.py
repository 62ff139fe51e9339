"""One benchmark run: the data, the JSONL output, the noise guard, and interleaved timing of contenders.

:meth:`Run.compare` is the one timing loop every figure goes through: the
contenders of a figure (imagestore's operation and its same-run limits) are
run repeat by repeat in a rotating order, each after the noise guard, and each
repeat and each summary (min/median/max, ratio to its limit) becomes a JSONL
record (``schema.py``).
"""

from __future__ import annotations

import json
import os
import random
import statistics
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from . import schema
from .measure import Reported, Step, latency_fields, mb_s, measure
from .env.noise import NoiseGuard
from .progress import Progress

POOL_BYTES = 256 << 20  # random bytes generated once; bigger sources repeat them

Fn = Callable[[], Any]


@dataclass
class Contender:
    """One side of a figure: ``prepare(repeat)`` returns (timed callable, cleanup or None).

    ``limit`` names the contender (of the same figure) this one is compared with;
    a limit itself has ``is_limit``. ``ops`` is how many operations one timed call
    does (latencies come from ``Step.latencies`` when the callable fills them).
    """

    op: str
    prepare: Callable[[int], tuple[Fn, Fn | None]]
    nbytes: int
    limit: str | None = None
    is_limit: bool = False
    scenario: str = "store"
    ops: int = 1
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass
class Run:
    """Settings and shared state of one ``imagestore bench`` run."""

    workdir: Path
    out: IO[str]
    chunk: int = 4 << 20
    repeats: int = 3
    guard: NoiseGuard = field(default_factory=NoiseGuard)
    progress: Progress | None = None
    verbose: bool = True
    records: list[dict[str, Any]] = field(default_factory=list)
    _pool: bytes | None = None
    _sources: dict[int, Path] = field(default_factory=dict)
    failed: bool = False

    # ------------------------------------------------------------ output
    def log(self, message: str) -> None:
        if self.progress is not None:
            self.progress.note(message)
        elif self.verbose:
            print(f"[bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)

    def emit(self, record: dict[str, Any]) -> None:
        """Write one JSONL line (checked against the schema first: a bad record is a bug)."""
        problems = schema.validate(record)
        if problems:
            raise AssertionError(f"record does not match the schema: {problems}: {record}")
        self.records.append(record)
        self.out.write(json.dumps(record, sort_keys=False) + "\n")
        self.out.flush()

    def skip(self, scenario: str, store: str, reason: str) -> None:
        self.log(f"skip {scenario}/{store}: {reason}")
        self.emit({"kind": "skip", "scenario": scenario, "store": store, "reason": reason})

    # ------------------------------------------------------------ data
    def pool(self) -> bytes:
        if self._pool is None:
            rng = random.Random(20240611)
            step = 64 << 20
            self._pool = b"".join(rng.randbytes(step) for _ in range(POOL_BYTES // step))
        return self._pool

    def chunks(self, size: int, salt: int = 0) -> Iterator[bytes]:
        from .limits import chunks

        for piece in chunks(self.pool(), size, self.chunk, salt):
            yield bytes(piece)

    def source(self, size: int) -> Path:
        """A random-data file of ``size`` bytes (made once per run, read once to be page-cache warm)."""
        path = self._sources.get(size)
        if path is None:
            path = self.workdir / f"source-{size}.bin"
            with open(path, "wb", buffering=0) as fh:
                for piece in self.chunks(size):
                    fh.write(piece)
            self._sources[size] = path
        with open(path, "rb", buffering=0) as fh:
            while fh.read(self.chunk):
                pass
        return path

    def drop_sources(self) -> None:
        for path in self._sources.values():
            path.unlink(missing_ok=True)
        self._sources.clear()

    # ------------------------------------------------------------ timing
    def compare(self, store: str, driver: str, size: int, contenders: list[Contender], *,
                pids: Callable[[], list[int]] | None = None, concurrency: int = 1, mode: str = "single",
                repeats: int | None = None, label: str = "",
                external: dict[str, dict[str, Any]] | None = None) -> dict[str, dict[str, Any]]:
        """Time every contender ``repeats`` times, interleaved; emit runs and summaries; the summaries.

        ``external`` holds limit summaries measured in an earlier call (a candidate whose
        ``limit`` names one of them gets its summary ratio from it)."""
        n = repeats or self.repeats
        steps: dict[str, list[tuple[Step, dict[str, Any]]]] = {c.op: [] for c in contenders}
        errors: dict[str, str] = {}
        for r in range(n):
            order = contenders if r % 2 == 0 else list(reversed(contenders))
            if len(contenders) > 2:
                k = r % len(contenders)
                order = contenders[k:] + contenders[:k]
            for c in order:
                if c.op in errors:
                    continue
                if self.progress is not None:
                    self.progress.step(f"{store} {label or c.op} {_label(size)} x{concurrency} #{r + 1}")
                try:
                    fn, cleanup = c.prepare(r)
                    self.guard.before()
                    step = measure(fn, pids)
                    if isinstance(step.result, Reported):
                        step.result.apply(step)
                    elif c.ops > 1 and isinstance(step.result, list):
                        step.latencies = [float(x) for x in step.result]
                    backend = (step.backend_cpu_user_s or 0) + (step.backend_cpu_sys_s or 0)
                    noise = self.guard.after(backend)
                    if cleanup is not None:
                        cleanup()
                except Exception as exc:  # one contender failing is reported, the others go on
                    errors[c.op] = f"{type(exc).__name__}: {exc}"
                    self.log(f"{store} {c.op} failed: {errors[c.op][:300]}")
                    continue
                steps[c.op].append((step, noise))
        summaries: dict[str, dict[str, Any]] = {}
        by_op = {c.op: c for c in contenders}
        for c in contenders:
            if c.op in errors:
                self.failed = True
                self.skip(c.scenario, store, f"{c.op} {_label(size)} x{concurrency} {mode}: {errors[c.op]}")
                continue
        for c in sorted(contenders, key=lambda c: not c.is_limit):  # limits first: candidates need them
            if c.op in errors or not steps[c.op]:
                continue
            lim = (summaries.get(c.limit) or (external or {}).get(c.limit)) if c.limit else None
            lim_runs = steps.get(c.limit, []) if c.limit else []
            for r, (step, noise) in enumerate(steps[c.op]):
                lim_mb = (mb_s(by_op[c.limit].nbytes, lim_runs[r][0].seconds)
                          if lim and c.limit in by_op and r < len(lim_runs) else None)
                rec = self._record("run", c, store, driver, size, concurrency, mode, r, [step], [noise], lim_mb, None)
                self.emit(rec)
            summaries[c.op] = self._summary(c, store, driver, size, concurrency, mode, steps[c.op], lim)
        return summaries

    def _record(self, kind: str, c: Contender, store: str, driver: str, size: int, concurrency: int, mode: str,
                repeat: int | None, steps: list[Step], noises: list[dict[str, Any]], limit_mb_s: float | None,
                ratio_median: float | None) -> dict[str, Any]:
        secs = [s.seconds for s in steps]
        seconds = round(statistics.median(secs), 9)
        rate = mb_s(c.nbytes, seconds)
        lat: list[float] = [x for s in steps for x in s.latencies] or (
            [s.seconds / c.ops for s in steps] if c.ops == 1 else [])
        mid = steps[secs.index(sorted(secs)[(len(secs) - 1) // 2])]
        rates = [mb_s(c.nbytes, s) for s in secs]
        best = max((x for x in rates if x is not None), default=None)
        ratio = None
        if c.limit is not None and limit_mb_s and best is not None:
            ratio = round(best / limit_mb_s, 4)
        noise = noises[0] if len(noises) == 1 else _noise_summary(noises)
        return {
            "kind": kind, "scenario": "limit" if c.is_limit and c.scenario == "store" else c.scenario,
            "store": store, "driver": driver, "op": c.op, "size": size, "concurrency": concurrency, "mode": mode,
            "repeat": repeat, "repeats": len(steps), "seconds": seconds, "bytes": c.nbytes,
            "mb_s": rate, "mb_s_min": min((x for x in rates if x is not None), default=None),
            "mb_s_median": rate, "mb_s_max": best, "ops_s": round(c.ops / seconds, 3) if seconds > 0 else 0.0,
            **latency_fields(lat), **mid.figures(),
            "limit": c.limit if c.limit is not None and limit_mb_s else None,
            "limit_mb_s": limit_mb_s if c.limit is not None else None,
            "ratio": ratio, "ratio_median": ratio_median if kind == "summary" else None,
            "noise": noise, "extra": dict(c.extra),
        }

    def _summary(self, c: Contender, store: str, driver: str, size: int, concurrency: int, mode: str,
                 runs: list[tuple[Step, dict[str, Any]]], lim: dict[str, Any] | None) -> dict[str, Any]:
        steps = [s for s, _ in runs]
        lim_best = lim["mb_s_max"] if lim else None
        ratio_median = None
        if lim and lim["mb_s_median"]:
            med = mb_s(c.nbytes, statistics.median(s.seconds for s in steps))
            ratio_median = round(med / lim["mb_s_median"], 4) if med else None
        rec = self._record("summary", c, store, driver, size, concurrency, mode, None, steps,
                           [n for _, n in runs], lim_best, ratio_median)
        rec["extra"]["peak_rss_mib_max"] = max((s.rss_peak_mib or 0) for s in steps)
        self.emit(rec)
        return rec


def _noise_summary(noises: list[dict[str, Any]]) -> dict[str, Any]:
    def vals(key: str) -> list[float]:
        return [n[key] for n in noises if isinstance(n.get(key), (int, float))]

    out: dict[str, Any] = {}
    for key in ("load1", "other_cores", "other_cores_during"):
        v = vals(key)
        if v:
            out[key] = round(max(v), 2)
    out["waited_s"] = round(sum(vals("waited_s")), 2)
    out["quiet"] = all(n.get("quiet") for n in noises)
    out["quiet_repeats"] = sum(bool(n.get("quiet")) for n in noises)
    return out


def _label(size: int) -> str:
    from .figures import size_label

    return size_label(size)


def env_record(settings: dict[str, Any], stores: dict[str, str]) -> dict[str, Any]:
    """The first JSONL line: what the figures were measured on."""
    import platform

    import imagestore

    mem = None
    try:
        with open("/proc/meminfo") as fh:
            mem = round(int(fh.readline().split()[1]) / (1 << 20), 1)
    except OSError:
        pass
    return {"kind": "env", "schema": schema.SCHEMA_VERSION, "imagestore": imagestore.__version__,
            "python": platform.python_version(), "platform": platform.platform(), "cpus": os.cpu_count(),
            "mem_gib": mem, "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "settings": settings, "stores": stores}
