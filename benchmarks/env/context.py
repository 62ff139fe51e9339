"""The run context shared by scenarios: sizes, work directory, XFS mount, source files."""

from __future__ import annotations

import os
import random
import sys
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..figures import LoadMeter, gib_label

POOL = 256 << 20  # random bytes generated once; bigger sources repeat them
QUIET_WINDOW = 0.2  # seconds sampled to decide the machine is idle
QUIET_CORES = 0.15  # other work below this many cores counts as idle


@dataclass
class Context:
    """What a scenario needs: sizes in bytes, where to write, and how to log.

    ``xfs`` is a mounted reflink filesystem or None, in which case
    ``xfs_skip`` says why (the cow figure is then reported as skipped).
    """

    workdir: Path
    size: int
    big: int
    clone: int
    chunk_size: int
    runs: int
    quick: bool = False
    xfs: Path | None = None
    xfs_skip: str | None = None
    verbose: bool = True
    quiet_wait: float = 0.0
    quiet_budget: float = 0.0
    quiet_stats: dict[str, float] = field(default_factory=lambda: {"runs": 0, "quiet": 0, "waited_s": 0.0})
    _sources: dict[int, Path] = field(default_factory=dict)
    _pool: bytes | None = None

    def log(self, message: str) -> None:
        """A progress line on stderr (stdout is reserved for the JSON report)."""
        if self.verbose:
            print(f"[bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)

    def scratch(self, name: str) -> Path:
        """A fresh directory under the work directory."""
        path = self.workdir / name
        path.mkdir(parents=True, exist_ok=False)
        return path

    # ------------------------------------------------------------ data
    def pool(self) -> bytes:
        """Random bytes reused by every source (generating them costs ~4 s per GiB)."""
        if self._pool is None:
            rng = random.Random(20240611)
            want = min(POOL, max(self.big, self.size, self.clone))
            step = 64 << 20  # randbytes counts bits in a C int
            self._pool = b"".join(rng.randbytes(min(step, want - i)) for i in range(0, want, step))
        return self._pool

    def chunks(self, size: int, salt: int = 0) -> Iterator[bytes]:
        """``size`` bytes of random data in chunk-sized pieces, without a file."""
        pool = self.pool()
        step = self.chunk_size
        done = 0
        offset = (salt * 4099 * 4096) % len(pool)
        while done < size:
            n = min(step, size - done, len(pool) - offset)
            yield pool[offset:offset + n]
            done += n
            offset = (offset + n) % len(pool)

    def source(self, size: int) -> Path:
        """A random-data file of ``size`` bytes in the work directory, made once, page-cache warm."""
        path = self._sources.get(size)
        if path is None:
            path = self.workdir / f"source-{size}.bin"
            self.log(f"writing {gib_label(size)} of random data to {path}")
            with open(path, "wb", buffering=0) as fh:
                for piece in self.chunks(size):
                    view = memoryview(piece)
                    while view:
                        view = view[fh.write(view):]
                os.fsync(fh.fileno())
            self._sources[size] = path
        warm(path, self.chunk_size)
        return path

    def drop_source(self, size: int) -> None:
        """Delete a source file that no other figure needs (disk is finite)."""
        path = self._sources.pop(size, None)
        if path is not None:
            path.unlink(missing_ok=True)


def warm(path: Path | str, chunk_size: int) -> None:
    """Read the file once so that the measured reads come from the page cache."""
    with open(path, "rb", buffering=0) as fh:
        buf = bytearray(chunk_size)
        while fh.readinto(buf):
            pass


def settle(ctx: Context | None = None) -> None:
    """Before a timed run: flush dirty pages (one run's writeback must not bill the next), then
    wait a little for the machine to be idle, within the context's wait budget."""
    os.sync()
    if ctx is None or ctx.quiet_wait <= 0:
        return
    stats = ctx.quiet_stats
    stats["runs"] += 1
    limit = min(ctx.quiet_wait, ctx.quiet_budget - stats["waited_s"])
    start = time.monotonic()
    quiet = False
    while True:
        meter = LoadMeter()
        time.sleep(QUIET_WINDOW)
        if meter.read().get("other_cores", 1.0) < QUIET_CORES:
            quiet = True
            break
        if time.monotonic() - start >= limit:
            break
    stats["quiet"] += quiet
    stats["waited_s"] = round(stats["waited_s"] + time.monotonic() - start, 1)


Part = Callable[[Context, list[dict[str, Any]]], dict[str, Any]]


def run_parts(ctx: Context, scenario: str, parts: Iterable[tuple[str, Part]]) -> dict[str, Any]:
    """Each ``(name, part)`` of a legacy scenario; a failing part is an error entry, the others still run."""
    out: dict[str, Any] = {}
    targets: list[dict[str, Any]] = []
    for name, part in parts:
        try:
            out[name] = part(ctx, targets)
        except Exception as exc:  # reported; the other parts still run
            ctx.log(f"{scenario}/{name} failed: {exc!r}")
            out[name] = {"error": f"{type(exc).__name__}: {exc}"}
    out["targets"] = targets
    return out
