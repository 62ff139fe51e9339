"""The file store's figures: add vs an ideal loop, reads vs plain reads, O(1) cow clone, flat RSS.

Every ratio compares imagestore with a hand-written loop (``baselines``) timed in
the same run, interleaved run by run so that drift hits both sides alike.
"""

from __future__ import annotations

import functools
import os
import re
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

from imagestore.engine.hashing import INTEGRITY, strongest

from .. import baselines
from ..env import rss
from ..env.context import Context, run_parts, warm
from ..figures import gib_label, ratio, summarize, target
from ..stores import drain, file_store, remove_tree, timed

RSS_LIMIT = 1.10  # "does not grow": the big image's peak within 10 % of the small one's
RSS_REPEATS = 2  # the worst peak of a few runs: how many chunks are in flight at once varies
CLONE_RUNS = 5


def run(ctx: Context) -> dict[str, Any]:
    """All four figures; a part that fails is reported as an error without hiding the others."""
    return run_parts(ctx, "file", [("add", add_figure), ("read", read_figure), ("rss", rss_figure),
                                   ("clone", clone_figure)])


# ---------------------------------------------------------------- 1. add
def add_figure(ctx: Context, targets: list[dict[str, Any]]) -> dict[str, Any]:
    """``Store.add`` of a page-cache-warm file vs read + write + fsync + md5/sha512 threads."""
    src = ctx.source(ctx.size)
    root = ctx.scratch("file-add")
    try:
        store = file_store(root)
        algos = store.settings.checksums
        ideal_s: list[float] = []
        add_s: list[float] = []
        ideal_cpu: list[float] = []
        add_cpu: list[float] = []
        ctx.log(f"file/add: {ctx.runs} x ideal loop and Store.add of {gib_label(ctx.size)}")
        for i in range(ctx.runs):
            for which in (("ideal", "add") if i % 2 == 0 else ("add", "ideal")):
                if which == "ideal":
                    dst = root / f"ideal-{i}"
                    secs, cpu, ideal_sums = timed(ctx, baselines.ideal_add, src, dst, ctx.chunk_size, algos)
                    dst.unlink()
                    ideal_s.append(secs)
                    ideal_cpu.append(cpu)
                else:
                    secs, cpu, info = timed(ctx, store.add, f"add-{i}", src)
                    store.delete(info.location)
                    add_s.append(secs)
                    add_cpu.append(cpu)
        if info.checksums != ideal_sums:
            raise AssertionError(f"add and the ideal loop disagree: {info.checksums} vs {ideal_sums}")
        ideal = summarize(ideal_s, ctx.size, ideal_cpu)
        add = summarize(add_s, ctx.size, add_cpu)
        result = {
            "size_bytes": ctx.size, "chunk_size": ctx.chunk_size, "checksums": list(algos),
            "inspect": store.settings.inspect, "runs": ctx.runs,
            "ideal": ideal, "add": add,
            "ratio_best": ratio(add["best_mb_s"], ideal["best_mb_s"]),
            "ratio_median": ratio(add["median_mb_s"], ideal["median_mb_s"]),
            "ratio_cpu": ratio(ideal["best_cpu_s"], add["best_cpu_s"]),
        }
        targets.append(target("file.add_vs_ideal",
                              f"add of {gib_label(ctx.size)} vs ideal read+write+fsync+hash loop (best of {ctx.runs})",
                              result["ratio_best"], ">=", 0.85))
        return result
    finally:
        remove_tree(root)


