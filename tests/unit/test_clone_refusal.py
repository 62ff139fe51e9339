"""``CloneRefusal`` is the type of every clone-refusal code: each member is produced by some
store (here, or by the named test on a real service), the README's table lists exactly the
members, and a driver's plain string is converted (an unknown one is a driver bug)."""

from __future__ import annotations

import ast
import json
import re
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

import imagestore
from imagestore import CloneCheck, CloneRefusal, Store
from imagestore.spi.contract import ClonePlan, DriverContext
from imagestore.drivers import Capabilities, Driver
from imagestore.drivers.memory import MemoryDriver

ROOT = Path(__file__).resolve().parents[2]

#: The test that makes a real store produce each code (the ones not made here need a service).
PRODUCED_BY: dict[CloneRefusal, str] = {
    CloneRefusal.READ_ONLY_TARGET: "tests/unit/test_clone_refusal.py::test_memory_and_file_produce",
    CloneRefusal.DIFFERENT_BACKEND: "tests/unit/test_clone_refusal.py::test_memory_and_file_produce",
    CloneRefusal.DIFFERENT_ENDPOINT: "tests/s3/test_clone.py::test_another_moto_server_is_a_different_endpoint",
    CloneRefusal.DIFFERENT_ACCOUNT: "tests/swift/test_clone.py::test_other_accounts_and_backends_get_a_verified_stream",
    CloneRefusal.DIFFERENT_CLUSTER: "tests/consumers/test_can_clone.py::test_rbd_reasons",
    CloneRefusal.DIFFERENT_FILESYSTEM: "tests/consumers/test_can_clone.py::test_file_different_filesystem",
    CloneRefusal.FORMAT_NOT_RAW: "tests/consumers/test_can_clone.py::test_rbd_reasons",
    CloneRefusal.SNAPSHOT_MISSING: "tests/consumers/test_can_clone.py::test_rbd_reasons",
    CloneRefusal.POOL_MISSING: "tests/consumers/test_can_clone.py::test_rbd_reasons",
    CloneRefusal.UNREACHABLE: "tests/swift/test_clone.py::test_an_unreachable_auth_service_is_unreachable",
    CloneRefusal.PERMISSION: "tests/s3/test_clone.py::test_clone_refused_without_read_permission",
    CloneRefusal.NOT_CLAIMED: "tests/unit/test_clone_refusal.py::test_memory_and_file_produce",
    CloneRefusal.NO_NATIVE_CLONE: "tests/unit/test_clone_refusal.py::test_memory_and_file_produce",
    CloneRefusal.MODE_UNAVAILABLE: "tests/unit/test_clone_refusal.py::test_memory_and_file_produce",
    CloneRefusal.NOT_CONVERTIBLE: "tests/consumers/test_convert.py::test_what_cannot_be_converted_says_why",
    CloneRefusal.NO_CHECKSUM: "tests/consumers/test_convert.py::test_what_cannot_be_converted_says_why",
}


class _Unclaimed(MemoryDriver):
    """Plans a server copy it does not claim in its capabilities (a driver bug the facade catches)."""

    def open(self, context: DriverContext) -> Capabilities:
        return replace(super().open(context), server_copy=False)


class _NoClone(MemoryDriver):
    """A driver that keeps the base class's answer: no native clone at all."""

    plan_clone = Driver.plan_clone


def _produced(tmp_path: Path) -> dict[CloneRefusal, CloneCheck]:
    """One check per code that memory and file stores can produce without a service."""
    ns = f"refusal-{tmp_path.name}"
    src = imagestore.open_store({"driver": "memory", "namespace": ns}, "src")
    loc = src.add("img", b"x" * 4096).location
    read_only = imagestore.open_store({"driver": "memory", "namespace": ns, "read_only": True}, "ro")
    files = imagestore.open_store({"driver": "file", "root": str(tmp_path / "f")}, "files")
    floc = files.add("img", b"y" * 4096).location
    unclaimed = Store(_Unclaimed("unclaimed", namespace=ns))
    no_clone = Store(_NoClone("noclone", namespace=ns))
    return {
        CloneRefusal.READ_ONLY_TARGET: src.can_clone(loc, read_only),
        CloneRefusal.DIFFERENT_BACKEND: files.can_clone(floc, src),
        CloneRefusal.NOT_CLAIMED: unclaimed.can_clone("img", src, mode="server_copy"),
        CloneRefusal.NO_NATIVE_CLONE: no_clone.can_clone("img", src, mode="server_copy"),
        CloneRefusal.MODE_UNAVAILABLE: src.can_clone(loc, src, mode="cow"),
    }


