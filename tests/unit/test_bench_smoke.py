"""The benchmark harness runs end to end on tiny sizes (its figures are not judged here)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from imagestore.cli import main as cli_main


def test_bench_quick_runs(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "bench.json"
    code = cli_main(["bench", "--quick", "--idle-wait", "0", "--workdir", str(tmp_path / "w"), "--out", str(out)])
    stdout = capsys.readouterr().out
    assert code == 0
    report = json.loads(stdout)
    assert json.loads(out.read_text()) == report
    text = json.dumps(report)
    for figure in ("add", "get", "rss", "inspect"):
        assert figure in text, figure
    assert not list((tmp_path / "w").glob("**/*.raw")), "the harness left images behind"
