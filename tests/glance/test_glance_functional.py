"""Glance's own multi-store functional tests (TestImagesMultipleBackend) with imagestore backends,
every test five rounds in a row, in the Glance virtualenv (glance_functional.py).

Glance's test dependencies (testtools, oslotest, fixtures...) are installed into
that virtualenv from PyPI the first time, pinned. Each Glance test is reported
here as its own test, failing with Glance's traceback for any round that failed.
"""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest

RUNNER = Path(__file__).with_name("glance_functional.py")
ROUNDS = 5
TEST_DEPS = ["testtools==2.9.1", "oslotest==6.1.1", "fixtures==4.3.2", "testscenarios==0.7.0",
             "testresources==2.1.2", "ddt==1.7.2"]
"""What glance/tests/functional imports beyond Glance's own requirements."""


def _site_packages(venv: str) -> Path:
    out = subprocess.run([f"{venv}/bin/python", "-c", "import glance, os; print(os.path.dirname(glance.__path__[0]))"],
                         capture_output=True, text=True, timeout=120, check=True)
    return Path(out.stdout.strip())


def _glance_tests(venv: str) -> list[str]:
    """The test methods of Glance's TestImagesMultipleBackend, read from its source."""
    source = _site_packages(venv) / "glance/tests/functional/v2/test_multi_store_images.py"
    return re.findall(r"^    def (test_\w+)\(self\)", source.read_text(), re.M)


@pytest.fixture(scope="module")
def functional_venv(glance_venv: str) -> str:
    """The Glance virtualenv, with Glance's functional-test dependencies."""
    probe = [f"{glance_venv}/bin/python", "-c", "import testtools, oslotest, fixtures, testscenarios, ddt"]
    if subprocess.run(probe, capture_output=True, timeout=120).returncode != 0:
        pip = subprocess.run([f"{glance_venv}/bin/python", "-m", "pip", "install", "-q",
                              "--disable-pip-version-check", *TEST_DEPS], capture_output=True, text=True, timeout=900)
        assert pip.returncode == 0, f"pip install {TEST_DEPS}: {pip.stderr[-3000:]}"
    return glance_venv


@pytest.fixture(scope="module")
def results(functional_venv: str, tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict[str, Any]]:
    """``{"test#round": outcome}`` of ROUNDS rounds of every Glance multi-store test, imagestore backends."""
    work = tmp_path_factory.mktemp("glance-functional")
    (work / "glance/tests").mkdir(parents=True)  # Glance's tests copy data files from ./glance/tests/etc
    (work / "glance/tests/etc").symlink_to(_site_packages(functional_venv) / "glance/tests/etc")
    out = work / "results.json"
    proc = subprocess.run([f"{functional_venv}/bin/python", str(RUNNER), str(out), str(ROUNDS),
                           *_glance_tests(functional_venv)], cwd=work, capture_output=True, text=True, timeout=3000)
    assert proc.returncode == 0 and out.exists(), \
        f"glance_functional.py exited {proc.returncode}:\n{proc.stderr[-4000:]}"
    return json.loads(out.read_text())  # type: ignore[no-any-return]


def test_every_test_ran_every_round(results: dict[str, dict[str, Any]], glance_venv: str) -> None:
    names = _glance_tests(glance_venv)
    assert "test_image_import_multi_stores_specifying_all_stores" in names
    assert sorted(results) == sorted(f"{n}#{r}" for n in names for r in range(1, ROUNDS + 1))


@pytest.mark.parametrize("round_", range(1, ROUNDS + 1))
def test_multi_store_import_specifying_all_stores(results: dict[str, dict[str, Any]], round_: int) -> None:
    result = results[f"test_image_import_multi_stores_specifying_all_stores#{round_}"]
    assert result["outcome"] == "passed", result["detail"]


def test_every_other_multi_store_test_passes_every_round(results: dict[str, dict[str, Any]]) -> None:
    failed = {key: value["detail"][-2000:] for key, value in results.items() if value["outcome"] != "passed"}
    assert not failed, "\n\n".join(f"{key}:\n{detail}" for key, detail in failed.items())
