"""The JSONL record schema of ``imagestore bench`` (its results.jsonl): one line per measurement.

Every line is a JSON object with ``kind``. The measurement lines (``kind`` =
``"run"`` for one timed repeat, ``"summary"`` for the repeats of one figure
together) carry the fields of :data:`FIELDS`; ``"env"`` (first line: machine,
settings), ``"target"`` (one pass/fail check of the issue), ``"skip"`` (a store,
scenario or figure that did not run, and why) and ``"legacy"`` (the whole result
of a ``run(ctx) -> dict`` scenario) carry what their docs below say. This module
is the one place the schema is written down; the report and the tests read it.
"""

from __future__ import annotations

import math
from typing import Any

SCHEMA_VERSION = 1

#: measurement field -> (JSON types, meaning). ``None`` is allowed where the type list has it.
FIELDS: dict[str, tuple[tuple[type | None, ...], str]] = {
    "kind": ((str,), '"run" (one timed repeat) or "summary" (min/median/max over the repeats)'),
    "scenario": ((str,), 'the scenario: "store" (the generic one), "limit", "concurrency", "peer", "glance"'),
    "store": ((str,), 'the store measured (its name in the run), or "-" for machine-wide limits'),
    "driver": ((str,), 'the store\'s driver ("file", "rbd", "s3", ...), "glance_store:file", or "-"'),
    "op": ((str,), "what was timed: add_known, add_unknown, get, get_verified, get_ranged, get_ranged_1m, "
                   "get_ranged_1m_verified, get_cold, scrub, clone_cow, clone_server_copy, clone_stream, clone_cross, "
                   "stat, locate, delete, "
                   "rss_add_unknown, or a limit's name (see limits.LIMITS)"),
    "size": ((int,), "bytes per operation (per client for concurrency)"),
    "concurrency": ((int,), "clients at once (1 for single-stream figures)"),
    "mode": ((str,), '"single", "threads" or "processes"'),
    "repeat": ((int, None), "index of the repeat (run), None in a summary"),
    "repeats": ((int,), "how many repeats the summary covers (1 in a run)"),
    "seconds": ((float,), "wall seconds (run: that repeat; summary: the median)"),
    "bytes": ((int,), "bytes moved by the whole timed step (all clients)"),
    "mb_s": ((float, None), "bytes / seconds / 10^6 (summary: of the median); None when no bytes move"),
    "mb_s_min": ((float, None), "summary: slowest repeat's MB/s"),
    "mb_s_median": ((float, None), "summary: median repeat's MB/s"),
    "mb_s_max": ((float, None), "summary: fastest repeat's MB/s"),
    "ops_s": ((float,), "operations / seconds"),
    "latency_p50_s": ((float, None), "median seconds of one operation (of one client)"),
    "latency_p95_s": ((float, None), "95th percentile seconds of one operation"),
    "latency_p99_s": ((float, None), "99th percentile seconds of one operation"),
    "latency_n": ((int,), "operations the percentiles are computed from"),
    "rss_base_mib": ((float, None), "resident MiB of the measuring process before the step"),
    "rss_peak_mib": ((float, None), "peak resident MiB during the step (VmHWM reset before it; for process "
                                    "clients: the largest client's peak)"),
    "rss_growth_mib": ((float, None), "rss_peak_mib - rss_base_mib"),
    "cpu_user_s": ((float,), "user CPU seconds of the measuring process and its reaped children over the step"),
    "cpu_sys_s": ((float,), "system CPU seconds of the same"),
    "backend_cpu_user_s": ((float, None), "user CPU seconds of the backend's local processes (OSD, radosgw, "
                                          "Swift servers, moto) over the step; None when not local"),
    "backend_cpu_sys_s": ((float, None), "system CPU seconds of the same"),
    "limit": ((str, None), "name of the same-run limit this figure is compared with (limits.LIMITS), or None"),
    "limit_mb_s": ((float, None), "the limit's MB/s (summary: its best repeat; runs: the interleaved repeat's)"),
    "ratio": ((float, None), "best MB/s of the figure / best MB/s of its limit (summary); per repeat in runs"),
    "ratio_median": ((float, None), "median MB/s / the limit's median MB/s (summary only, else None)"),
    "noise": ((dict,), "the noise guard's figures: load1, other_cores (before the step, cores busy with "
                       "other work), other_cores_during, waited_s, quiet (bool)"),
    "extra": ((dict,), "figure-specific details (mode used by a clone, failures of clients, ...)"),
}

