"""The Stores registry: membership without opening, and one missing driver dependency
that breaks only its own store."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from stevedore import ExtensionManager

import imagestore
from imagestore.store import ENTRY_POINT_GROUP


@pytest.fixture
def needs_missing_dep(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """A third-party driver whose optional dependency is not installed."""
    dist = tmp_path / "needsdep_driver-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: needsdep-driver\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text("[imagestore.drivers]\nneedsdep = needsdep_driver:Driver\n")
    (tmp_path / "needsdep_driver.py").write_text("import a_dependency_that_is_not_installed\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    ExtensionManager.ENTRY_POINT_CACHE.pop(ENTRY_POINT_GROUP, None)
    yield
    ExtensionManager.ENTRY_POINT_CACHE.pop(ENTRY_POINT_GROUP, None)
    sys.modules.pop("needsdep_driver", None)


def test_a_missing_dependency_breaks_only_its_store(needs_missing_dep: None, tmp_path: Path) -> None:
    stores = imagestore.Stores({"default": "local", "stores": {
        "local": {"driver": "file", "root": str(tmp_path / "r")},
        "other": {"driver": "needsdep", "anything": 1},
    }})
    assert "other" in stores and "nowhere" not in stores
    assert stores.driver_name("other") == "needsdep"
    assert stores.default.add("img", b"abc", 3).size == 3
    with pytest.raises(imagestore.DriverNotInstalled) as err:
        stores["other"]
    assert "needsdep" in str(err.value) and "'other'" in str(err.value)


def test_membership_does_not_open_the_store(tmp_path: Path) -> None:
    root = tmp_path / "never-made"
    stores = imagestore.Stores({"stores": {"a": {"driver": "file", "root": str(root)}}})
    assert "a" in stores and not root.exists()
    stores["a"]
    assert root.is_dir()
