"""The README's examples run as written."""

from __future__ import annotations

import re
from pathlib import Path

README = Path(__file__).resolve().parents[2] / "README.md"


def _block_after(marker: str) -> str:
    text = README.read_text()
    match = re.search(re.escape(marker) + r"\s*```python\n(.*?)```", text, re.S)
    assert match, f"no python block after {marker} in the README"
    return match.group(1)


def test_write_your_own_driver_example_runs() -> None:
    code = _block_after("<!-- driver-example -->")
    namespace: dict[str, object] = {"__name__": "__main__"}  # the block is examples/dictdriver.py, run as a script
    exec(compile(code, "README.md:driver-example", "exec"), namespace)  # noqa: S102 - our own README
    store = namespace["store"]
    import imagestore

    assert isinstance(store, imagestore.Store)
    assert store.capabilities.persistent is False
    names = sorted(store._driver.images)  # type: ignore[attr-defined]
    tables = [n for n in names if n.startswith("imagestore-blocks-")]
    assert [n for n in names if n not in tables] == ["copy", "hello"]
    assert len(tables) == 2  # both images are over a block: each has its block table beside it
