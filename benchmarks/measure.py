"""Measuring one timed step: wall time, CPU of this process and of the backend's processes, peak RSS.

Peak RSS is per step: writing ``5`` to ``/proc/self/clear_refs`` resets the
kernel's high-water mark (VmHWM) to the current RSS before the step, so
VmHWM afterwards is the step's own peak, in the same process.
"""

from __future__ import annotations

import os
import resource
import statistics
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

MB = 1_000_000
MiB = 1 << 20
_TICK = os.sysconf("SC_CLK_TCK")


def proc_cpu(pid: int) -> tuple[float, float]:
    """(user, system) CPU seconds a process has used so far, from /proc; (0, 0) when it is gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return int(fields[11]) / _TICK, int(fields[12]) / _TICK
    except (OSError, IndexError, ValueError):
        return 0.0, 0.0


def _status_kib(name: str, pid: str = "self") -> int | None:
    try:
        with open(f"/proc/{pid}/status") as fh:
            for line in fh:
                if line.startswith(name + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return None


def reset_peak_rss() -> bool:
    """Reset this process's VmHWM to its current RSS; False where the kernel does not allow it."""
    try:
        with open("/proc/self/clear_refs", "w") as fh:
            fh.write("5")
        return True
    except OSError:
        return False


def rss_mib() -> float | None:
    """Current resident MiB of this process."""
    kib = _status_kib("VmRSS")
    return None if kib is None else kib / 1024


def peak_rss_mib() -> float | None:
    """Peak resident MiB of this process since the last reset."""
    kib = _status_kib("VmHWM")
    return None if kib is None else kib / 1024


def _usage() -> tuple[float, float]:
    me, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return me.ru_utime + kids.ru_utime, me.ru_stime + kids.ru_stime


@dataclass
class Step:
    """What one timed step cost: filled in by :class:`Meter`."""

    seconds: float = 0.0
    cpu_user_s: float = 0.0
    cpu_sys_s: float = 0.0
    backend_cpu_user_s: float | None = None
    backend_cpu_sys_s: float | None = None
    rss_base_mib: float | None = None
    rss_peak_mib: float | None = None
    latencies: list[float] = field(default_factory=list)
    result: Any = None

    def figures(self) -> dict[str, Any]:
        """The step's fields of a JSONL record."""
        growth = (None if self.rss_peak_mib is None or self.rss_base_mib is None
                  else round(self.rss_peak_mib - self.rss_base_mib, 1))
        return {"cpu_user_s": round(self.cpu_user_s, 3), "cpu_sys_s": round(self.cpu_sys_s, 3),
                "backend_cpu_user_s": _r(self.backend_cpu_user_s), "backend_cpu_sys_s": _r(self.backend_cpu_sys_s),
                "rss_base_mib": _r(self.rss_base_mib, 1), "rss_peak_mib": _r(self.rss_peak_mib, 1),
                "rss_growth_mib": growth}


@dataclass
class Reported:
    """What client processes measured of themselves (process mode); it replaces the parent's view of the step.

    The parent only waits while the clients work, so its CPU and RSS say nothing of them: the
    clients' own CPU seconds over their operations, and the RSS of the client with the largest
    peak (VmHWM reset when the clock starts), are the step's."""

    latencies: list[float]
    cpu_user_s: float
    cpu_sys_s: float
    rss_base_mib: float | None
    rss_peak_mib: float | None

    def apply(self, step: Step) -> None:
        """Put the clients' figures into ``step`` (CPU adds to the parent's, RSS replaces it)."""
        step.latencies = [float(x) for x in self.latencies]
        step.cpu_user_s += self.cpu_user_s
        step.cpu_sys_s += self.cpu_sys_s
        step.rss_base_mib, step.rss_peak_mib = self.rss_base_mib, self.rss_peak_mib


def _r(v: float | None, nd: int = 3) -> float | None:
    return None if v is None else round(v, nd)


def measure(fn: Callable[[], Any], backend_pids: Callable[[], Iterable[int]] | None = None) -> Step:
    """Run ``fn()`` once and return its :class:`Step` (the result in ``step.result``)."""
    pids = list(backend_pids()) if backend_pids else []
    step = Step()
    reset_peak_rss()
    step.rss_base_mib = rss_mib()
    b0 = [proc_cpu(p) for p in pids]
    u0, s0 = _usage()
    t0 = time.perf_counter()
    step.result = fn()
    step.seconds = time.perf_counter() - t0
    u1, s1 = _usage()
    step.cpu_user_s, step.cpu_sys_s = u1 - u0, s1 - s0
    if pids:
        b1 = [proc_cpu(p) for p in pids]
        step.backend_cpu_user_s = sum(b[0] - a[0] for a, b in zip(b0, b1, strict=True))
        step.backend_cpu_sys_s = sum(b[1] - a[1] for a, b in zip(b0, b1, strict=True))
    step.rss_peak_mib = peak_rss_mib()
    return step


def percentile(values: Sequence[float], q: float) -> float | None:
    """The q-th percentile (0..100) by linear interpolation; None for no values."""
    if not values:
        return None
    xs = sorted(values)
    if len(xs) == 1:
        return xs[0]
    k = (len(xs) - 1) * q / 100
    lo = int(k)
    hi = min(lo + 1, len(xs) - 1)
    return xs[lo] + (xs[hi] - xs[lo]) * (k - lo)


def latency_fields(latencies: Sequence[float]) -> dict[str, Any]:
    """p50/p95/p99 seconds of the operations and how many there were."""
    return {"latency_p50_s": _r(percentile(latencies, 50), 6), "latency_p95_s": _r(percentile(latencies, 95), 6),
            "latency_p99_s": _r(percentile(latencies, 99), 6), "latency_n": len(latencies)}


def mb_s(nbytes: int, seconds: float) -> float | None:
    """Decimal MB/s (10^6 bytes/s), None when nothing moved."""
    return round(nbytes / seconds / MB, 2) if nbytes and seconds > 0 else None


def median(values: Sequence[float]) -> float:
    return float(statistics.median(values))
