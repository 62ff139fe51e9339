"""The glance_store driver's unit tests (driver_cases.py), run in the Glance virtualenv.

glance_store and oslo.config live only in that virtualenv, so its python runs
every case of driver_cases.py in one subprocess; each case is reported here as
its own test, with the case's traceback when it fails. The case names are read
from the file's syntax tree, so this module imports nothing of glance_store.
"""

from __future__ import annotations

import ast
import json
import subprocess
from pathlib import Path
from typing import Any

import pytest

CASES = Path(__file__).with_name("driver_cases.py")
REPO = Path(__file__).resolve().parents[2]


def _case_names() -> list[str]:
    """``Class.test_method`` of every test method in driver_cases.py."""
    names = []
    for node in ast.parse(CASES.read_text()).body:
        if isinstance(node, ast.ClassDef):
            names += [f"{node.name}.{item.name}" for item in node.body
                      if isinstance(item, ast.FunctionDef) and item.name.startswith("test_")]
    return names


@pytest.fixture(scope="module")
def results(glance_venv: str, tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict[str, Any]]:
    """Every case's outcome, from one run of driver_cases.py by the Glance virtualenv's python."""
    out = tmp_path_factory.mktemp("driver-cases") / "results.json"
    proc = subprocess.run([f"{glance_venv}/bin/python", str(CASES), str(out)], cwd=REPO,
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0 and out.exists(), f"driver_cases.py exited {proc.returncode}:\n{proc.stderr[-4000:]}"
    raw = json.loads(out.read_text())
    return {key.split(".", 1)[1]: value for key, value in raw.items()}  # drop the "__main__." module part


def test_every_case_ran(results: dict[str, dict[str, Any]]) -> None:
    assert sorted(results) == sorted(_case_names())


@pytest.mark.parametrize("case", _case_names())
def test_case(results: dict[str, dict[str, Any]], case: str) -> None:
    result = results.get(case)
    assert result is not None, f"{case} did not run"
    assert result["outcome"] == "passed", f"{case} {result['outcome']}:\n{result['detail']}"
