"""The JSONL of a run as a Markdown report, and its PNG plots.

``python -m imagestore_bench.report results.jsonl [--plots DIR]`` renders a
run again (a JSON report of the older harness is rendered by :mod:`.legacy_json`).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from .. import limits
from . import targets
from ..figures import size_label

Rec = dict[str, Any]
GiB = 1 << 30


def load(path: Path) -> list[Rec]:
    """The records of a JSONL file (blank lines ignored)."""
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def _f(v: float | None, fmt: str = "{:,.0f}") -> str:
    return "-" if v is None else fmt.format(v)


def _ms(seconds: float | None) -> str:
    """Milliseconds with 3 significant digits."""
    return "-" if seconds is None else f"{seconds * 1e3:.3g}"


def _md(header: list[str], rows: Iterable[list[str]]) -> str:
    body = list(rows)
    if not body:
        return ""
    out = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    out += ["| " + " | ".join(r) + " |" for r in body]
    return "\n".join(out)


def _cpu(r: Rec) -> str:
    if not r["bytes"]:  # stat, locate, cow clone: CPU milliseconds per operation instead
        ops = max(r["ops_s"] * r["seconds"], 1.0)
        own = (r["cpu_user_s"] + r["cpu_sys_s"]) / ops * 1e3
        b = r.get("backend_cpu_user_s")
        back = "" if b is None else f" / {(b + (r.get('backend_cpu_sys_s') or 0)) / ops * 1e3:.1f}"
        return f"{own:.2f}{back} ms/op"
    gib = r["bytes"] / GiB
    own = (r["cpu_user_s"] + r["cpu_sys_s"]) / gib
    b = r.get("backend_cpu_user_s")
    back = "" if b is None else f" / {(b + (r.get('backend_cpu_sys_s') or 0)) / gib:.2f}"
    return f"{own:.2f}{back}"


def _summ(records: list[Rec]) -> list[Rec]:
    return [r for r in records if r.get("kind") == "summary"]


def store_rows(records: list[Rec]) -> Iterable[list[str]]:
    """One row per (store, op, size) summary of the generic scenario."""
    rs = [r for r in _summ(records) if r["scenario"] == "store"]
    lim = {(r["store"], r["op"], r["size"]): r for r in _summ(records) if r["scenario"] == "limit"}
    for r in rs:
        raw = r["extra"].get("raw_limit")
        raw_rec = lim.get((r["store"], raw, r["size"])) if raw else None
        raw_txt = f"{raw} {_f(raw_rec['mb_s_max'])}" if raw_rec else "-"
        rate = (f"{_f(r['mb_s_max'])} ({_f(r['mb_s_min'])}–{_f(r['mb_s_max'])})" if r["mb_s"] is not None
                else f"{r['ops_s']:,.1f} op/s")
        yield [r["store"], r["op"], size_label(r["size"]) if r["bytes"] or r["op"].startswith("clone") else "-",
               rate, r["limit"] or "-", _f(r["limit_mb_s"]), _f(r["ratio"], "{:.2f}"), raw_txt,
               _ms(r["latency_p50_s"]), _ms(r["latency_p99_s"]), _cpu(r),
               _f(r["rss_growth_mib"], "{:.0f}")]


def limit_rows(records: list[Rec]) -> Iterable[list[str]]:
    for r in _summ(records):
        if r["scenario"] == "limit" and r["store"] == "-":
            yield [r["op"], size_label(r["size"]), f"{_f(r['mb_s_max'])} ({_f(r['mb_s_min'])}–{_f(r['mb_s_max'])})",
                   _cpu(r)]


def concurrency_rows(records: list[Rec]) -> Iterable[list[str]]:
    for r in _summ(records):
        if r["scenario"] == "concurrency":
            yield [r["store"], r["mode"], str(r["concurrency"]), r["op"], size_label(r["size"]),
                   _f(r["mb_s_max"]), f"{r['ops_s']:.2f}",
                   " / ".join(_f(r[k], "{:.2f}") for k in ("latency_p50_s", "latency_p95_s", "latency_p99_s")),
                   r["limit"] or ("(limit)" if r["limit"] is None and r["op"] in limits.LIMITS else "-"),
                   _f(r["limit_mb_s"]), _f(r["ratio"], "{:.2f}"), _cpu(r)]


def peer_rows(records: list[Rec]) -> Iterable[list[str]]:
    for r in _summ(records):
        if r["scenario"] in ("peer", "glance") and r["limit"] is not None:
            yield [r["scenario"], r["store"], r["op"], size_label(r["size"]), _f(r["mb_s_max"]), r["limit"],
                   _f(r["limit_mb_s"]), _f(r["ratio"], "{:.2f}"), _cpu(r)]


def target_rows(ts: list[Rec]) -> Iterable[list[str]]:
    for t in ts:
        met = "n/a" if t["met"] is None else ("yes" if t["met"] else "**no**")
        yield [t["description"], _f(t["value"], "{:.2f}"), f"{t['op']} {t['threshold']:g}", met,
               t.get("reason") or ""]


def markdown(records: list[Rec]) -> str:
    """The whole report: environment, targets, then one table per kind of figure, limits and skips."""
    ts = [r for r in records if r.get("kind") == "target"] + targets.evaluate(records)
    parts = []
    runs = _runs(records)
    for i, (env, end) in enumerate(runs):
        s = env.get("settings", {})
        stores = ", ".join(f"{k} ({v})" for k, v in env.get("stores", {}).items())
        chosen = s.get("parts")
        what = "" if not chosen else "; parts " + ", ".join(
            k if v is None else f"{k} ({', '.join(v)})" for k, v in chosen.items())
        prefix = f"Run {i + 1} of {len(runs)}: " if len(runs) > 1 else ""
        parts.append(
            f"{prefix}imagestore {env.get('imagestore')} on Python {env.get('python')}, {env.get('cpus')} CPUs, "
            f"{env.get('mem_gib')} GiB RAM, started {env.get('started')}; stores {stores}{what}; "
            f"sizes {', '.join(size_label(x) for x in s.get('sizes', []))}, {s.get('repeats')} repeats, "
            f"concurrency {s.get('levels')} x {size_label(s.get('concurrency_size') or 0)} "
            f"({'/'.join(s.get('modes', []))}); took {end.get('duration_s', '?')} s"
            + ("" if end else " (did not finish)") + ".")
        if s.get("argv") is not None:
            parts.append("Command: `imagestore bench " + " ".join(s["argv"]) + "`")
    parts.append("MB/s = 10^6 bytes/s; ratios are the best repeat against the best repeat of the limit, "
                 "timed interleaved in the same run.")
    sections = [
        ("Targets", ["Target", "Measured", "Threshold", "Met", "Measured reason (CPU-s/GiB client / backend)"],
         target_rows(ts)),
        ("Every store, single client (best MB/s, min–max of the repeats)",
         ["Store", "Op", "Size", "MB/s", "Limit", "Limit MB/s", "Ratio", "Raw client MB/s", "p50 ms", "p99 ms",
          "CPU-s/GiB client / backend", "RSS growth MiB"], store_rows(records)),
        ("Concurrency (aggregate MB/s of all clients)",
         ["Store", "Mode", "Clients", "Op", "Size/client", "MB/s", "ops/s", "p50 / p95 / p99 s", "Limit",
          "Limit MB/s", "Ratio", "CPU-s/GiB"], concurrency_rows(records)),
        ("glance_store and Glance side by side",
         ["Scenario", "Store", "Op", "Size", "MB/s", "Against", "Its MB/s", "Ratio", "CPU-s/GiB"], peer_rows(records)),
        ("Machine limits (same run)", ["Limit", "Size", "MB/s", "CPU-s/GiB"], limit_rows(records)),
    ]
    for title, header, rows in sections:
        table = _md(header, rows)
        if table:
            parts.append(f"**{title}**\n\n{table}")
    used = sorted({r["limit"] for r in _summ(records) if r.get("limit")} |
                  {r["op"] for r in _summ(records) if r["op"] in limits.LIMITS})
    if used:
        parts.append("**Limits used**\n\n" + _md(["Limit", "What it is"], ([u, limits.LIMITS[u]] for u in used
                                                                          if u in limits.LIMITS)))
    for i, (_, end) in enumerate(runs):
        g = end.get("noise_guard")
        if g:
            parts.append(f"Noise guard{f' (run {i + 1})' if len(runs) > 1 else ''}: {g['quiet_steps']} of "
                         f"{g['steps']} timed steps started on a quiet machine (< 0.25 cores of other work), "
                         f"{g['waited_s']} s spent waiting.")
    skips = list(dict.fromkeys(f"- {r['scenario']}/{r['store']}: {r['reason']}"  # one line per distinct skip
                               for r in records if r.get("kind") == "skip"))
    if skips:
        parts.append("**Not measured**\n\n" + "\n".join(skips))
    return "\n\n".join(parts) + "\n"


def _runs(records: list[Rec]) -> list[tuple[Rec, Rec]]:
    """(env, end) of each run in the records (several JSONL files may be concatenated)."""
    out: list[tuple[Rec, Rec]] = []
    for r in records:
        if r.get("kind") == "env":
            out.append((r, {}))
        elif r.get("kind") == "end" and out:
            out[-1] = (out[-1][0], r)
    return out


def plots(records: list[Rec], directory: Path) -> list[str]:
    """Draw the PNGs; returns notes (what was written, or why nothing was)."""
    from . import charts as p

    return p.draw(records, directory)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m imagestore_bench.report", description=__doc__)
    ap.add_argument("jsonl", type=Path, nargs="+", help="results.jsonl written by imagestore bench (several "
                                                        "are rendered as one report of several runs)")
    ap.add_argument("--plots", type=Path, help="also draw the PNG plots into this directory (needs matplotlib)")
    args = ap.parse_args(argv)
    text = args.jsonl[0].read_text()
    if text.lstrip().startswith("{") and not text.lstrip().startswith('{"kind"'):
        from . import legacy_json  # a JSON report of the older harness

        print(legacy_json.markdown(json.loads(text)), end="")
        return 0
    records = [r for path in args.jsonl for r in load(path)]
    print(markdown(records), end="")
    if args.plots:
        for note in plots(records, args.plots):
            print(note, file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
