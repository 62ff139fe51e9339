"""Turning timings into reported figures: summaries, ratios and pass/fail targets."""

from __future__ import annotations

import os
import re
import statistics
import time
from typing import Any

MB = 1_000_000  # throughput is reported in decimal MB/s, like dd and fio
MiB = 1 << 20
GiB = 1 << 30


def summarize(seconds: list[float], nbytes: int | None = None, cpu: list[float] | None = None) -> dict[str, Any]:
    """Best/median wall time of repeated runs, MB/s when the byte count is known, and the
    process CPU seconds (all threads), which other load on the machine barely disturbs."""
    best = min(seconds)
    median = statistics.median(seconds)
    out: dict[str, Any] = {"seconds": [round(s, 6) for s in seconds],
                           "best_s": round(best, 6), "median_s": round(median, 6)}
    if nbytes is not None:
        out["best_mb_s"] = round(nbytes / best / MB, 1)
        out["median_mb_s"] = round(nbytes / median / MB, 1)
    if cpu:
        out["cpu_s"] = [round(c, 4) for c in cpu]
        out["best_cpu_s"] = round(min(cpu), 4)
    return out


def ratio(a: float, b: float) -> float:
    """``a / b`` rounded for the report (inf when ``b`` is zero)."""
    return round(a / b, 4) if b else float("inf")


def target(ident: str, description: str, value: float, op: str, limit: float) -> dict[str, Any]:
    """One pass/fail check of the issue: ``value op limit`` (op is ``>=`` or ``<=``)."""
    met = value >= limit if op == ">=" else value <= limit
    return {"id": ident, "description": description, "value": round(value, 4), "op": op,
            "limit": limit, "met": bool(met)}


_UNITS = {"": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40}


def parse_size(text: str) -> int:
    """``64M``, ``2G``, ``1.5G``, ``4096``: binary units (K/M/G/T, optional ``iB``/``B``) to bytes."""
    m = re.fullmatch(r"\s*([0-9]*\.?[0-9]+)\s*([KMGT]?)(?:I?B)?\s*", text.upper())
    if not m:
        raise ValueError(f"not a size: {text!r} (use e.g. 64M, 1G, 2.5G or a byte count)")
    value = int(float(m.group(1)) * _UNITS[m.group(2)])
    if value <= 0:
        raise ValueError(f"a size must be positive: {text!r}")
    return value


def size_label(nbytes: int) -> str:
    """``64M``, ``1G``, ``1.5G``: the size as ``--size`` takes it."""
    for unit, factor in (("G", GiB), ("M", MiB), ("K", 1 << 10)):
        if nbytes >= factor:
            return f"{nbytes / factor:g}{unit}"
    return str(nbytes)


def gib_label(nbytes: int) -> str:
    """``1 GiB``, ``256 MiB``: the size as people write it."""
    if nbytes >= GiB and nbytes % GiB == 0:
        return f"{nbytes // GiB} GiB"
    if nbytes >= GiB:
        return f"{nbytes / GiB:g} GiB"
    return f"{nbytes / MiB:g} MiB"


class LoadMeter:
    """CPU used by everything but this process and its children while a scenario runs.

    The machine may be shared; this says how much the figures may be disturbed
    (kernel writeback done for us counts as "others" too).
    """

    def __init__(self) -> None:
        self._start = self._sample()

    @staticmethod
    def _sample() -> tuple[float, float, float]:
        tick = os.sysconf("SC_CLK_TCK")
        with open("/proc/stat") as fh:
            fields = [int(x) for x in fh.readline().split()[1:]]
        busy = (sum(fields[:8]) - fields[3] - fields[4]) / tick  # all but idle and iowait
        t = os.times()
        own = t.user + t.system + t.children_user + t.children_system
        return time.monotonic(), busy, own

    def read(self) -> dict[str, float]:
        """Average cores busy with other work, and the cores this run used, since creation."""
        try:
            t1, busy1, own1 = self._sample()
        except OSError:
            return {}
        t0, busy0, own0 = self._start
        wall = max(t1 - t0, 1e-9)
        return {"wall_s": round(wall, 1), "own_cores": round((own1 - own0) / wall, 2),
                "other_cores": round(max(0.0, (busy1 - busy0) - (own1 - own0)) / wall, 2)}
