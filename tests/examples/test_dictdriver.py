"""The README's example driver (examples/dictdriver.py) through the shipped conformance suite,
declared exactly as the README shows; and the README's blocks are these files, verbatim."""

from __future__ import annotations

import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "examples"))  # where a driver author's package would be importable

# <!-- driver-conformance -->
import uuid

import pytest

import imagestore
from dictdriver import DictDriver
from imagestore.testing.backends import Backend
from imagestore.testing.conformance import ConformanceSuite


class DictBackend(Backend):
    """Stores of DictDriver, and what they MUST probe as (every field of Capabilities)."""

    capabilities = imagestore.Capabilities(persistent=False).to_dict()

    def __init__(self) -> None:
        self.tag = uuid.uuid4().hex[:8]  # a fresh dict per test

    def table(self, store: str) -> dict:
        return {"driver": DictDriver, "label": f"{self.tag}-{store}"}

    def corrupt(self, location, offset: int) -> None:  # flip a stored byte behind the store's back
        images = DictDriver.IMAGES[f"{self.tag}-images"]
        data, meta = images[location.image]
        images[location.image] = (data[:offset] + bytes([data[offset] ^ 0xFF]) + data[offset + 1:], meta)


class TestDictDriver(ConformanceSuite):
    @pytest.fixture
    def backend(self) -> Backend:
        return DictBackend()
# <!-- end driver-conformance -->


def _block_after(marker: str) -> str:
    match = re.search(re.escape(marker) + r"\s*```python\n(.*?)```", (ROOT / "README.md").read_text(), re.S)
    assert match, f"no python block after {marker} in the README"
    return match.group(1)


def test_readme_driver_is_the_example_file() -> None:
    assert _block_after("<!-- driver-example -->") == (ROOT / "examples" / "dictdriver.py").read_text()


def test_readme_conformance_class_is_this_module() -> None:
    text = Path(__file__).read_text()
    declared = text.split("# <!-- driver-conformance -->\n", 1)[1].split("# <!-- end driver-conformance -->", 1)[0]
    assert _block_after("<!-- driver-conformance -->") == declared
