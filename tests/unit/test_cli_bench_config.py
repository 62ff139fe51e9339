"""``imagestore --config FILE bench``: the global --config (and --store) mean for the bench what they
mean for every other command; the bench's own options remain as aliases."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from imagestore_bench import report

from imagestore.cli import main as cli_main

TINY = ["--quick", "--quiet", "--no-peer", "--no-xfs", "--size", "1M", "--concurrency", "0", "--repeats", "1",
        "--idle-wait", "0", "--part", "store"]


@pytest.fixture
def config(tmp_path: Path) -> Path:
    path = tmp_path / "imagestore.toml"
    path.write_text('default = "cfgmem"\n[stores.cfgmem]\ndriver = "memory"\nnamespace = "bench-cfg"\n')
    return path


def _bench(tmp_path: Path, argv: list[str]) -> tuple[int, list[dict[str, Any]]]:
    out = tmp_path / "out"
    code = cli_main([*argv[:argv.index("bench") + 1], *TINY, "--out", str(out), "--workdir", str(tmp_path / "w"),
                     *argv[argv.index("bench") + 1:]])
    return code, report.load(out / "results.jsonl")


def _measured(records: list[dict[str, Any]]) -> set[str]:
    return {r["store"] for r in records if r["kind"] == "summary" and r["scenario"] == "store"}


def test_global_config_and_store_reach_the_bench(tmp_path: Path, config: Path) -> None:
    code, records = _bench(tmp_path, ["--config", str(config), "--store", "cfgmem", "bench"])
    assert [r for r in records if r["kind"] == "skip" and "no such store" in r["reason"]] == []
    assert code == 0
    assert _measured(records) == {"cfgmem"}  # only the configured store, picked by the global --store


def test_global_config_with_the_bench_store_option(tmp_path: Path, config: Path) -> None:
    code, records = _bench(tmp_path, ["--config", str(config), "bench", "--store", "cfgmem"])
    assert code == 0 and _measured(records) == {"cfgmem"}


def test_two_different_config_files_are_a_usage_error(tmp_path: Path, config: Path,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    other = tmp_path / "other.toml"
    other.write_text(config.read_text())
    assert cli_main(["--config", str(config), "bench", "--config", str(other), "--store", "cfgmem"]) == 2
    assert "--config" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_bench_config_alias_is_kept() -> None:
    import argparse

    from imagestore.cli import bench_argv

    ns = argparse.Namespace(config="a.toml", store=None, args=["--", "--config=a.toml", "--quick"])
    assert bench_argv(ns) == ["--config=a.toml", "--quick"]
    ns = argparse.Namespace(config=None, store=None, args=["--config", "b.toml"])
    assert bench_argv(ns) == ["--config", "b.toml"]
    ns = argparse.Namespace(config="c.toml", store="s", args=[])
    assert bench_argv(ns) == ["--config", "c.toml", "--store", "s"]
