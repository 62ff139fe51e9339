"""Shared pytest set-up: every fixture module under tests/services/ is a plugin.

Each real service (XFS mount, Ceph, Swift, S3 servers, Glance, the fault
proxy) has one module there; ``require.py`` (the require-services switch) and
``ports.py`` (free ports) are plain modules, not plugins.
"""

from pathlib import Path

from hypothesis import settings

# no property test fails for being slow on a loaded machine: no per-example deadline
settings.register_profile("imagestore", deadline=None)
settings.load_profile("imagestore")

_SERVICES = Path(__file__).parent / "services"
pytest_plugins = sorted(
    f"tests.services.{p.stem}"
    for p in _SERVICES.glob("*.py")
    if p.stem not in ("__init__", "require", "ports") and not p.stem.startswith("test_")
)
