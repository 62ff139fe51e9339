"""The conformance suite every driver runs, shipped so a third-party driver runs it too
(fsspec's ``tests/abstract``, rclone's ``fstests``). A driver passes by declaring one class::

    import pytest
    from imagestore.testing.backends import Backend
    from imagestore.testing.conformance import ConformanceSuite

    class MyBackend(Backend):
        capabilities = {...}            # every field of imagestore.Capabilities: what it MUST probe as
        def table(self, store): return {"driver": MyDriver, "label": store}

    class TestMyDriver(ConformanceSuite):
        @pytest.fixture
        def backend(self): return MyBackend()

The backend also flips a stored byte on demand (``Backend.corrupt``, with the backend's own
tools) for the integrity and scrub tests.

No test is skipped and none returns early for lack of a feature: the backend declares
what its stores can do, the suite checks that the probe agrees, tests what is declared,
and checks that what is not declared is refused with ``Unsupported``. One module per
operation; each mixin (``AddTests``, ``CloneTests``, ...) also runs on its own.
Needs pytest only: ``pip install 'imagestore[testing]'``.
"""

from __future__ import annotations

try:
    import pytest  # noqa: F401 - the suite is pytest classes
except ImportError as exc:  # pragma: no cover - depends on the installation
    raise ImportError("imagestore.testing.conformance needs pytest: pip install 'imagestore[testing]'") from exc

from .add import AddTests
from .backfill import BackfillTests
from .base import MiB, SuiteBase, assert_expires, qemu_img
from .capabilities import CapabilityTests
from .clone import CloneTests
from .consumer import ConsumerTests
from .delete import DeleteTests
from .errors import ErrorTests
from .formats import FormatTests
from .integrity import IntegrityTests, ScrubTests
from .locate import LocateTests
from .publish import PublishTests
from .read import ReadTests
from .readonly import ReadOnlySuite
from .sweep import SweepTests

__all__ = ["AddTests", "BackfillTests", "CapabilityTests", "CloneTests", "ConformanceSuite", "ConsumerTests", "DeleteTests",
           "ErrorTests", "FormatTests", "IntegrityTests", "LocateTests", "MiB", "PublishTests", "ReadOnlySuite",
           "ReadTests", "ScrubTests", "SuiteBase", "SweepTests", "assert_expires", "qemu_img"]


class ConformanceSuite(ConsumerTests, AddTests, ReadTests, IntegrityTests, ScrubTests, BackfillTests, PublishTests,
                       SweepTests,
                       DeleteTests, CloneTests, LocateTests, FormatTests, ErrorTests, CapabilityTests):
    """Behaviour every store must have; a driver's test class provides the ``backend`` fixture."""
