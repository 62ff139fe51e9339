"""Segment sizes grow so that the cluster's SLO limits still reach its largest object, on
SAIOs of their own with small limits (4 MiB objects, 6 segments; a 2 KiB manifest)."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator

import pytest

import imagestore
from imagestore import ImageTooLarge
from imagestore.drivers.swift import SwiftDriver
from imagestore.testing.payloads import chunks, payload
from tests.services.swift import SwiftSAIO, SwiftSAIOFactory

from .area import MiB, SwiftArea


@pytest.fixture(scope="module")
def small_saio(swift_saio_factory: SwiftSAIOFactory) -> Iterator[SwiftSAIO]:
    saio = swift_saio_factory(constraints={"max_file_size": 4 * MiB}, max_manifest_segments=6)
    yield saio
    swift_saio_factory.stop(saio)


@pytest.fixture
def small_area(small_saio: SwiftSAIO) -> Iterator[SwiftArea]:
    a = SwiftArea(small_saio)
    try:
        yield a
    finally:
        a.clean()


def test_sizes_double_up_to_the_cluster_limits(small_area: SwiftArea) -> None:
    store = small_area.store(segment_size="1M")
    driver = store._driver
    assert isinstance(driver, SwiftDriver)
    assert (driver.max_file_size, driver.max_parts) == (4 * MiB, 6)
    sizes = [driver.part_sizes("grown").size_of(i) for i in range(6)]
    assert sizes == [MiB, MiB, 2 * MiB, 2 * MiB, 4 * MiB, 4 * MiB]
    limit = store.capabilities.max_object_size
    assert limit == sum(sizes) == 14 * MiB
    data = payload(limit, seed=1)
    info = store.add("grown", chunks(data, 700_001))  # unknown size, right up to the limit
    body = small_area.conn.get_object(small_area.container(), "grown", query_string="multipart-manifest=get")[1]
    assert [e["bytes"] for e in json.loads(body)] == sizes
    assert store.get(info.location) == data

    with pytest.raises(ImageTooLarge):  # one byte more, of unknown size: stopped while streaming
        store.add("too-big", chunks(payload(limit + 1, seed=2), 700_001))
    with pytest.raises(ImageTooLarge):  # declared: refused before any byte
        store.add("too-big", b"", limit + 1)
    with pytest.raises(imagestore.NotFound):
        store.stat("too-big")
    assert small_area.leftovers() == []


def test_threshold_and_segments_never_exceed_max_file_size(small_area: SwiftArea) -> None:
    store = small_area.store(segment_size="8M", large_object_threshold="16M")
    driver = store._driver
    assert isinstance(driver, SwiftDriver)
    assert driver.threshold == driver.first == driver.largest == 4 * MiB
    data = payload(4 * MiB + 1, seed=3)
    info = store.add("img", data, len(data))
    body = small_area.conn.get_object(small_area.container(), "img", query_string="multipart-manifest=get")[1]
    assert [e["bytes"] for e in json.loads(body)] == [4 * MiB, 1]
    assert store.get(info.location) == data


def test_the_manifest_size_limit_bounds_the_segment_count(swift_saio_factory: SwiftSAIOFactory) -> None:
    saio = swift_saio_factory(max_manifest_size=2048)
    area = SwiftArea(saio)
    try:
        store = area.store(segment_size="64K")
        driver = store._driver
        assert isinstance(driver, SwiftDriver)
        image = "m" * 255  # the longest id: the store's max_object_size is computed for it
        sizes = driver.part_sizes(image)
        parts = sizes.max_parts
        assert 1 < parts < 30  # a 2 KiB manifest holds that many entries of this store's names
        total = sum(sizes.size_of(i) for i in range(parts))
        assert store.capabilities.max_object_size == total
        data = os.urandom(total)
        store.add(image, chunks(data, 50_000))  # exactly as many segments as the manifest may list
        body = area.conn.get_object(area.container(), image, query_string="multipart-manifest=get")[1]
        assert len(json.loads(body)) == parts
        assert store.get(image) == data
        with pytest.raises(ImageTooLarge):
            store.add("n" * 255, chunks(os.urandom(total + 1), 50_000))
        assert area.leftovers() == []
    finally:
        area.clean()
        swift_saio_factory.stop(saio)
