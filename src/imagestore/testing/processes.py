"""Writers killed or raced on purpose: what the conformance suite and the crash tests share."""

from __future__ import annotations

import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from typing import TypeVar
from pathlib import Path

__all__ = ["kill_when_started", "race_adds"]

T = TypeVar("T")


def kill_when_started(code: str, marker: Path, *, timeout: float = 60.0, what: str = "writer") -> None:
    """Run ``python -c code`` and SIGKILL it as soon as it has written ``marker`` (mid-operation)."""
    proc = subprocess.Popen([sys.executable, "-c", code])
    try:
        deadline = time.monotonic() + timeout
        while not marker.exists():
            assert proc.poll() is None, f"the {what} died before it started"
            assert time.monotonic() < deadline, f"the {what} never started"
            time.sleep(0.05)
        proc.send_signal(signal.SIGKILL)
        proc.wait(30)
    finally:
        if proc.poll() is None:
            proc.kill()


def race_adds(add: Callable[[T], object], sources: Sequence[T], timeout: float = 120.0) -> list[object]:
    """``add(source)`` for every source at once, a thread each (any call: an add, a clone...);
    what each returned or raised."""
    results: list[object] = [None] * len(sources)

    def run(i: int) -> None:
        try:
            results[i] = add(sources[i])
        except BaseException as exc:  # noqa: BLE001 - the race's outcome, returned to the caller
            results[i] = exc

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(sources))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout)
    return results