def test_memory_and_file_produce(tmp_path: Path) -> None:
    checks = _produced(tmp_path)
    assert set(checks) == {CloneRefusal.READ_ONLY_TARGET, CloneRefusal.DIFFERENT_BACKEND, CloneRefusal.NOT_CLAIMED,
                           CloneRefusal.NO_NATIVE_CLONE, CloneRefusal.MODE_UNAVAILABLE}
    for code, check in checks.items():
        assert check.code is code, (code, check)
        assert check.code == code.value and json.loads(json.dumps(check.to_dict()))["code"] == code.value
    assert not checks[CloneRefusal.READ_ONLY_TARGET].possible
    assert checks[CloneRefusal.DIFFERENT_BACKEND].mode == "stream"  # auto falls back, with the code
    assert "does not claim server_copy" in checks[CloneRefusal.NOT_CLAIMED].reason
    assert not checks[CloneRefusal.MODE_UNAVAILABLE].possible


def _test_names(path: Path) -> set[str]:
    return {n.name for n in ast.parse(path.read_text()).body if isinstance(n, ast.FunctionDef)}


@pytest.mark.parametrize("code", list(CloneRefusal), ids=str)
def test_every_code_is_produced_by_a_named_test(code: CloneRefusal) -> None:
    """A member without a producing test fails here: add the test, or remove the member."""
    assert code in PRODUCED_BY, f"no test produces {code.value!r}"
    path, name = PRODUCED_BY[code].split("::")
    text = (ROOT / path).read_text()
    found = [n for n in ast.parse(text).body if isinstance(n, ast.FunctionDef) and n.name == name]
    assert found, f"{PRODUCED_BY[code]} does not exist"
    source = ast.get_source_segment(text, found[0]) or ""
    assert f'"{code.value}"' in source or f"CloneRefusal.{code.name}" in source, PRODUCED_BY[code]


def _readme_table() -> dict[str, str]:
    """The code -> meaning rows of the README's table of clone refusal codes."""
    text = (ROOT / "README.md").read_text()
    start = text.index("<!-- clone-refusals -->")
    rows: dict[str, str] = {}
    for line in text[start:].splitlines()[1:]:
        if not line.startswith("|"):
            if rows:
                break
            continue
        m = re.fullmatch(r"\|\s*`([a-z_]+)`\s*\|\s*(.*?)\s*\|", line)
        if m:
            assert m.group(1) not in rows, f"{m.group(1)} twice in the README table"
            rows[m.group(1)] = m.group(2)
    return rows


def test_readme_table_lists_exactly_the_codes() -> None:
    rows = _readme_table()
    assert set(rows) == {c.value for c in CloneRefusal}, (set(rows) ^ {c.value for c in CloneRefusal})
    for code in CloneRefusal:
        assert rows[code.value] == code.description, code.value
    assert dict(imagestore.CLONE_REASONS) == {c.value: c.description for c in CloneRefusal}


def test_a_plain_string_code_is_converted_and_an_unknown_one_refused() -> None:
    assert ClonePlan(None, "x", "different_cluster").code is CloneRefusal.DIFFERENT_CLUSTER  # type: ignore[arg-type]
    assert CloneCheck(True, "stream", "x", "permission").code is CloneRefusal.PERMISSION  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="unknown clone refusal code 'elsewhere'"):
        ClonePlan(None, "x", "elsewhere")  # type: ignore[arg-type]


def test_an_unknown_code_from_a_driver_is_an_imagestore_error() -> None:
    class Odd(MemoryDriver):
        def plan_clone(self, location: Any, target: Any) -> ClonePlan:
            return ClonePlan(None, "somewhere else", "elsewhere")  # type: ignore[arg-type]

    store = Store(Odd("odd"))
    loc = store.add("img", b"z" * 10).location
    with pytest.raises(imagestore.ImageStoreError) as err:
        store.can_clone(loc, store)
    assert err.value.store == "odd" and err.value.image == "img"
