"""PNG plots of a run (matplotlib, the ``bench`` extra): throughput vs size with limits, latency vs
concurrency, RSS vs size. Without matplotlib the report says so and draws nothing."""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path
from typing import Any

Rec = dict[str, Any]
MiB = 1 << 20
ADD_GET = ("add_known", "add_unknown", "get", "get_verified")


def draw(records: list[Rec], directory: Path) -> list[str]:
    """Write throughput.png, latency.png and rss.png into ``directory``; notes of what was written."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return ["matplotlib is not installed (pip install 'imagestore[bench]'): no plots"]
    directory.mkdir(parents=True, exist_ok=True)
    summ = [r for r in records if r.get("kind") == "summary"]
    notes = []
    for name, fn in (("throughput.png", _throughput), ("latency.png", _latency), ("rss.png", _rss)):
        fig = fn(plt, summ)
        if fig is None:
            notes.append(f"{name}: nothing to plot")
            continue
        path = directory / name
        fig.savefig(path, dpi=110)
        plt.close(fig)
        notes.append(f"wrote {path}")
    return notes


def _grid(plt: Any, n: int, w: float = 5.0, h: float = 3.6) -> tuple[Any, list[Any]]:
    cols = min(3, n)
    rows = (n + cols - 1) // cols
    fig, axes = plt.subplots(rows, cols, figsize=(w * cols, h * rows), squeeze=False)
    flat = [a for row in axes for a in row]
    for a in flat[n:]:
        a.axis("off")
    return fig, flat[:n]


def _size_ticks(ax: Any, sizes: list[int]) -> None:
    from ..figures import size_label

    ticks = sorted(set(sizes))
    ax.set_xticks([t / MiB for t in ticks], [size_label(t) for t in ticks])
    ax.xaxis.set_minor_locator(__import__("matplotlib").ticker.NullLocator())


def _throughput(plt: Any, summ: list[Rec]) -> Any:
    rs = [r for r in summ if r["scenario"] == "store" and r["op"] in ADD_GET and r["mb_s_max"]]
    stores = sorted({r["store"] for r in rs})
    if not stores:
        return None
    fig, axes = _grid(plt, len(stores))
    for ax, store in zip(axes, stores, strict=True):
        lines: dict[str, list[tuple[int, float]]] = defaultdict(list)
        limit_lines: dict[str, list[tuple[int, float]]] = defaultdict(list)
        for r in rs:
            if r["store"] == store:
                lines[r["op"]].append((r["size"], r["mb_s_max"]))
                if r["limit"] and r["limit_mb_s"]:
                    limit_lines[r["limit"]].append((r["size"], r["limit_mb_s"]))
        for op, pts in sorted(lines.items()):
            xs, ys = zip(*sorted(pts), strict=True)
            ax.plot([x / MiB for x in xs], ys, marker="o", label=op)
        for op, pts in sorted(limit_lines.items()):
            xs, ys = zip(*sorted(set(pts)), strict=True)
            ax.plot([x / MiB for x in xs], ys, linestyle="--", marker="x", label=f"limit: {op}")
        ax.set_xscale("log", base=2)
        ax.set_yscale("log")
        _size_ticks(ax, [r["size"] for r in rs if r["store"] == store])
        _label_axes(ax, store, "image size", "MB/s (best repeat, log)", 7)
    fig.suptitle("Throughput vs size, with the same-run limits (dashed)")
    fig.tight_layout()
    return fig


def _latency(plt: Any, summ: list[Rec]) -> Any:
    rs = [r for r in summ if r["scenario"] == "concurrency" and r["op"] in ("add_known", "get")]
    stores = sorted({r["store"] for r in rs})
    if not stores:
        return None
    fig, axes = _grid(plt, len(stores))
    for ax, store in zip(axes, stores, strict=True):
        for (op, mode), style in zip([(o, m) for o in ("add_known", "get") for m in ("threads", "processes")],
                                     ("-", ":", "-", ":"), strict=True):
            pts = sorted((r["concurrency"], r["latency_p50_s"], r["latency_p95_s"], r["latency_p99_s"])
                         for r in rs if r["store"] == store and r["op"] == op and r["mode"] == mode)
            if not pts:
                continue
            xs = [p[0] for p in pts]
            for i, q in ((1, "p50"), (3, "p99")):
                ax.plot(xs, [p[i] for p in pts], linestyle=style, marker="o", label=f"{op} {mode} {q}")
        ax.set_xscale("log", base=2)
        ax.set_yscale("log")
        levels = sorted({r["concurrency"] for r in rs if r["store"] == store})
        ax.set_xticks(levels, [str(n) for n in levels])
        ax.minorticks_off()
        _label_axes(ax, store, "concurrent clients", "seconds per operation", 6)
    fig.suptitle("Latency percentiles vs concurrency")
    fig.tight_layout()
    return fig


def _rss(plt: Any, summ: list[Rec]) -> Any:
    rs = [r for r in summ if r["scenario"] == "store" and r["op"] in ("add_known", "add_unknown", "get",
                                                                        "rss_add_unknown")
          and r["rss_growth_mib"] is not None]
    stores = sorted({r["store"] for r in rs})
    if not stores:
        return None
    fig, axes = _grid(plt, len(stores))
    for ax, store in zip(axes, stores, strict=True):
        for op in ("add_known", "add_unknown", "get", "rss_add_unknown"):
            pts = sorted((r["size"], r["rss_growth_mib"]) for r in rs if r["store"] == store and r["op"] == op)
            if pts:
                ax.plot([p[0] / MiB for p in pts], [p[1] for p in pts], marker="o", label=op)
        ax.axhline(256, color="red", linestyle="--", linewidth=0.8, label="256 MiB")
        ax.set_xscale("log", base=2)
        _size_ticks(ax, [r["size"] for r in rs if r["store"] == store])
        _label_axes(ax, store, "image size", "peak RSS growth (MiB)", 7)
    fig.suptitle("Peak RSS growth of one operation vs size")
    fig.tight_layout()
    return fig


def _label_axes(ax: Any, title: str, xlabel: str, ylabel: str, fontsize: int) -> None:
    """Title, axis labels, legend and grid of one store's panel (the same on every plot)."""
    ax.set_title(title)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.legend(fontsize=fontsize)
    ax.grid(alpha=0.3)
