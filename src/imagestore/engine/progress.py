"""Progress reporting for long operations: a callback ``(done_bytes, total_or_None)``."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from typing import TextIO

__all__ = ["Progress", "ProgressBar", "Throttled"]

Progress = Callable[[int, "int | None"], None]
"""Called with the bytes done so far and the total when known."""


class Throttled:
    """Wraps a callback so it fires at most every ``interval`` seconds, plus once at the end."""

    def __init__(self, callback: Progress | None, total: int | None, interval: float = 0.1) -> None:
        self.callback = callback
        self.total = total
        self.interval = interval
        self.done = 0
        self._last = 0.0

    def advance(self, n: int) -> None:
        """Count ``n`` more bytes and report if enough time went by."""
        self.done += n
        if self.callback is None:
            return
        now = time.monotonic()
        if now - self._last >= self.interval:
            self._last = now
            self.callback(self.done, self.total)

    def finish(self) -> None:
        """Report the final count."""
        if self.callback is not None:
            self.callback(self.done, self.total)


class ProgressBar:
    """A one-line terminal progress bar for the CLI (writes to stderr)."""

    def __init__(self, label: str, stream: TextIO = sys.stderr) -> None:
        self.label = label
        self.stream = stream
        self.start = time.monotonic()

    def __call__(self, done: int, total: int | None) -> None:
        elapsed = max(time.monotonic() - self.start, 1e-6)
        rate = done / elapsed / 1e6
        if total:
            pct = min(100.0, 100.0 * done / total)
            filled = int(pct // 4)
            bar = "#" * filled + "-" * (25 - filled)
            text = f"\r{self.label} [{bar}] {pct:5.1f}% {done / 1e6:,.0f}/{total / 1e6:,.0f} MB {rate:,.0f} MB/s"
        else:
            text = f"\r{self.label} {done / 1e6:,.0f} MB {rate:,.0f} MB/s"
        self.stream.write(text)
        self.stream.flush()

    def close(self) -> None:
        """End the line."""
        self.stream.write("\n")
        self.stream.flush()
