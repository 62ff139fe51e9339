"""``imagestore bench`` end to end at tiny sizes: the JSONL follows its schema, the report renders from it.

No figure is judged here (no timing thresholds): the checks are about shape,
completeness and cleanup, and each can fail.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from imagestore_bench import report, schema

from imagestore.cli import main as cli_main

SIZES = (1 << 20, 2 << 20)
STORE_OPS = {"add_known", "add_unknown", "get", "get_verified", "get_ranged", "stat", "delete", "clone_stream"}


@pytest.fixture(scope="module")
def bench_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, int, list[dict[str, Any]], str]:
    tmp = tmp_path_factory.mktemp("bench")
    out, work = tmp / "out", tmp / "work"
    argv = ["bench", "--quick", "--quiet", "--no-peer", "--no-xfs", "--store", "file", "--store", "memory",
            "--size", "1M", "--size", "2M", "--concurrency", "1", "--concurrency", "2", "--repeats", "2",
            "--idle-wait", "0", "--out", str(out), "--workdir", str(work)]
    code = cli_main(argv)
    records = report.load(out / "results.jsonl")
    return out, code, records, str(work)


def test_the_run_succeeds_and_leaves_nothing_behind(bench_run: tuple[Path, int, list[dict[str, Any]], str]) -> None:
    out, code, records, work = bench_run
    assert code == 0, [r for r in records if r["kind"] == "skip"]
    assert list(Path(work).iterdir()) == [], "the harness left files in its work directory"
    assert {p.name for p in out.iterdir()} >= {"results.jsonl", "report.md"}


def test_every_line_follows_the_schema(bench_run: tuple[Path, int, list[dict[str, Any]], str]) -> None:
    _, _, records, _ = bench_run
    assert records[0]["kind"] == "env" and records[-1]["kind"] == "end"
    assert records[0]["schema"] == schema.SCHEMA_VERSION
    for r in records:
        assert schema.validate(r) == [], r
    kinds = {r["kind"] for r in records}
    assert {"env", "run", "summary", "end"} <= kinds


def test_every_store_gets_the_whole_scenario(bench_run: tuple[Path, int, list[dict[str, Any]], str]) -> None:
    _, _, records, _ = bench_run
    summ = [r for r in records if r["kind"] == "summary"]
    for store in ("file", "memory"):
        ops = {r["op"] for r in summ if r["store"] == store and r["scenario"] == "store"}
        assert ops >= STORE_OPS, (store, STORE_OPS - ops)
        sizes = {r["size"] for r in summ if r["store"] == store and r["op"] == "add_known" and r["scenario"] == "store"}
        assert sizes == set(SIZES)
    file_ops = {r["op"] for r in summ if r["store"] == "file"}
    assert {"get_cold", "locate"} <= file_ops
    assert {("file", "ideal_add_file"), ("file", "disk_write_fsync"), ("file", "read_warm"),
            ("memory", "ideal_add_memory")} <= {(r["store"], r["op"]) for r in summ if r["scenario"] == "limit"}
    assert {"hash_md5", "hash_sha512", "hash_parallel"} <= {r["op"] for r in summ if r["store"] == "-"}


def test_candidates_carry_their_limit_and_ratio(bench_run: tuple[Path, int, list[dict[str, Any]], str]) -> None:
    _, _, records, _ = bench_run
    summ = [r for r in records if r["kind"] == "summary"]
    adds = [r for r in summ if r["op"] == "add_known" and r["scenario"] == "store"]
    assert adds
    for r in adds:
        lim = [x for x in summ if x["store"] == r["store"] and x["op"] == r["limit"] and x["size"] == r["size"]
               and x["scenario"] == "limit"]
        assert len(lim) == 1, r
        assert r["limit_mb_s"] == lim[0]["mb_s_max"]
        assert r["ratio"] == round(r["mb_s_max"] / lim[0]["mb_s_max"], 4)
        assert r["repeats"] == 2 and r["mb_s_min"] <= r["mb_s_median"] <= r["mb_s_max"]
        runs = [x for x in records if x["kind"] == "run" and x["store"] == r["store"] and x["op"] == "add_known"
                and x["size"] == r["size"] and x["scenario"] == "store"]
        assert sorted(x["repeat"] for x in runs) == [0, 1]


def test_concurrency_levels_and_modes(bench_run: tuple[Path, int, list[dict[str, Any]], str]) -> None:
    _, _, records, _ = bench_run
    cc = [r for r in records if r["kind"] == "summary" and r["scenario"] == "concurrency"]
    got = {(r["store"], r["mode"], r["concurrency"], r["op"]) for r in cc}
    for n in (1, 2):
        for op in ("add_known", "get"):
            assert ("file", "threads", n, op) in got
            assert ("file", "processes", n, op) in got
            assert ("memory", "threads", n, op) in got
    for r in cc:
        if r["op"] == "add_known":
            assert r["latency_n"] == r["concurrency"] * r["repeats"], r
            assert r["bytes"] == r["concurrency"] * r["size"]
            assert r["latency_p50_s"] <= r["latency_p95_s"] <= r["latency_p99_s"]
    skips = [r for r in records if r["kind"] == "skip" and r["store"] == "memory" and r["scenario"] == "concurrency"]
    assert skips, "memory cannot run process clients and must say so"


def test_the_report_renders_again_from_the_jsonl(bench_run: tuple[Path, int, list[dict[str, Any]], str]) -> None:
    out, _, records, _ = bench_run
    md = (out / "report.md").read_text()
    for title in ("**Targets**", "**Every store, single client", "**Concurrency", "**Machine limits",
                  "**Limits used**"):
        assert title in md
    assert "| file | add_known | 1M |" in md and "| memory | get | 2M |" in md
    proc = subprocess.run([sys.executable, "-m", "imagestore_bench.report", str(out / "results.jsonl")],
                          capture_output=True, text=True, check=True)
    assert proc.stdout == md
    assert report.markdown(records) == md


def test_targets_are_reported_even_when_their_store_did_not_run(
        bench_run: tuple[Path, int, list[dict[str, Any]], str]) -> None:
    _, _, records, _ = bench_run
    from imagestore_bench.report.targets import evaluate

    ts = {t["id"]: t for t in evaluate(records)}
    assert ts["rbd.add_vs_ideal.rbd"]["met"] is None and "no rbd" in ts["rbd.add_vs_ideal.rbd"]["reason"]
    file_adds = [t for k, t in ts.items() if k.startswith("file.add_vs_ideal.file.")]
    assert len(file_adds) == len(SIZES)
    for t in file_adds:
        assert isinstance(t["met"], bool) and t["met"] == (t["value"] >= t["threshold"])
        assert t["met"] or t["reason"], t
    for t in ts.values():
        assert schema.validate(t) == [], t


def test_plots_are_drawn(bench_run: tuple[Path, int, list[dict[str, Any]], str]) -> None:
    out, _, _, _ = bench_run
    for name in ("throughput.png", "latency.png", "rss.png"):
        data = (out / name).read_bytes()
        assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 5000, name


def test_sizes_and_bad_arguments() -> None:
    from imagestore_bench.harness import parse_args

    a = parse_args(["--size", "64M", "--size", "2G", "--concurrency", "16"])
    assert a.sizes == [64 << 20, 2 << 30] and a.levels == [16] and a.repeats == 3
    assert parse_args([]).sizes == [64 << 20, 256 << 20, 1 << 30]
    assert parse_args(["--quick"]).clone_bytes is None
    for bad in (["--size", "12X"], ["--repeats", "0"], ["--size", "0"]):
        with pytest.raises(SystemExit):
            parse_args(bad)


def test_jsonl_is_one_object_per_line(bench_run: tuple[Path, int, list[dict[str, Any]], str]) -> None:
    out, _, records, _ = bench_run
    lines = (out / "results.jsonl").read_text().splitlines()
    assert len(lines) == len(records)
    assert all(isinstance(json.loads(x), dict) for x in lines)


def test_help_and_legacy_scenarios_are_registered(capsys: pytest.CaptureFixture[str]) -> None:
    import importlib

    from imagestore_bench.harness import LEGACY_SCENARIOS

    assert set(LEGACY_SCENARIOS) == {"file", "formats", "rbd", "cache", "swift", "s3", "hardening", "convert"}
    assert cli_main(["bench", "--help"]) == 0
    text = capsys.readouterr().out
    assert "--with-services" in text and "--scenario" in text
    for name in LEGACY_SCENARIOS:
        assert name in text, name
        module = importlib.import_module(f"imagestore_bench.scenarios.{name}")
        assert callable(module.run), name


def test_schema_doc_is_current() -> None:
    doc = Path(__file__).resolve().parents[2] / "docs" / "bench" / "SCHEMA.md"
    assert doc.read_text() == schema.document(), "regenerate: python -m imagestore_bench.schema > docs/bench/SCHEMA.md"
