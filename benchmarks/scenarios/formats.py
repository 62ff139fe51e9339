"""What format inspection costs: ``add`` with ``inspect`` on vs off, for raw and qcow2 sources.

The issue's figure: inspection adds at most 5 % to add time. The two stores are
timed alternately on the same source in the same run. A qcow2 image (made with
``qemu-img`` when it is installed) exercises the parsers' metadata requests,
which a raw image never triggers.
"""

from __future__ import annotations

import importlib
import shutil
import subprocess
import time
from pathlib import Path
from typing import Any

import imagestore

from ..env.context import Context, warm
from ..figures import MB, gib_label, ratio, summarize, target
from ..stores import file_store, remove_tree, timed

OVERHEAD_LIMIT = 0.05


def inspector_name() -> str:
    """Which inspector ran: the real package, or the no-op stub used before it existed."""
    module = importlib.import_module("imagestore.formats")
    return "imagestore.formats" if getattr(module, "__file__", None) else "stub (no imagestore.formats package)"


def run(ctx: Context) -> dict[str, Any]:
    """Inspection overhead for every source format available here."""
    out: dict[str, Any] = {"inspector": inspector_name()}
    targets: list[dict[str, Any]] = []
    raw = ctx.source(ctx.size)
    sources: dict[str, Path | str] = {"raw": raw}
    qcow2 = ctx.workdir / "source.qcow2"
    if shutil.which("qemu-img"):
        ctx.log(f"formats: converting the {gib_label(ctx.size)} source to qcow2")
        subprocess.run(["qemu-img", "convert", "-f", "raw", "-O", "qcow2", str(raw), str(qcow2)],
                       check=True, capture_output=True)
        sources["qcow2"] = qcow2
    else:
        sources["qcow2"] = "skipped: qemu-img is not installed"
    try:
        for fmt, src in sources.items():
            if isinstance(src, str):
                out[fmt] = {"skipped": src}
                continue
            try:
                out[fmt] = overhead(ctx, fmt, src)
            except Exception as exc:  # reported; the other format still runs
                ctx.log(f"formats/{fmt} failed: {exc!r}")
                out[fmt] = {"error": f"{type(exc).__name__}: {exc}"}
                continue
            targets.append(target(f"formats.inspect_overhead_{fmt}",
                                  f"add time with inspection / without - 1, {fmt} of {gib_label(ctx.size)} data"
                                  f" (best of {ctx.runs})",
                                  out[fmt]["overhead_best"], "<=", OVERHEAD_LIMIT))
    finally:
        qcow2.unlink(missing_ok=True)
    out["targets"] = targets
    return out


def overhead(ctx: Context, fmt: str, src: Path) -> dict[str, Any]:
    """Alternate ``add`` into an inspecting and a non-inspecting store; also time ``inspect()`` alone."""
    size = src.stat().st_size
    warm(src, ctx.chunk_size)
    root = ctx.scratch(f"formats-{fmt}")
    try:
        stores = {"on": file_store(root / "on"), "off": file_store(root / "off", inspect=False)}
        times: dict[str, list[float]] = {"on": [], "off": []}
        cpus: dict[str, list[float]] = {"on": [], "off": []}
        detected = None
        ctx.log(f"formats/{fmt}: {ctx.runs} x add with inspection on and off")
        for i in range(ctx.runs):
            for mode in (("on", "off") if i % 2 == 0 else ("off", "on")):
                store = stores[mode]
                secs, cpu, info = timed(ctx, store.add, f"{fmt}-{i}", src)
                store.delete(info.location)
                times[mode].append(secs)
                cpus[mode].append(cpu)
                if mode == "on":
                    detected = info.format
        on, off = summarize(times["on"], size, cpus["on"]), summarize(times["off"], size, cpus["off"])
        start = time.perf_counter()
        verdict = imagestore.inspect(str(src))
        alone = time.perf_counter() - start
        feed = feed_seconds(src, ctx.chunk_size)
        return {
            "size_bytes": size, "runs": ctx.runs, "detected_format": detected,
            "add_inspect_on": on, "add_inspect_off": off,
            "inspect_off_over_on_time": ratio(off["best_s"], on["best_s"]),
            "overhead_best": round(on["best_s"] / off["best_s"] - 1, 4),
            "overhead_median": round(on["median_s"] / off["median_s"] - 1, 4),
            "overhead_cpu": round(on["best_cpu_s"] / off["best_cpu_s"] - 1, 4),
            "inspect_alone": {"seconds": round(alone, 4), "mb_s": round(size / alone / MB, 1),
                              "format": verdict.format, "safe": verdict.safe},
            "inspector_feed_s": round(feed, 5),
            "inspector_share_of_add": ratio(feed, off["best_s"]),
        }
    finally:
        remove_tree(root)


def feed_seconds(src: Path, chunk_size: int) -> float:
    """Seconds spent inside the stream inspector alone (reads not counted): inspection's own cost,
    free of the I/O noise that blurs the on/off difference of two whole adds."""
    from imagestore.formats import StreamInspector

    inspector = StreamInspector()
    buf = bytearray(chunk_size)
    view = memoryview(buf)
    spent = 0.0
    with open(src, "rb", buffering=0) as fh:
        while n := fh.readinto(buf):
            start = time.perf_counter()
            inspector.feed(view[:n])
            spent += time.perf_counter() - start
    start = time.perf_counter()
    inspector.finish()
    return spent + time.perf_counter() - start
