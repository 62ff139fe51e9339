"""The conformance suite on a real Swift (the session SAIO of tests/services/swift.py).

Two layouts: 1 MiB segments (nearly every image of the suite is then an SLO of several
segments) and Swift's usual sizes (32 MiB segments: the suite's images are plain objects).
"""

from __future__ import annotations

import importlib.util
import uuid
from collections.abc import Iterator

import pytest

from imagestore.testing.backends import Backend, SwiftBackend
from imagestore.testing.conformance import ConformanceSuite
from tests.services.require import unavailable
from tests.services.swift import SwiftSAIO
from tests.swift.area import tempurl_key


def swift_backend(saio: SwiftSAIO, segment_size: str) -> Iterator[SwiftBackend]:
    """Stores on containers of AUTH_test2 with the session's Temp-URL key (locate() gives
    TempURLs; the largest SLO follows the SAIO's /info); removed afterwards."""
    if importlib.util.find_spec("swiftclient") is None:
        unavailable("python-swiftclient", "the Swift driver needs it (pip install 'imagestore[swift]')")
    backend = SwiftBackend(saio.auth_url, saio.user2, saio.key2, base=f"t-{uuid.uuid4().hex[:8]}",
                           temp_url_key=tempurl_key(saio), segment_size=segment_size, lease=15.0)
    try:
        yield backend
    finally:
        backend.close()


class TestSwiftSegmented(ConformanceSuite):
    """1 MiB segments: images over 1 MiB are SLOs, smaller ones plain objects."""

    @pytest.fixture
    def backend(self, swift_saio: SwiftSAIO) -> Iterator[Backend]:
        yield from swift_backend(swift_saio, "1M")


class TestSwiftPlain(ConformanceSuite):
    """Swift's usual sizes (32 MiB segments): the suite's images are single PUTs."""

    @pytest.fixture
    def backend(self, swift_saio: SwiftSAIO) -> Iterator[Backend]:
        yield from swift_backend(swift_saio, "32M")
