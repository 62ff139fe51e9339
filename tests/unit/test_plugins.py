"""Driver discovery through the ``imagestore.drivers`` entry points, and install hints."""

from __future__ import annotations

import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest
from stevedore import ExtensionManager

import imagestore
from imagestore import ConfigError, DriverNotInstalled
from imagestore.stores import ENTRY_POINT_GROUP, installed_drivers, load_driver_class


@pytest.fixture
def plugin_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A third-party distribution on sys.path: one working driver and one with a missing dependency."""
    dist = tmp_path / "thirdparty_driver-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: thirdparty-driver\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text(textwrap.dedent("""
        [imagestore.drivers]
        thirdparty = thirdparty_driver:ThirdParty
        s3 = thirdparty_missing_dep:S3
    """))
    (tmp_path / "thirdparty_driver.py").write_text(textwrap.dedent("""
        from imagestore.drivers.memory import MemoryDriver
        class ThirdParty(MemoryDriver):
            '''A backend shipped by another package.'''
    """))
    (tmp_path / "thirdparty_missing_dep.py").write_text("import boto3_not_installed_here\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    ExtensionManager.ENTRY_POINT_CACHE.pop(ENTRY_POINT_GROUP, None)  # stevedore caches per process
    yield tmp_path
    ExtensionManager.ENTRY_POINT_CACHE.pop(ENTRY_POINT_GROUP, None)
    for mod in ("thirdparty_driver", "thirdparty_missing_dep"):
        sys.modules.pop(mod, None)


def test_third_party_driver_is_loaded(plugin_dir: Path) -> None:
    assert {"file", "memory", "rbd", "thirdparty"} <= set(installed_drivers())
    store = imagestore.open_store({"driver": "thirdparty"}, "tp")
    info = store.add("x", b"abc", 3)
    assert store.get(info.location) == b"abc"


def test_missing_dependency_names_the_extra(plugin_dir: Path) -> None:
    with pytest.raises(DriverNotInstalled) as err:
        load_driver_class("s3")
    assert "pip install 'imagestore[s3]'" in str(err.value)


def test_unknown_driver_lists_installed() -> None:
    with pytest.raises(ConfigError) as err:
        load_driver_class("nosuch", key="stores.x.driver")
    assert "installed drivers:" in str(err.value) and "file" in str(err.value)
    assert err.value.key == "stores.x.driver"