# ---------------------------------------------------------------- 2. read
def read_figure(ctx: Context, targets: list[dict[str, Any]]) -> dict[str, Any]:
    """Reads of a cached image through the store vs plain buffered reads of the same file."""
    src = ctx.source(ctx.size)
    root = ctx.scratch("file-read")
    try:
        store = file_store(root)
        info = store.add("read", src)
        path = store.locate(info.location).path
        assert path is not None
        warm(path, ctx.chunk_size)
        algo = INTEGRITY if info.integrity else strongest(info.checksums)  # what verify=True checks
        chunk = ctx.chunk_size
        cases: dict[str, Callable[[], object]] = {
            "plain_read": lambda: baselines.plain_read(path, chunk),
            "open_stream": lambda: drain(store.open(info.location, verify=False)),
            "plain_read_hashed": lambda: baselines.plain_read_hashed(path, chunk, algo),
            "open_stream_verify": lambda: drain(store.open(info.location, verify=True)),
            "plain_read_all": lambda: len(baselines.plain_read_all(path)),
            "get_bytes": lambda: len(store.get(info.location, verify=False)),
        }
        times: dict[str, list[float]] = {k: [] for k in cases}
        cpus: dict[str, list[float]] = {k: [] for k in cases}
        ctx.log(f"file/read: {ctx.runs} x {len(cases)} reads of {gib_label(ctx.size)}")
        for i in range(ctx.runs):
            order = list(cases) if i % 2 == 0 else list(reversed(cases))
            for name in order:
                secs, cpu, _ = timed(ctx, cases[name])
                times[name].append(secs)
                cpus[name].append(cpu)
        store.delete(info.location)
        figs = {k: summarize(v, ctx.size, cpus[k]) for k, v in times.items()}
        result: dict[str, Any] = {
            "size_bytes": ctx.size, "chunk_size": chunk, "verify_algorithm": algo, "runs": ctx.runs, **figs,
            "ratio_stream": ratio(figs["open_stream"]["best_mb_s"], figs["plain_read"]["best_mb_s"]),
            "ratio_stream_verify": ratio(figs["open_stream_verify"]["best_mb_s"],
                                         figs["plain_read_hashed"]["best_mb_s"]),
            "ratio_get_bytes": ratio(figs["get_bytes"]["best_mb_s"], figs["plain_read_all"]["best_mb_s"]),
            "verify_cost": ratio(figs["open_stream_verify"]["best_mb_s"], figs["plain_read"]["best_mb_s"]),
        }
        targets.append(target("file.read_stream_vs_plain",
                              "Store.open(verify=False) streamed vs buffered read loop, cached",
                              result["ratio_stream"], ">=", 0.80))
        targets.append(target("file.get_bytes_vs_read_all",
                              "Store.get(verify=False) vs open(path).read(), cached",
                              result["ratio_get_bytes"], ">=", 0.80))
        targets.append(target("file.read_verify_vs_plain_hashed",
                              f"Store.open(verify=True) vs buffered read + {algo} thread (extra)",
                              result["ratio_stream_verify"], ">=", 0.80))
        return result
    finally:
        remove_tree(root)


# ---------------------------------------------------------------- 4. rss
def rss_figure(ctx: Context, targets: list[dict[str, Any]]) -> dict[str, Any]:
    """Peak RSS of add / streamed get / download_to for a small and a big image, each in a fresh child.

    Each size keeps the worst peak of its repeats: the bound is what matters, and
    how many chunks happen to be in flight at the peak varies from run to run.
    """
    root = ctx.scratch("file-rss")
    sizes = (ctx.size, ctx.big)
    result: dict[str, Any] = {"sizes_bytes": list(sizes), "limit_ratio": RSS_LIMIT}
    per_op: dict[str, dict[str, Any]] = {op: {} for op in rss.OPS}
    try:
        repeats = 1 if ctx.quick else RSS_REPEATS
        for size in sizes:
            label = gib_label(size)
            src = ctx.source(size)
            image = f"rss-{size}"
            out = root / f"download-{size}.bin"
            ctx.log(f"file/rss: {repeats} x add, get, download_to of {label} in fresh interpreters")
            samples: dict[str, list[dict[str, Any]]] = {op: [] for op in rss.OPS}
            for _ in range(repeats):
                samples["add"].append(rss.measure("add", root, image, str(src)))
                samples["get"].append(rss.measure("get", root, image))
                samples["download_to"].append(rss.measure("download_to", root, image, str(out)))
                out.unlink(missing_ok=True)
                file_store(root).delete(image)
            if size != ctx.size:
                ctx.drop_source(size)
            for op, runs in samples.items():
                worst = max(runs, key=lambda r: r["peak_mib"])
                per_op[op][label] = {**worst, "peaks_mib": [r["peak_mib"] for r in runs]}
        small, big = (gib_label(s) for s in sizes)
        for op, figs in per_op.items():
            figs["ratio"] = ratio(figs[big]["peak_mib"], figs[small]["peak_mib"])
            targets.append(target(f"file.rss_{op}", f"peak RSS of {op}: {big} / {small}",
                                  figs["ratio"], "<=", RSS_LIMIT))
        result.update(per_op)
        return result
    finally:
        remove_tree(root)


