"""Fixtures of the Swift driver tests: a test's own containers on the session SAIO.

Without python-swiftclient (a venv without the ``swift`` extra) only test_optional.py is
collected here: the other modules import the driver, which needs it, and
test_optional.py reports the missing extra (a failure under IMAGESTORE_REQUIRE_SERVICES).
"""

from __future__ import annotations

import hashlib
import importlib.util
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.services.swift import SwiftSAIO

from .area import SwiftArea
from .keystone import keystone_swift  # noqa: F401 - the session fixture of the Keystone tests

HAVE_SWIFTCLIENT = importlib.util.find_spec("swiftclient") is not None
collect_ignore = [] if HAVE_SWIFTCLIENT else sorted(
    p.name for p in Path(__file__).parent.glob("test_*.py") if p.name != "test_optional.py")


@pytest.fixture
def area(swift_saio: SwiftSAIO) -> Iterator[SwiftArea]:
    """Fresh containers in AUTH_test2 for this test (removed afterwards)."""
    a = SwiftArea(swift_saio)
    try:
        yield a
    finally:
        a.clean()


def forget_token(saio: SwiftSAIO, token: str) -> None:
    """Make tempauth forget a token, as when it expires: drop it from memcached.

    tempauth keeps ``AUTH_/token/TOKEN`` in memcached (Swift's memcache client stores
    the key's md5); a token it cannot find there gets 401, and the next ``/auth/v1.0``
    hands out a new one.
    """
    key = hashlib.md5(f"AUTH_/token/{token}".encode()).hexdigest()
    with socket.create_connection(("127.0.0.1", saio.memcached_port), timeout=10) as sock:
        sock.sendall(f"delete {key}\r\n".encode())
        reply = sock.recv(64)
    assert reply.startswith(b"DELETED"), reply
