"""Driver discovery through the ``imagestore.drivers`` entry points, and install hints."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest
from stevedore import ExtensionManager

import imagestore
from imagestore import ConfigError
from imagestore.store import ENTRY_POINT_GROUP, installed_drivers, load_driver_class


@pytest.fixture
def plugin_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A third-party distribution on sys.path with one driver."""
    dist = tmp_path / "thirdparty_driver-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: thirdparty-driver\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text(textwrap.dedent("""
        [imagestore.drivers]
        thirdparty = thirdparty_driver:ThirdParty
    """))
    (tmp_path / "thirdparty_driver.py").write_text(textwrap.dedent("""
        from imagestore.drivers.memory import MemoryDriver
        class ThirdParty(MemoryDriver):
            '''A backend shipped by another package.'''
    """))
    monkeypatch.syspath_prepend(str(tmp_path))
    ExtensionManager.ENTRY_POINT_CACHE.pop(ENTRY_POINT_GROUP, None)  # stevedore caches per process
    yield tmp_path
    ExtensionManager.ENTRY_POINT_CACHE.pop(ENTRY_POINT_GROUP, None)
    sys.modules.pop("thirdparty_driver", None)


def test_third_party_driver_is_loaded(plugin_dir: Path) -> None:
    assert {"file", "memory", "rbd", "thirdparty"} <= set(installed_drivers())
    store = imagestore.open_store({"driver": "thirdparty"}, "tp")
    info = store.add("x", b"abc", 3)
    assert store.get(info.location) == b"abc"


def test_missing_dependency_names_the_extra() -> None:
    """The real s3 driver, loaded by a process where boto3 cannot be imported (as if the
    ``s3`` extra were not installed): DriverNotInstalled, naming the extra."""
    code = textwrap.dedent("""
        import sys
        sys.modules["boto3"] = sys.modules["botocore"] = None  # "import boto3" now raises ImportError
        from imagestore import DriverNotInstalled
        from imagestore.store import installed_drivers, load_driver_class
        assert "s3" in installed_drivers(), installed_drivers()
        try:
            load_driver_class("s3")
        except DriverNotInstalled as exc:
            print(type(exc).__name__, exc)
        else:
            raise SystemExit("the s3 driver loaded without boto3")
    """)
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("DriverNotInstalled ") and "pip install 'imagestore[s3]'" in proc.stdout
    assert load_driver_class("s3").__name__ == "S3Driver"  # here, with boto3, it loads


def test_unknown_driver_lists_installed() -> None:
    with pytest.raises(ConfigError) as err:
        load_driver_class("nosuch", key="stores.x.driver")
    assert "installed drivers:" in str(err.value) and "file" in str(err.value)
    assert err.value.key == "stores.x.driver"
