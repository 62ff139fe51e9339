"""The JSON forms of the result types carry every field (the CLI's --json prints them)."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

from imagestore import CloneResult, ImageInfo, Location
from imagestore.drivers import SweepReport

LOC = Location("file", "", ("var", "lib", "images", "c0ffee"), store="images")
RESULTS: list[Any] = [
    ImageInfo(LOC, 1 << 20, {"sha512": "ab" * 64}, "raw", 1 << 20),
    CloneResult(LOC, "cow", depth=2),
    SweepReport(removed=3, bytes_freed=4096),
]


@pytest.mark.parametrize("result", RESULTS, ids=lambda r: type(r).__name__)
def test_to_dict_has_every_field(result: Any) -> None:
    out = result.to_dict()
    fields = {f.name for f in dataclasses.fields(result)}
    assert fields <= set(out), sorted(fields - set(out))
    for name in fields:  # the values, not only the keys
        value = getattr(result, name)
        assert out[name] == (str(value) if isinstance(value, Location) else value), name
