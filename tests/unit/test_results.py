"""The JSON forms of the public result types carry exactly their fields (the CLI's --json
prints them), JSON-ready, a nested result in its own form; every result type is defined in
``imagestore.results`` and still importable from its old home."""

from __future__ import annotations

import dataclasses
import enum
import inspect
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest

import imagestore
from imagestore import Location, results
from imagestore.results import (
    CacheEntry,
    CloneCheck,
    CloneRefusal,
    CloneResult,
    EvictReport,
    FormatVerdict,
    ImageInfo,
    Replica,
    RevalidateReport,
    ScrubReport,
    Scrubbed,
    SweepReport,
    VerifyReport,
)

LOC = Location("file", "", ("var", "lib", "images", "c0ffee"), store="images")
INFO = ImageInfo(LOC, 1 << 20, {"sha512": "ab" * 64}, "raw", 1 << 20, "cd" * 32)
RESULTS: list[Any] = [
    INFO,
    CloneResult(LOC, "cow", depth=2),
    CloneCheck(True, "stream", "verified stream copy (another S3 endpoint)", CloneRefusal.DIFFERENT_ENDPOINT),
    CloneCheck(True, "cow", "same Ceph cluster"),
    Replica(INFO, "server_copy", existing=False, depth=1),
    SweepReport(removed=3, bytes_freed=4096),
    ScrubReport(3, 3 << 20, ("b",), ("c",), (), "c"),
    Scrubbed("b", "corrupt", 1 << 20, "blake3", "blake3 of the bytes read is ..."),
    FormatVerdict("qcow2", False, ("backing file",), 1 << 30, None),
    CacheEntry("sha512-" + "ab" * 64, Path("/var/cache/x"), 10, 4096, "raw", 10, "images:c0ffee", "stream",
               1.5, 2.5, ("nova-1",)),
    EvictReport(("k1",), 4096, ("k2",)),
    VerifyReport(("k1",), ("k2",), ("k2",)),
    RevalidateReport(("k1",), {"k2": ("qed is not allowed",)}, ("k3",)),
]

#: Keys a JSON form adds beyond the fields: each a property of the class (never a hidden field).
DERIVED: dict[type, set[str]] = {ImageInfo: {"store"}}


def _json_form(value: Any) -> Any:
    """What a field value must look like in a ``to_dict``."""
    if hasattr(value, "to_dict"):
        return value.to_dict()  # a nested result: in its own form
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, (Location, Path)):
        return str(value)
    if isinstance(value, tuple):
        return [_json_form(v) for v in value]
    if isinstance(value, Mapping):
        return {k: _json_form(v) for k, v in value.items()}
    return value


@pytest.mark.parametrize("result", RESULTS, ids=lambda r: type(r).__name__)
def test_to_dict_keys_are_the_fields_and_json_ready(result: Any) -> None:
    out = result.to_dict()
    fields = {f.name for f in dataclasses.fields(result)}
    extra = DERIVED.get(type(result), set())
    assert set(out) == fields | extra, sorted(set(out) ^ (fields | extra))
    for name in extra:
        assert isinstance(inspect.getattr_static(type(result), name), property), name
    for name in fields:  # the values, not only the keys
        assert out[name] == _json_form(getattr(result, name)), name
    assert json.loads(json.dumps(out, allow_nan=False)) == out  # plain JSON, unchanged by a round trip
    assert not any(isinstance(v, enum.Enum) for v in out.values())  # plain strings, not enum members


def test_every_result_type_is_covered_and_defined_in_results() -> None:
    defined = {obj for name in results.__all__ if dataclasses.is_dataclass(obj := getattr(results, name))}
    assert defined == {type(r) for r in RESULTS}
    for cls in defined:
        assert cls.__module__ == "imagestore.results", cls
        assert cls.__dataclass_params__.frozen, cls  # type: ignore[attr-defined]
    assert imagestore.DeleteOutcome.__module__ == "imagestore.results"
    assert imagestore.CloneRefusal.__module__ == "imagestore.results"


def test_old_import_paths_still_work() -> None:
    from imagestore.cache import CacheEntry as C1
    from imagestore.cache.reports import EvictReport as E1
    from imagestore.cache.reports import RevalidateReport as R1
    from imagestore.cache.reports import VerifyReport as V1
    from imagestore.spi.contract import CloneMode, CloneRefusal as CR1, DeleteOutcome as D1, SweepReport as S1
    from imagestore.drivers import DeleteOutcome as D2, SweepReport as S2
    from imagestore.formats import FormatVerdict as F1
    from imagestore.formats.verdict import FormatVerdict as F2

    assert (C1, E1, R1, V1, CR1, D1, S1, D2, S2, F1, F2) == (
        CacheEntry, EvictReport, RevalidateReport, VerifyReport, CloneRefusal, imagestore.DeleteOutcome,
        SweepReport, imagestore.DeleteOutcome, SweepReport, FormatVerdict, FormatVerdict)
    assert CloneMode is results.CloneMode
