"""Part sizes: equal parts for a known size, growing parts for an unknown one (so a stream of
unknown size reaches S3's 5 TiB within 10,000 parts), as sent on the wire."""

from __future__ import annotations

import re

import pytest

from imagestore import ConfigError
from imagestore.drivers.s3 import MAX_OBJECT, MAX_PARTS, S3Driver
from tests.services.faultproxy import FaultProxyFactory
from tests.services.s3 import S3Server

from .conftest import MiB, Opener, payload

GiB = 1 << 30


def driver(**options: object) -> S3Driver:
    return S3Driver("parts", bucket="b", endpoint="http://127.0.0.1:1", **options)  # type: ignore[arg-type]


@pytest.mark.parametrize("part_size", ["5M", "8M", "16M", "64M", "1G", "5G"])
def test_unknown_size_reaches_5_tib_within_10000_parts(part_size: str) -> None:
    sizes = driver(part_size=part_size).part_sizes(None)
    assert sizes.max_parts == MAX_PARTS
    capacity = sizes.capacity()
    assert capacity is not None and capacity >= MAX_OBJECT
    assert sizes.size_of(0) == driver(part_size=part_size).part_size
    assert max(sizes.size_of(i) for i in range(MAX_PARTS)) <= 5 * GiB


def test_default_parts_stay_small_for_ordinary_images() -> None:
    """16 MiB parts until the image is past 10 GiB: memory stays concurrency x 16 MiB."""
    sizes = driver().part_sizes(None)
    small = 0
    while sizes.size_of(small) == 16 * MiB:
        small += 1
    assert small * 16 * MiB > 10 * GiB


def test_known_size_parts_are_equal_and_fit() -> None:
    d = driver()
    assert d.part_sizes(100 * MiB).size_of(0) == 16 * MiB
    five_tib = d.part_sizes(MAX_OBJECT)
    assert five_tib.size_of(0) == five_tib.size_of(9_999) and five_tib.capacity() >= MAX_OBJECT  # type: ignore[operator]


def test_strict_part_size_never_grows() -> None:
    sizes = driver(part_size="8M", strict_part_size=True).part_sizes(None)
    assert {sizes.size_of(i) for i in (0, 1, 500, 9_999)} == {8 * MiB}
    assert sizes.capacity() == MAX_PARTS * 8 * MiB


def test_growth_too_slow_for_5_tib_is_a_config_error() -> None:
    with pytest.raises(ConfigError) as err:
        driver(part_size="5M", part_growth_every=5000)
    assert err.value.key == "stores.parts.part_growth_every"
    for key, value in (("part_size", "1M"), ("part_size", "6G"), ("copy_part_size", "1M"),
                       ("single_put_threshold", "6G")):
        with pytest.raises(ConfigError) as err:
            driver(**{key: value})
        assert err.value.key == f"stores.parts.{key}"


def _part_lengths(proxy_log: list, key_part: str) -> list[int]:  # type: ignore[type-arg]
    """Content-Length of each UploadPart of keys containing ``key_part``, by part number."""
    parts = {}
    for r in proxy_log:
        m = re.search(r"partNumber=(\d+)", r.query)
        if r.method == "PUT" and m and key_part in r.path and r.status == 200:
            parts[int(m.group(1))] = int(r.headers["content-length"])
    return [parts[n] for n in sorted(parts)]


def test_parts_grow_on_the_wire(open_s3: Opener, s3_server: S3Server, fault_proxy: FaultProxyFactory) -> None:
    """part_size 5M doubling every 2 parts: 5, 5, 10, 10, 20 MiB and the rest (52 MiB in all)."""
    proxy = fault_proxy(s3_server)
    store = open_s3(endpoint=proxy.endpoint, part_size="5M", part_growth_every=2, auto_sweep=False)
    data = payload(52 * MiB, seed=3)
    info = store.add("growing", iter([data[i:i + MiB] for i in range(0, len(data), MiB)]))
    assert _part_lengths(proxy.log, "/growing/") == [5 * MiB, 5 * MiB, 10 * MiB, 10 * MiB, 20 * MiB, 2 * MiB]
    assert store.get(info.location) == data


def test_strict_parts_on_the_wire(open_s3: Opener, s3_server: S3Server, fault_proxy: FaultProxyFactory) -> None:
    proxy = fault_proxy(s3_server)
    store = open_s3(endpoint=proxy.endpoint, part_size="5M", strict_part_size=True, auto_sweep=False)
    data = payload(23 * MiB, seed=4)
    store.add("equal", iter([data[i:i + 3 * MiB] for i in range(0, len(data), 3 * MiB)]))
    assert _part_lengths(proxy.log, "/equal/") == [5 * MiB] * 4 + [3 * MiB]