# ---------------------------------------------------------------- 3. clone
def clone_figure(ctx: Context, targets: list[dict[str, Any]]) -> dict[str, Any]:
    """``clone(mode="cow")`` of a small and a big image on XFS (reflink), plus a stream clone."""
    if ctx.xfs is None:
        return {"skipped": ctx.xfs_skip or "skipped: no XFS"}
    root = ctx.xfs / f"imagestore-bench-{os.getpid()}"
    try:
        store = file_store(root)
        images: dict[str, Any] = {}
        for label, size, salt in (("small", ctx.size, 0), ("big", ctx.clone, 1)):
            ctx.log(f"file/clone: adding the {gib_label(size)} image on {ctx.xfs}")
            secs, _, info = timed(None, store.add, f"clone-{label}", ctx.chunks(size, salt), size)
            images[label] = info
            images[f"{label}_add"] = summarize([secs], size)
        check = store.can_clone(images["small"].location, mode="cow")
        if not check.possible:
            return {"skipped": f"skipped: no cow clone on {ctx.xfs} ({check.reason})"}
        runs = max(ctx.runs, CLONE_RUNS)
        cow: dict[str, list[float]] = {"small": [], "big": []}
        ctx.log(f"file/clone: {runs} x cow clone of each, {ctx.runs} x stream clone of the small one")
        for i in range(runs):
            for label in (("small", "big") if i % 2 == 0 else ("big", "small")):
                secs, _, res = timed(None, functools.partial(
                    store.clone, images[label].location, name=f"cow-{label}-{i}", mode="cow"))
                assert res.mode == "cow", res
                store.delete(res.location)
                cow[label].append(secs)
        stream: list[float] = []
        for i in range(ctx.runs):
            secs, _, res = timed(None, functools.partial(
                store.clone, images["small"].location, name=f"stream-{i}", mode="stream"))
            store.delete(res.location)
            stream.append(secs)
        small, big = summarize(cow["small"], ctx.size), summarize(cow["big"], ctx.clone)
        result = {
            "filesystem": str(ctx.xfs), "runs": runs,
            "small_bytes": ctx.size, "big_bytes": ctx.clone,
            "small_extents": extents(root / "clone-small"), "big_extents": extents(root / "clone-big"),
            "add_small": images["small_add"], "add_big": images["big_add"],
            "cow_small": small, "cow_big": big,
            "ratio_median": ratio(big["median_s"], small["median_s"]),
            "ratio_best": ratio(big["best_s"], small["best_s"]),
            "stream_small": summarize(stream, ctx.size),
            "stream_over_cow_small": ratio(min(stream), small["best_s"]),
        }
        for label in ("small", "big"):
            store.delete(images[label].location)
        targets.append(target("file.cow_clone_o1",
                              f"cow clone time {gib_label(ctx.clone)} / {gib_label(ctx.size)} on XFS"
                              f" (median of {runs})",
                              result["ratio_median"], "<=", 2.0))
        return result
    finally:
        remove_tree(root)


def extents(path: Path) -> int | None:
    """The file's extent count from ``filefrag`` (None when unavailable): what FICLONE's cost follows."""
    if shutil.which("filefrag") is None:
        return None
    proc = subprocess.run(["filefrag", str(path)], capture_output=True, text=True, check=False)
    match = re.search(r"(\d+) extents? found", proc.stdout)
    return int(match.group(1)) if match else None
