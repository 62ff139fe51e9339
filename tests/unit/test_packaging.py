"""The wheel carries every package of the source tree (``pip install .`` is not editable)."""

from __future__ import annotations

import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_every_package_is_listed_in_pyproject() -> None:
    listed = set(tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"])
    src = ROOT / "src"
    found = {".".join(init.parent.relative_to(src).parts) for init in src.rglob("__init__.py")}
    assert found, "no package found under src/"
    assert found - listed == set(), "packages missing from pyproject's packages list"
    assert {p for p in listed - found if not p.startswith("imagestore_bench")} == set(), "listed but absent"


def test_every_harness_package_is_listed_in_pyproject() -> None:
    """``imagestore_bench`` (benchmarks/) and each of its folders are in the wheel."""
    listed = set(tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"])
    bench = ROOT / "benchmarks"
    found = {".".join(("imagestore_bench", *init.parent.relative_to(bench).parts))
             for init in bench.rglob("__init__.py")}
    assert {"imagestore_bench", "imagestore_bench.scenarios"} <= found
    assert found == {p for p in listed if p.startswith("imagestore_bench")}
