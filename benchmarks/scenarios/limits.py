"""The machine-wide limits of the run: each checksum alone and all of them in parallel, per size.

They bound every add whatever the backend (an add hashes every byte), and
come first in the JSONL as ``scenario = "limit"``, ``store = "-"`` records.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from .. import limits
from ..runner import Contender, Fn, Run


def run_machine_limits(run: Run, sizes: Sequence[int], algorithms: Sequence[str]) -> None:
    """hash_ALGO for each algorithm and hash_parallel, interleaved, at every size."""
    pool = run.pool()

    def one(a: str, size: int) -> Callable[[int], tuple[Fn, Fn | None]]:
        return lambda r: ((lambda: limits.hash_one(a, pool, size, run.chunk)), None)

    def parallel(size: int) -> Callable[[int], tuple[Fn, Fn | None]]:
        return lambda r: ((lambda: limits.hash_parallel(algorithms, pool, size, run.chunk)), None)

    for size in sizes:
        c = [Contender(f"hash_{a}", one(a, size), size, is_limit=True, scenario="limit") for a in algorithms]
        c.append(Contender("hash_parallel", parallel(size), size, is_limit=True, scenario="limit"))
        run.compare("-", "-", size, c)