REQUIRED = tuple(FIELDS)

#: fields of the other kinds of line
OTHER_KINDS: dict[str, tuple[str, ...]] = {
    "env": ("schema", "imagestore", "python", "cpus", "mem_gib", "started", "settings", "stores"),
    "target": ("id", "description", "value", "op", "threshold", "met", "reason"),
    "skip": ("scenario", "store", "reason"),
    "legacy": ("scenario", "result"),
    "end": ("duration_s", "failed"),
}


def _type_ok(value: Any, types: tuple[type | None, ...]) -> bool:
    if value is None:
        return None in types
    if isinstance(value, bool):
        return bool in types
    if float in types and isinstance(value, int):
        return True
    return any(t is not None and isinstance(value, t) for t in types)


def validate(record: dict[str, Any]) -> list[str]:
    """The schema violations of one JSONL record (empty when it conforms)."""
    kind = record.get("kind")
    problems: list[str] = []
    if kind in ("run", "summary"):
        for name, (types, _) in FIELDS.items():
            if name not in record:
                problems.append(f"missing {name}")
            elif not _type_ok(record[name], types):
                problems.append(f"{name}={record[name]!r} is not {types}")
        for name in record:
            if name not in FIELDS:
                problems.append(f"unknown field {name}")
        for name in ("seconds", "mb_s", "ops_s", "ratio"):
            v = record.get(name)
            if isinstance(v, float) and not math.isfinite(v):
                problems.append(f"{name} is not finite")
        if not problems and record["bytes"] and record["seconds"] > 0 and record["mb_s"] is not None and kind == "run":
            expect = record["bytes"] / record["seconds"] / 1e6
            if abs(expect - record["mb_s"]) > max(0.05, 0.002 * expect):
                problems.append(f"mb_s {record['mb_s']} != bytes/seconds/1e6 = {expect:.2f}")
        if not problems and record["limit"] is None and record["ratio"] is not None:
            problems.append("ratio without a limit")
    elif kind in OTHER_KINDS:
        for name in OTHER_KINDS[kind]:
            if name not in record:
                problems.append(f"{kind}: missing {name}")
        if kind == "target" and not problems:
            if record["op"] not in (">=", "<="):
                problems.append(f"target op {record['op']!r}")
            if not isinstance(record["met"], (bool, type(None))):
                problems.append("target met is not a bool or None")
    else:
        problems.append(f"unknown kind {kind!r}")
    return problems


def markdown_table() -> str:
    """The schema as a Markdown table (for the README)."""
    rows = ["| field | type | meaning |", "|---|---|---|"]
    for name, (types, meaning) in FIELDS.items():
        names = " or ".join("null" if t is None else {"str": "string", "int": "int", "float": "number",
                                                      "dict": "object"}[t.__name__] for t in types)
        rows.append(f"| `{name}` | {names} | {meaning} |")
    return "\n".join(rows)


def document() -> str:
    """docs/bench/SCHEMA.md: the record fields, the other kinds of line and the limits, from this module."""
    from .limits import LIMITS

    kinds = "\n".join(f"- `{k}`: {', '.join(f'`{f}`' for f in fs)}" for k, fs in OTHER_KINDS.items())
    limits = "\n".join(["| limit | what it measures |", "|---|---|",
                        *(f"| `{name}` | {what} |" for name, what in LIMITS.items())])
    return (f"# imagestore bench: JSONL schema (version {SCHEMA_VERSION})\n\n"
            "Generated by `python -m imagestore_bench.schema > docs/bench/SCHEMA.md`; the source is "
            "`benchmarks/schema.py` (fields) and `benchmarks/limits.py` (limits).\n\n"
            "Every line of `results.jsonl` is one JSON object with a `kind`. MB/s is 10^6 bytes per second.\n\n"
            "## Measurement lines (`kind` = `run` or `summary`)\n\n"
            f"{markdown_table()}\n\n## Other lines and their fields\n\n{kinds}\n\n"
            f"## Same-run limits (the `limit` field)\n\n{limits}\n")


if __name__ == "__main__":
    print(document(), end="")
