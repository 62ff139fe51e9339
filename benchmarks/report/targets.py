"""The issue's targets, judged from the JSONL records of one run; a miss carries its measured reason.

Each target names the records it reads; when they are absent (a store that did
not run) the target is reported with ``met = None`` and why, never dropped.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

from ..figures import size_label

GiB = 1 << 30
Rec = dict[str, Any]


def _summaries(records: Iterable[Rec]) -> list[Rec]:
    return [r for r in records if r.get("kind") == "summary"]


def _find(rs: list[Rec], **kw: Any) -> list[Rec]:
    return [r for r in rs if all(r.get(k) == v for k, v in kw.items())]


def _cpu_per_gib(r: Rec) -> str:
    if not r["bytes"]:
        return f"{(r['cpu_user_s'] + r['cpu_sys_s']) * 1e3:.1f} CPU-ms"
    gib = r["bytes"] / GiB
    own = (r["cpu_user_s"] + r["cpu_sys_s"]) / gib
    back = r.get("backend_cpu_user_s")
    text = f"{own:.2f} CPU-s/GiB client"
    if back is not None:
        text += f", {(back + (r.get('backend_cpu_sys_s') or 0)) / gib:.2f} backend"
    return text


def _reason(r: Rec, lim: Rec | None) -> str:
    """Where the time went: CPU seconds per GiB of the figure and of its limit, and the noise."""
    out = f"{r['op']}: {_cpu_per_gib(r)}"
    if lim is not None:
        out += f"; {lim['op']}: {_cpu_per_gib(lim)}"
    n = r.get("noise") or {}
    if n.get("other_cores") is not None:
        out += f"; other load {n.get('other_cores')} cores before, {n.get('other_cores_during')} during"
    return out


def target(ident: str, description: str, value: float | None, op: str, threshold: float,
           reason: str = "") -> Rec:
    met = None if value is None else (value >= threshold if op == ">=" else value <= threshold)
    return {"kind": "target", "id": ident, "description": description,
            "value": None if value is None else round(value, 4), "op": op, "threshold": threshold,
            "met": met, "reason": reason}


def _ratio_targets(rs: list[Rec], driver: str, op: str, threshold: float, what: str, ident: str,
                   scenario: str = "store") -> Iterator[Rec]:
    found = False
    for r in _find(rs, driver=driver, op=op, scenario=scenario, concurrency=1):
        if r["limit"] is None:
            continue
        found = True
        lim = next(iter(_find(rs, store=r["store"], op=r["limit"], size=r["size"], concurrency=1)), None)
        met = r["ratio"] is not None and r["ratio"] >= threshold
        yield target(f"{ident}.{r['store']}.{size_label(r['size'])}",
                     f"{r['store']}: {what} {size_label(r['size'])} / {r['limit']} (best of {r['repeats']})",
                     r["ratio"], ">=", threshold, "" if met else _reason(r, lim))
    if not found:
        yield target(f"{ident}.{driver}", f"{driver}: {what}", None, ">=", threshold,
                     f"no {driver} store with a limit ran")


def evaluate(records: list[Rec]) -> list[Rec]:
    """Every target of the issue for the records of one run."""
    rs = _summaries(records)
    out: list[Rec] = []
    out += _ratio_targets(rs, "file", "add_known", 0.9, "add", "file.add_vs_ideal")
    out += _ratio_targets(rs, "rbd", "add_known", 0.9, "add", "rbd.add_vs_ideal")
    out += _ratio_targets([r for r in rs if r["scenario"] == "peer"], "file", "add_known", 2.0,
                          "add vs glance_store", "file.add_vs_glance_store", scenario="peer")
    out += _ratio_targets([r for r in rs if r["scenario"] == "peer"], "rbd", "add_known", 2.0,
                          "add vs glance_store", "rbd.add_vs_glance_store", scenario="peer")
    drivers = sorted({r["driver"] for r in rs if r["scenario"] in ("store",) and r["driver"] != "-"})
    for d in drivers:
        out += _ratio_targets(rs, d, "get", 0.8, "get (unverified)", "get_vs_raw_read")
        if _find(rs, driver=d, op="get_ranged_1m_verified"):
            out += _ratio_targets(rs, d, "get_ranged_1m_verified", 0.8, "verified 1 MiB ranges",
                                  "integrity.ranged_get")
        if _find(rs, driver=d, op="add_known_observed"):  # instrumentation within 2% of the same run's
            out += _ratio_targets(rs, d, "add_known_observed", 0.98, "observed add", "observe.add_overhead")
            out += _ratio_targets(rs, d, "get_verified_observed", 0.98, "observed verified get",
                                  "observe.get_overhead")
    out += list(_clone_targets(rs))
    out += list(_rss_targets(rs))
    out += list(_concurrency_targets(rs))
    return out


def _clone_targets(rs: list[Rec]) -> Iterator[Rec]:
    for store in sorted({r["store"] for r in _find(rs, op="clone_cow")}):
        clones = sorted(_find(rs, store=store, op="clone_cow"), key=lambda r: r["size"])
        big = clones[-1]
        smalls = [r for r in clones if r["size"] >= GiB and r is not big] or [r for r in clones if r is not big]
        if not smalls:
            yield target(f"clone_o1.{store}", f"{store}: cow clone O(1)", None, "<=", 2.0, "only one size cloned")
            continue
        small = smalls[0]
        value = big["seconds"] / small["seconds"] if small["seconds"] > 0 else None
        yield target(f"clone_o1.{store}", f"{store}: cow clone {size_label(big['size'])} / "
                     f"{size_label(small['size'])} (median seconds, {big['seconds'] * 1e3:.1f} ms / "
                     f"{small['seconds'] * 1e3:.1f} ms)", value, "<=", 2.0)


def _rss_targets(rs: list[Rec]) -> Iterator[Rec]:
    for store in sorted({r["store"] for r in _find(rs, op="rss_add_unknown")}):
        runs = sorted(_find(rs, store=store, op="rss_add_unknown"), key=lambda r: r["size"])
        big = runs[-1]
        yield target(f"rss_growth.{store}", f"{store}: peak RSS growth (MiB) of an unknown-size add of "
                     f"{size_label(big['size'])}", big["rss_growth_mib"], "<=", 256.0)
        ones = [r for r in runs if r["size"] >= GiB and r is not big]
        if ones and ones[0]["rss_growth_mib"]:
            v = big["rss_growth_mib"] / max(ones[0]["rss_growth_mib"], 1.0)
            yield target(f"rss_flat.{store}", f"{store}: RSS growth {size_label(big['size'])} / "
                         f"{size_label(ones[0]['size'])} ({big['rss_growth_mib']:.0f} / "
                         f"{ones[0]['rss_growth_mib']:.0f} MiB)", v, "<=", 1.1)


def _concurrency_targets(rs: list[Rec]) -> Iterator[Rec]:
    cc = [r for r in rs if r["scenario"] == "concurrency" and r["limit"] is not None]
    top = max((r["concurrency"] for r in cc), default=0)
    for r in sorted(cc, key=lambda r: (r["store"], r["mode"], r["op"])):
        if r["concurrency"] != top:
            continue
        scale = None
        one = _find(rs, store=r["store"], op=r["limit"], concurrency=1, scenario="concurrency")
        if one and r["limit_mb_s"] and one[0]["mb_s_max"]:
            scale = r["limit_mb_s"] / one[0]["mb_s_max"]
        scale_text = f", backend scales {scale:.1f}x" if scale is not None else ""
        met = r["ratio"] is not None and r["ratio"] >= 0.8
        yield target(f"concurrency.{r['store']}.{r['mode']}.{r['op']}",
                     f"{r['store']}: {top} {r['mode']} {r['op']} aggregate / {r['limit']} x{top}{scale_text} "
                     f"(p99 {r['latency_p99_s']:.2f} s)", r["ratio"], ">=", 0.8,
                     "" if met else _reason(r, None))
