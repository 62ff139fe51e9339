"""The compute-node cache's figures: a hit costs the same whatever the image size, a miss costs at
most 1.1x a plain verified ``download_to``, and a mostly-zero raw image is written sparsely.

Public API only. Runs inside ``imagestore bench --scenario cache`` (``run(ctx)``) or alone:
``python -m imagestore_bench.scenarios.cache --size-gib 1 --sparse-gib 8``.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import imagestore

from ..env.context import Context, run_parts
from ..figures import gib_label, ratio, target
from ..stores import file_store, remove_tree, timed

SPARSE_DATA = 0.01  # share of the sparse image that is data
HIT_RUNS = 200


def run(ctx: Context, parts: list[str] | None = None) -> dict[str, Any]:
    """The three figures; a part that fails is reported without hiding the others."""
    return run_parts(ctx, "cache", [(name, part) for name, part in (("miss", miss_figure), ("sparse", sparse_figure))
                                    if not parts or name in parts])


def _hit_seconds(cache: imagestore.ImageCache, ref: str, expected: dict[str, str]) -> float:
    """Median seconds of a cache hit (the image is cached already)."""
    times = []
    for _ in range(HIT_RUNS):
        start = time.perf_counter()
        cache.fetch(ref, expected)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def miss_figure(ctx: Context, targets: list[dict[str, Any]]) -> dict[str, Any]:
    """A cache miss (download path: verified, inspected, sparse, fsynced, published) against
    ``Store.download_to`` of the same image, interleaved, best of ``ctx.runs``."""
    src = ctx.source(ctx.size)
    root = ctx.scratch("cache-miss")
    try:
        store = file_store(root / "images")
        info = store.add("img", src)
        expected = {"sha512": info.checksums["sha512"]}
        miss_s: list[float] = []
        plain_s: list[float] = []
        ctx.log(f"cache/miss: {ctx.runs} x ImageCache.fetch (miss) and Store.download_to of {gib_label(ctx.size)}")
        for i in range(ctx.runs):
            for which in (("miss", "plain") if i % 2 == 0 else ("plain", "miss")):
                if which == "miss":
                    cache = imagestore.ImageCache(root / f"cache-{i}", store=store, link="never")
                    secs, _, path = timed(ctx, cache.fetch, "img", expected)
                    miss_s.append(secs)
                    if i == 0:
                        hit = _hit_seconds(cache, "img", expected)
                    remove_tree(root / f"cache-{i}")
                else:
                    out = root / f"plain-{i}.img"
                    secs, _, _ = timed(ctx, store.download_to, "img", out)
                    plain_s.append(secs)
                    out.unlink()
        result = {
            "size_bytes": ctx.size, "runs": ctx.runs,
            "miss_best_s": round(min(miss_s), 3), "download_to_best_s": round(min(plain_s), 3),
            "miss_median_s": round(statistics.median(miss_s), 3),
            "download_to_median_s": round(statistics.median(plain_s), 3),
            "ratio_best": ratio(min(miss_s), min(plain_s)),
            "hit_median_us": round(hit * 1e6, 1),
        }
        targets.append(target("cache.miss_vs_download_to",
                              f"cache miss vs verified download_to, {gib_label(ctx.size)} (best of {ctx.runs})",
                              result["ratio_best"], "<=", 1.1))
        return result
    finally:
        remove_tree(root)


def _mostly_zero(size: int, chunk: int, share: float) -> Iterator[bytes]:
    """``size`` bytes, zero except evenly spread data chunks making up ``share`` of them."""
    zero = bytes(chunk)
    every = max(1, round(1 / share))
    data = os.urandom(chunk)
    done = index = 0
    while done < size:
        n = min(chunk, size - done)
        yield (data if index % every == 0 else zero)[:n]
        done += n
        index += 1


def sparse_figure(ctx: Context, targets: list[dict[str, Any]]) -> dict[str, Any]:
    """A mostly-zero raw image of ``ctx.clone`` bytes: bytes the cache entry occupies, and hit time."""
    size = ctx.clone
    root = ctx.scratch("cache-sparse")
    try:
        store = file_store(root / "images")
        ctx.log(f"cache/sparse: adding a {gib_label(size)} raw image, {SPARSE_DATA:.0%} data")
        info = store.add("sparse", _mostly_zero(size, ctx.chunk_size, SPARSE_DATA), size)
        cache = imagestore.ImageCache(root / "cache", store=store, link="never")
        expected = {"sha512": info.checksums["sha512"]}
        secs, _, path = timed(ctx, cache.fetch, "sparse", expected)
        st = os.stat(path)
        written = st.st_blocks * 512
        hit = _hit_seconds(cache, "sparse", expected)
        result = {"size_bytes": size, "data_share": SPARSE_DATA, "fetch_s": round(secs, 3),
                  "allocated_bytes": written, "allocated_share": round(written / size, 4),
                  "hit_median_us": round(hit * 1e6, 1)}
        targets.append(target("cache.sparse_written",
                              f"bytes written by a fetch of a {gib_label(size)} raw image, {SPARSE_DATA:.0%} data",
                              result["allocated_share"], "<=", 0.10))
        return result
    finally:
        remove_tree(root)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--size-gib", type=float, default=1.0)
    p.add_argument("--sparse-gib", type=float, default=8.0)
    p.add_argument("--runs", type=int, default=3)
    p.add_argument("--workdir", type=Path, default=None)
    p.add_argument("--idle-wait", type=float, default=3.0, help="seconds to wait for an idle machine per run")
    p.add_argument("--part", action="append", choices=["miss", "sparse"], help="only these figures")
    args = p.parse_args(argv)
    work = Path(tempfile.mkdtemp(prefix="isbench-cache-", dir=args.workdir or "/var/tmp"))
    try:
        ctx = Context(workdir=work, size=int(args.size_gib * (1 << 30)), big=int(args.size_gib * (1 << 30)),
                      clone=int(args.sparse_gib * (1 << 30)), chunk_size=4 << 20, runs=args.runs,
                      quiet_wait=args.idle_wait, quiet_budget=40 * args.idle_wait)
        result = run(ctx, parts=args.part)
        result["hit_o1"] = {"hit_us_small": result.get("miss", {}).get("hit_median_us"),
                            "hit_us_big": result.get("sparse", {}).get("hit_median_us")}
        print(json.dumps(result, indent=2))
    finally:
        remove_tree(work)
    return 0


if __name__ == "__main__":
    sys.exit(main())
