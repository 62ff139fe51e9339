"""The JSON report as a Markdown table (for the README) and a plain table (for stderr).

``python -m imagestore_bench.report results.json [--png plot.png]``; the plot
needs matplotlib and is skipped with a note when it is not importable.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

Row = list[str]


def _mbs(fig: dict[str, Any] | None) -> str:
    return f"{fig['best_mb_s']:,.0f}" if fig and "best_mb_s" in fig else "-"


def _size(nbytes: int) -> str:
    gib = nbytes / (1 << 30)
    return f"{gib:.3g} GiB" if gib >= 1 else f"{nbytes / (1 << 20):.3g} MiB"


def _value(t: dict[str, Any]) -> str:
    v = t["value"]
    return f"{v:.1%}" if "overhead" in t["id"] else f"{v:.2f}"


def _limit(t: dict[str, Any]) -> str:
    lim = t["limit"]
    return f"{t['op']} {lim:.0%}" if "overhead" in t["id"] else f"{t['op']} {lim:g}"


def target_rows(report: dict[str, Any]) -> Iterator[Row]:
    """One row per pass/fail check: figure, measured, target, met."""
    for t in report.get("targets", []):
        yield [t["description"], _value(t), _limit(t), "yes" if t["met"] else "**no**"]


def throughput_rows(report: dict[str, Any]) -> Iterator[Row]:
    """imagestore vs its same-run limit, in MB/s (best of the runs)."""
    sc = report.get("scenarios", {})
    add = sc.get("file", {}).get("add", {})
    if "add" in add:
        yield [f"add {_size(add['size_bytes'])}", _mbs(add["add"]),
               "read + write + fsync + md5/sha512 threads", _mbs(add["ideal"]), f"{add['ratio_best']:.2f}"]
    rd = sc.get("file", {}).get("read", {})
    if "plain_read" in rd:
        n = _size(rd["size_bytes"])
        yield [f"open(verify=False) {n}, cached", _mbs(rd["open_stream"]), "buffered read loop",
               _mbs(rd["plain_read"]), f"{rd['ratio_stream']:.2f}"]
        yield [f"get(verify=False) {n}, cached", _mbs(rd["get_bytes"]), "open(path).read()",
               _mbs(rd["plain_read_all"]), f"{rd['ratio_get_bytes']:.2f}"]
        yield [f"open(verify=True) {n}, cached", _mbs(rd["open_stream_verify"]),
               f"buffered read + {rd['verify_algorithm']} thread", _mbs(rd["plain_read_hashed"]),
               f"{rd['ratio_stream_verify']:.2f}"]
    fm = sc.get("formats", {})
    for fmt in ("raw", "qcow2"):
        f = fm.get(fmt, {})
        if "add_inspect_on" in f:
            share = f.get("inspector_share_of_add")
            note = f" (inspector alone: {share:.2%} of add)" if share is not None else ""
            yield [f"add {fmt} ({_size(f['size_bytes'])}), inspect on", _mbs(f["add_inspect_on"]),
                   f"same add, inspect off{note}", _mbs(f["add_inspect_off"]),
                   f"{f['add_inspect_off']['best_s'] / f['add_inspect_on']['best_s']:.2f}"]


def clone_rows(report: dict[str, Any]) -> Iterator[Row]:
    """cow clone seconds for the small and big image, and the stream clone for contrast."""
    c = report.get("scenarios", {}).get("file", {}).get("clone", {})
    if "cow_small" not in c:
        return
    yield [f"cow clone {_size(c['small_bytes'])}", f"{c['cow_small']['median_s'] * 1e3:.1f} ms",
           str(c.get("small_extents", "-"))]
    yield [f"cow clone {_size(c['big_bytes'])}", f"{c['cow_big']['median_s'] * 1e3:.1f} ms",
           str(c.get("big_extents", "-"))]
    yield [f"stream clone {_size(c['small_bytes'])}", f"{c['stream_small']['median_s']:.2f} s", "-"]


def rss_rows(report: dict[str, Any]) -> Iterator[Row]:
    """Peak RSS (MiB) per operation for the small and the big image."""
    r = report.get("scenarios", {}).get("file", {}).get("rss", {})
    if "sizes_bytes" not in r or "add" not in r:
        return
    small, big = (_size(s) for s in r["sizes_bytes"])
    for op in ("add", "get", "download_to"):
        figs = r.get(op, {})
        if small in figs and big in figs:
            yield [op, f"{figs[small]['peak_mib']:.1f}", f"{figs[big]['peak_mib']:.1f}",
                   f"{figs[small]['baseline_mib']:.1f}", f"{figs['ratio']:.2f}"]


def rbd_rows(report: dict[str, Any]) -> Iterator[Row]:
    """Per image size: cow clone, stream copy, and adds against ``rbd import`` (MiB/s)."""
    for label, row in report.get("scenarios", {}).get("rbd", {}).get("sizes", {}).items():
        facade = row.get("add_facade", {})
        yield [label, f"{row['clone']['seconds']:.3f} s", f"{row['stream_copy']['seconds']:.2f} s",
               f"{row['rbd_import']['MiB_per_s']:,.0f}", f"{row['add_driver']['MiB_per_s']:,.0f}",
               f"{facade.get('MiB_per_s', 0):,.0f}", f"{row.get('facade_vs_import', 0):.2f}",
               f"{facade.get('client_cpu_s', 0):.1f} / {facade.get('osd_cpu_s', 0):.1f}"]


def skipped(report: dict[str, Any]) -> Iterator[str]:
    """``scenario/part: reason`` for everything skipped or failed."""
    for name, res in report.get("scenarios", {}).items():
        for part, val in [("", res), *((k, v) for k, v in res.items() if isinstance(v, dict))]:
            for key in ("skipped", "error"):
                if key in val:
                    yield f"{name}{'/' + part if part else ''}: {val[key]}"


def _md(header: Row, rows: list[Row]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(lines)


def _plain(header: Row, rows: list[Row]) -> str:
    widths = [max(len(str(c)) for c in col) for col in zip(header, *rows, strict=True)]
    fmt = "  ".join(f"{{:<{w}}}" for w in widths)
    return "\n".join(fmt.format(*r).rstrip() for r in [header, *rows])


TABLES = (
    ("Targets", ["Figure", "Measured", "Target", "Met"], target_rows),
    ("Throughput (MB/s, best of runs, same-run limits)",
     ["Operation", "imagestore", "Limit", "Limit MB/s", "Ratio"], throughput_rows),
    ("Clone on XFS (median)", ["Operation", "Time", "Extents"], clone_rows),
    ("Peak RSS (MiB, fresh interpreter)", ["Operation", "Small", "Big", "Baseline", "Big / small"], rss_rows),
    ("Ceph RBD (memstore OSD on the same 2 cores)",
     ["Image", "cow clone", "stream copy", "rbd import MiB/s", "driver write MiB/s", "Store.add MiB/s",
      "add / import", "add CPU s: client / OSD"], rbd_rows),
)


def markdown(report: dict[str, Any]) -> str:
    """The report as Markdown: environment line, then one table per kind of figure."""
    env = report.get("environment", {})
    s = report.get("settings", {})
    parts = [f"imagestore {env.get('imagestore')} on Python {env.get('python')}, {env.get('cpus')} CPUs, "
             f"{env.get('mem_gib')} GiB RAM, workdir on {env.get('workdir_fs')}; "
             f"sizes {_size(s.get('size_bytes', 0))} / {_size(s.get('big_bytes', 0))} (RSS) / "
             f"{_size(s.get('clone_bytes', 0))} (clone), {s.get('runs')} runs."]
    for title, header, rows in TABLES:
        body = list(rows(report))
        if body:
            parts.append(f"**{title}**\n\n{_md(header, body)}")
    loads = [f"{name} {res['load']['other_cores']:.2f}" for name, res in report.get("scenarios", {}).items()
             if res.get("load", {}).get("other_cores") is not None]
    waits = report.get("idle_waits") or {}
    if loads:
        if waits.get("runs"):
            loads.append(f"{waits['quiet']:g} of {waits['runs']:g} compared runs started on an idle machine")
        parts.append("CPU cores busy with other work during the run (shared machine; includes kernel "
                     "writeback): " + ", ".join(loads) + ".")
    notes = list(skipped(report))
    if notes:
        parts.append("\n".join(f"- {n}" for n in notes))
    return "\n\n".join(parts) + "\n"


def text_table(report: dict[str, Any]) -> str:
    """A short plain-text table of the targets (and what was skipped) for stderr."""
    rows = list(target_rows(report))
    out = [_plain(["Figure", "Measured", "Target", "Met"], [[c.replace("**", "") for c in r] for r in rows])]
    out += [f"  {n}" for n in skipped(report)]
    return "\n".join(out)


def plot(report: dict[str, Any], path: Path) -> str | None:
    """A bar chart of imagestore vs its limits; returns why not when matplotlib is missing."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return "matplotlib is not installed; no plot"
    rows = list(throughput_rows(report))
    if not rows:
        return "no throughput figures to plot"
    labels = [r[0] for r in rows]
    ours = [float(r[1].replace(",", "")) for r in rows]
    limit = [float(r[3].replace(",", "")) for r in rows]
    fig, ax = plt.subplots(figsize=(9, 0.6 * len(rows) + 1.5))
    ys = range(len(rows))
    ax.barh([y + 0.2 for y in ys], limit, height=0.4, label="same-run limit")
    ax.barh([y - 0.2 for y in ys], ours, height=0.4, label="imagestore")
    ax.set_yticks(list(ys), labels)
    ax.invert_yaxis()
    ax.set_xlabel("MB/s")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    return None


def main(argv: list[str] | None = None) -> int:
    """Print the Markdown for a JSON report; optionally write a PNG plot."""
    p = argparse.ArgumentParser(prog="python -m imagestore_bench.report", description=__doc__)
    p.add_argument("json", type=Path, help="report written by imagestore bench --out")
    p.add_argument("--png", type=Path, help="also draw a bar chart here (needs matplotlib)")
    args = p.parse_args(argv)
    report = json.loads(args.json.read_text())
    print(markdown(report), end="")
    if args.png:
        why = plot(report, args.png)
        if why:
            print(why, file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
