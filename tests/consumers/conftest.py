"""Shared helpers of the compute and volume consumer tests: stores on the real services."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest

import imagestore
from imagestore import Store
from imagestore.testing.payloads import payload
from tests.conformance.conftest import qcow2_plain, qcow2_with_backing  # noqa: F401 - shared fixtures

MiB = 1 << 20


data_of = payload  # deterministic incompressible bytes: no all-zero object unless asked


class Opened:
    """Opens stores for one test and closes them at its end."""

    def __init__(self) -> None:
        self.stores: list[Store] = []

    def __call__(self, spec: dict[str, Any], name: str) -> Store:
        store = imagestore.open_store(spec, name)
        self.stores.append(store)
        return store

    def close(self) -> None:
        for store in self.stores:
            store.close()


@pytest.fixture
def opened() -> Iterator[Opened]:
    o = Opened()
    yield o
    o.close()


@pytest.fixture
def image_id() -> str:
    return f"img-{uuid.uuid4().hex[:12]}"
