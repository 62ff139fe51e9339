"""The harness's parts on their own: schema checks, percentiles, sizes, the noise guard, the timing loop."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import pytest
from imagestore_bench import schema
from imagestore_bench.figures import parse_size, size_label
from imagestore_bench.limits import LIMITS
from imagestore_bench.measure import latency_fields, percentile
from imagestore_bench.env.noise import NoiseGuard
from imagestore_bench.progress import Progress
from imagestore_bench.runner import Contender, Run
from imagestore_bench.report.targets import evaluate


class FakeClock:
    """A virtual ``time`` module: the harness's clocks read it and ``sleep`` advances it, so what a
    test asserts about measured seconds does not depend on how loaded the machine is."""

    def __init__(self) -> None:
        import time

        self.now = 1000.0
        self._real = time

    def perf_counter(self) -> float:
        return self.now

    monotonic = perf_counter

    def sleep(self, seconds: float) -> None:
        self.now += seconds

    def __getattr__(self, name: str) -> Any:
        return getattr(self._real, name)


def _run(tmp_path: Path) -> tuple[Run, io.StringIO]:
    buf = io.StringIO()
    return Run(workdir=tmp_path, out=buf, repeats=3, verbose=False, guard=NoiseGuard(wait_s=0, budget_s=0)), buf


def _record(tmp_path: Path) -> dict[str, Any]:
    run, buf = _run(tmp_path)
    run.compare("s", "file", 1000, [Contender("lim", lambda r: ((lambda: None), None), 1000, is_limit=True),
                                    Contender("op", lambda r: ((lambda: None), None), 1000, limit="lim")])
    return [json.loads(x) for x in buf.getvalue().splitlines() if '"summary"' in x and '"op": "op"' in x][0]


def test_a_good_record_validates_and_each_kind_of_fault_is_caught(tmp_path: Path) -> None:
    good = _record(tmp_path)
    assert schema.validate(good) == []
    for change, expect in (({"mb_s": "fast"}, "mb_s="), ({"noise": None}, "noise="), ({"zzz": 1}, "unknown field"),
                           ({"limit": None}, "ratio without a limit"), ({"kind": "what"}, "unknown kind")):
        assert any(expect in p for p in schema.validate({**good, **change})), change
    missing = dict(good)
    del missing["latency_p99_s"]
    assert "missing latency_p99_s" in schema.validate(missing)
    run = {**good, "kind": "run", "repeat": 0, "mb_s": good["mb_s"] * 2 if good["mb_s"] else 1.0}
    assert any("bytes/seconds" in p for p in schema.validate(run))
    assert schema.validate({"kind": "target", "id": "x", "description": "", "value": 1, "op": "=",
                            "threshold": 1, "met": True, "reason": ""}) == ["target op '='"]


def test_the_schema_table_names_every_field() -> None:
    table = schema.markdown_table()
    for name in schema.FIELDS:
        assert f"| `{name}` |" in table


def test_compare_interleaves_and_computes_ratios_from_best_repeats(tmp_path: Path,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    from imagestore_bench import measure

    clock = FakeClock()
    monkeypatch.setattr(measure, "time", clock)
    run, buf = _run(tmp_path)
    order: list[str] = []
    seconds = {"lim": iter([0.02, 0.01, 0.03]), "op": iter([0.04, 0.02, 0.05])}

    def contender(name: str) -> Any:
        def prepare(r: int) -> Any:
            delay = next(seconds[name])
            return (lambda: (order.append(name), clock.sleep(delay))), None
        return prepare

    got = run.compare("s", "file", 10_000_000, [Contender("lim", contender("lim"), 10_000_000, is_limit=True),
                                                 Contender("op", contender("op"), 10_000_000, limit="lim")])
    assert order == ["lim", "op", "op", "lim", "lim", "op"]
    lim, op = got["lim"], got["op"]
    assert op["limit"] == "lim" and op["limit_mb_s"] == lim["mb_s_max"]
    assert op["ratio"] == round(op["mb_s_max"] / lim["mb_s_max"], 4)
    assert op["ratio"] == 0.5  # best repeats: 0.02 s against 0.01 s
    assert lim["mb_s_min"] < lim["mb_s_median"] < lim["mb_s_max"]
    lines = [json.loads(x) for x in buf.getvalue().splitlines()]
    assert [x["kind"] for x in lines].count("run") == 6 and all(schema.validate(x) == [] for x in lines)


def test_a_failing_contender_is_a_skip_and_the_others_still_run(tmp_path: Path) -> None:
    run, buf = _run(tmp_path)

    def boom(r: int) -> Any:
        raise OSError("backend down")

    got = run.compare("s", "file", 1000, [Contender("bad", boom, 1000, is_limit=True),
                                          Contender("op", lambda r: ((lambda: None), None), 1000, limit="bad")])
    assert "bad" not in got and got["op"]["limit"] is None and got["op"]["ratio"] is None
    skips = [json.loads(x) for x in buf.getvalue().splitlines() if '"skip"' in x]
    assert skips and "backend down" in skips[0]["reason"] and run.failed


def test_percentiles() -> None:
    assert percentile([], 50) is None
    assert percentile([3.0], 99) == 3.0
    assert percentile([1.0, 2.0, 3.0, 4.0], 50) == 2.5
    assert percentile(list(map(float, range(101))), 99) == 99.0
    f = latency_fields([0.1, 0.2, 0.3])
    assert f["latency_n"] == 3 and f["latency_p50_s"] == 0.2 and f["latency_p99_s"] == pytest.approx(0.298)


def test_sizes_parse_and_print() -> None:
    assert parse_size("64M") == 64 << 20 and parse_size("2G") == 2 << 30 and parse_size("1.5GiB") == 3 << 29
    assert parse_size("4096") == 4096 and size_label(64 << 20) == "64M" and size_label(3 << 29) == "1.5G"
    for bad in ("", "G", "-1M", "1Q", "0"):
        with pytest.raises(ValueError):
            parse_size(bad)


def test_the_noise_guard_waits_no_longer_than_its_bounds(monkeypatch: pytest.MonkeyPatch) -> None:
    from imagestore_bench.env import noise as noise_module

    clock = FakeClock()
    monkeypatch.setattr(noise_module, "time", clock)
    g = NoiseGuard(wait_s=5.0, budget_s=0.0, quiet_cores=-1.0)  # never quiet, but no budget left
    t0 = clock.now
    g.before()
    assert clock.now - t0 == pytest.approx(0.05)  # one short sample, no wait
    noise = g.after()
    assert set(noise) >= {"load1", "other_cores", "other_cores_during", "waited_s", "quiet"}
    assert noise["quiet"] is False and g.summary()["steps"] == 1
    g = NoiseGuard(wait_s=0.6, budget_s=10.0, quiet_cores=-1.0)
    t0 = clock.now
    g.before()
    window = noise_module.WINDOW_S
    assert 0.6 <= clock.now - t0 < 0.6 + window and g.waited_s == pytest.approx(clock.now - t0)


def test_every_limit_a_backend_names_is_documented() -> None:
    from imagestore_bench import backends

    for cls in backends.KINDS.values():
        for name in (cls.ideal_limit, cls.raw_put_limit, cls.read_limit, cls.read_hashed_limit):
            assert name is None or name in LIMITS, (cls, name)
    assert backends.Backend.ideal_limit in LIMITS


def test_targets_fail_and_pass_on_synthetic_records(tmp_path: Path) -> None:
    base = _record(tmp_path)

    def rec(**kw: Any) -> dict[str, Any]:
        return {**base, "scenario": "store", "store": "f", "driver": "file", "concurrency": 1, **kw}

    records = [rec(op="ideal_add_file", scenario="limit", limit=None, ratio=None, size=1 << 30),
               rec(op="add_known", limit="ideal_add_file", ratio=0.95, size=1 << 30),
               rec(op="add_known", limit="ideal_add_file", ratio=0.5, size=2 << 30),
               rec(op="clone_cow", limit=None, ratio=None, size=1 << 30, seconds=0.01),
               rec(op="clone_cow", limit=None, ratio=None, size=8 << 30, seconds=0.03)]
    ts = {t["id"]: t for t in evaluate(records)}
    assert ts["file.add_vs_ideal.f.1G"]["met"] is True
    assert ts["file.add_vs_ideal.f.2G"]["met"] is False and "CPU-s/GiB" in ts["file.add_vs_ideal.f.2G"]["reason"]
    assert ts["clone_o1.f"]["value"] == 3.0 and ts["clone_o1.f"]["met"] is False


def test_the_plain_progress_bar_counts_steps() -> None:
    out = io.StringIO()
    p = Progress(3, stream=out)
    p.kind = "plain"
    p.step("a")
    p.step("b")
    p.note("hello")
    p.close()
    text = out.getvalue()
    assert "1/3" in text and "2/3" in text and "hello" in text
