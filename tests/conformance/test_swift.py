"""The conformance suite on a real Swift (the session SAIO of tests/services/swift.py).

Two layouts: 1 MiB segments (nearly every image of the suite is then an SLO of several
segments) and Swift's usual sizes (32 MiB segments: the suite's images are plain objects).
"""

from __future__ import annotations

import importlib.util
from collections.abc import Iterator
from typing import Any

import pytest

from tests.services.require import unavailable
from tests.services.swift import SwiftSAIO
from tests.swift.area import SwiftArea

from .suite import SERVER_LIMIT, Backend, ConformanceSuite


class SwiftBackend(Backend):
    """Stores on containers of AUTH_test2 (sibling: another container of the same account)."""

    native_clone_mode = "server_copy"
    clones_depend_on_source = False
    # a Temp-URL key is configured: locate() gives TempURLs; the largest SLO follows the SAIO's /info
    capabilities = {"write": True, "range_read": True, "cow_clone": False, "server_copy": True,
                    "direct_access": True, "presign": True, "atomic_create": True, "unknown_size": True,
                    "deferred_delete": False, "persistent": True, "adopt": False, "max_object_size": SERVER_LIMIT}

    def __init__(self, area: SwiftArea) -> None:
        self.area = area

    def spec(self) -> dict[str, Any]:
        return self.area.spec("main")

    def sibling_spec(self) -> dict[str, Any]:
        return self.area.spec("sibling")

    def secrets(self) -> list[str]:
        """The account key and the Temp-URL key: neither may show up in any output."""
        return [self.area.saio.key2, self.area.tempurl_key]

    def leftovers(self) -> list[str]:
        return self.area.leftovers()


def _area(saio: SwiftSAIO, **defaults: Any) -> SwiftArea:
    if importlib.util.find_spec("swiftclient") is None:
        unavailable("python-swiftclient", "the Swift driver needs it (pip install 'imagestore[swift]')")
    return SwiftArea(saio, **defaults)


class TestSwiftSegmented(ConformanceSuite):
    """1 MiB segments: images over 1 MiB are SLOs, smaller ones plain objects."""

    @pytest.fixture
    def backend(self, swift_saio: SwiftSAIO) -> Iterator[Backend]:
        area = _area(swift_saio)
        try:
            yield SwiftBackend(area)
        finally:
            area.clean()


class TestSwiftPlain(ConformanceSuite):
    """Swift's usual sizes (32 MiB segments): the suite's images are single PUTs."""

    @pytest.fixture
    def backend(self, swift_saio: SwiftSAIO) -> Iterator[Backend]:
        area = _area(swift_saio, segment_size="32M")
        try:
            yield SwiftBackend(area)
        finally:
            area.clean()
