"""The benchmark harness runs end to end on tiny sizes (its figures are not judged here)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from imagestore.cli import main as cli_main

EXPECTED_TARGETS = {"file.add_vs_ideal", "file.read_stream_vs_plain", "file.get_bytes_vs_read_all"}


def test_bench_quick_runs(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "bench.json"
    workdir = tmp_path / "w"
    code = cli_main(["bench", "--quick", "--idle-wait", "0", "--workdir", str(workdir), "--out", str(out)])
    stdout = capsys.readouterr().out
    assert code == 0
    report = json.loads(stdout)
    assert json.loads(out.read_text()) == report
    ids = {t["id"] for t in report["targets"]}
    assert ids >= EXPECTED_TARGETS, ids
    for target in report["targets"]:
        assert isinstance(target["value"], (int, float)) and math.isfinite(target["value"]), target
        assert target["op"] in (">=", "<=") and isinstance(target["met"], bool), target
        assert target["met"] is (target["value"] >= target["limit"] if target["op"] == ">="
                                 else target["value"] <= target["limit"]), target
    add = report["scenarios"]["file"]["add"]
    assert add and "error" not in add
    assert sorted(report["scenarios"]) == ["file", "formats"]
    assert list(workdir.iterdir()) == [], "the harness left files behind"
