"""One rule for every real service: with IMAGESTORE_REQUIRE_SERVICES=1 a missing
service fails the test; without it the test is skipped with the reason."""

from __future__ import annotations

import os

import pytest

__all__ = ["require_services", "unavailable"]


def require_services() -> bool:
    """Whether CI demands every real service (``IMAGESTORE_REQUIRE_SERVICES=1``)."""
    return os.environ.get("IMAGESTORE_REQUIRE_SERVICES", "") not in ("", "0")


def unavailable(what: str, why: str) -> None:
    """Fail (in CI) or skip (on a developer's machine) because ``what`` cannot run."""
    message = f"{what} is unavailable: {why}"
    if require_services():
        pytest.fail(message, pytrace=False)
    pytest.skip(message)
