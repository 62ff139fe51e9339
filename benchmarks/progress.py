"""A progress bar on a tty while the benchmark runs: rich or tqdm when installed, else a plain one.

The total is the planned number of timed steps; off a tty (CI, redirected
stderr) it prints one line per note instead, so logs stay readable.
"""

from __future__ import annotations

import sys
import time
from typing import Any, TextIO


class Progress:
    """``step(label)`` advances by one timed step; ``note(text)`` prints a line above the bar."""

    def __init__(self, total: int, stream: TextIO = sys.stderr, force_plain: bool = False) -> None:
        self.total = max(total, 1)
        self.done = 0
        self.stream = stream
        self.t0 = time.monotonic()
        self.kind = "lines"
        self._bar: Any = None
        tty = stream.isatty() and not force_plain
        if tty:
            try:
                from tqdm import tqdm

                self._bar = tqdm(total=self.total, file=stream, unit="step", dynamic_ncols=True)
                self.kind = "tqdm"
            except ImportError:
                try:
                    from rich.progress import Progress as RichProgress

                    self._bar = RichProgress(transient=False)
                    self._task = self._bar.add_task("bench", total=self.total)
                    self._bar.start()
                    self.kind = "rich"
                except ImportError:
                    self.kind = "plain"

    def step(self, label: str) -> None:
        self.done += 1
        if self.done > self.total:
            self.total = self.done
        if self.kind == "tqdm":
            self._bar.total = self.total
            self._bar.set_description_str(label[:50])
            self._bar.update(1)
        elif self.kind == "rich":
            self._bar.update(self._task, advance=1, total=self.total, description=label[:50])
        elif self.kind == "plain":
            width = 30
            filled = int(width * self.done / self.total)
            eta = (time.monotonic() - self.t0) / self.done * (self.total - self.done)
            self.stream.write(f"\r[{'#' * filled}{'.' * (width - filled)}] {self.done}/{self.total} "
                              f"eta {eta / 60:4.1f} min  {label[:50]:<50}")
            self.stream.flush()

    def note(self, text: str) -> None:
        line = f"[bench {time.strftime('%H:%M:%S')}] {text}"
        if self.kind == "tqdm":
            self._bar.write(line, file=self.stream)
        elif self.kind == "rich":
            self._bar.console.print(line, markup=False, highlight=False)
        elif self.kind == "plain":
            self.stream.write("\r\033[K" + line + "\n")
            self.stream.flush()
        else:
            print(line, file=self.stream, flush=True)

    def close(self) -> None:
        if self.kind == "tqdm":
            self._bar.close()
        elif self.kind == "rich":
            self._bar.stop()
        elif self.kind == "plain":
            self.stream.write("\n")
            self.stream.flush()
