"""The noise guard: before each timed step, record the machine's load and wait (bounded) for quiet.

The machine is shared (other engineers' Ceph, Swift and test runs on the same 2
cores): every step records the 1-minute load average and the cores busy with
work other than this process tree, before and during the step, and waits up
to ``wait_s`` (at most ``budget_s`` in the whole run) for that to fall below
``quiet_cores``. The figures go into each record's ``noise`` field; the
candidate and its limit are interleaved repeat by repeat so drift hits both.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from typing import Any

WINDOW_S = 0.25  # seconds sampled to decide whether the machine is quiet
QUIET_CORES = 0.25  # cores busy with other work below which the machine counts as quiet


def _cpu_sample() -> tuple[float, float, float]:
    """(monotonic time, busy CPU seconds of the whole machine, CPU seconds of this process tree)."""
    with open("/proc/stat") as fh:
        fields = [int(x) for x in fh.readline().split()[1:]]
    tick = os.sysconf("SC_CLK_TCK")
    busy = (sum(fields[:8]) - fields[3] - fields[4]) / tick  # all but idle and iowait
    t = os.times()
    return time.monotonic(), busy, t.user + t.system + t.children_user + t.children_system


def other_cores(a: tuple[float, float, float], b: tuple[float, float, float],
                own_extra: float = 0.0) -> float:
    """Cores busy with other work between two samples (own_extra: our backend processes' CPU)."""
    wall = max(b[0] - a[0], 1e-6)
    return max(0.0, (b[1] - a[1]) - (b[2] - a[2]) - own_extra) / wall


@dataclass
class NoiseGuard:
    """Waits for a quiet machine before each step and says how noisy the step was."""

    wait_s: float = 3.0
    budget_s: float = 120.0
    quiet_cores: float = QUIET_CORES
    waited_s: float = 0.0
    steps: int = 0
    quiet_steps: int = 0
    _before: dict[str, Any] = field(default_factory=dict)
    _start: tuple[float, float, float] | None = None

    def before(self) -> None:
        """Sync dirty pages, then sample and wait (within the bounds) for a quiet machine."""
        os.sync()
        self.steps += 1
        limit = max(0.0, min(self.wait_s, self.budget_s - self.waited_s))
        t0 = time.monotonic()
        quiet = False
        busy = 0.0
        while True:
            a = _cpu_sample()
            time.sleep(WINDOW_S if limit > 0 else 0.05)
            busy = other_cores(a, _cpu_sample())
            if busy < self.quiet_cores:
                quiet = True
                break
            if time.monotonic() - t0 >= limit:
                break
        waited = time.monotonic() - t0
        self.waited_s += waited
        self.quiet_steps += quiet
        self._before = {"load1": round(os.getloadavg()[0], 2), "other_cores": round(busy, 2),
                        "waited_s": round(waited, 2), "quiet": quiet}
        self._start = _cpu_sample()

    def after(self, backend_cpu_s: float = 0.0) -> dict[str, Any]:
        """The noise figures of the step that just ended (backend_cpu_s: our own services' CPU)."""
        during = None
        if self._start is not None:
            during = round(other_cores(self._start, _cpu_sample(), backend_cpu_s), 2)
        return {**self._before, "other_cores_during": during}

    def summary(self) -> dict[str, Any]:
        return {"steps": self.steps, "quiet_steps": self.quiet_steps, "waited_s": round(self.waited_s, 1)}
