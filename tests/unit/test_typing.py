"""The package's type hints hold: ``mypy`` with pyproject's strict settings over ``src/imagestore``
(a user of ``py.typed`` relies on them)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_the_package_type_checks_strictly(tmp_path: Path) -> None:
    proc = subprocess.run([sys.executable, "-m", "mypy", "--cache-dir", str(tmp_path / "cache"), "src/imagestore"],
                          cwd=ROOT, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, (proc.stdout[-6000:] + proc.stderr[-2000:])
    assert "Success: no issues found" in proc.stdout
